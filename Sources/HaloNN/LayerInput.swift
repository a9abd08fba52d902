import HaloTensor

/// Sparse input features (CSR), as the first layer consumes them: `X·W` by SpMM forward, `Xᵀ·G` by the
/// scattering transposed product backward (`SparseMatrix.multiplyTransposed`), so no transpose is stored.
public struct SparseFeatures: Sendable {
    public let matrix: SparseMatrix

    public init(_ matrix: SparseMatrix) {
        self.matrix = matrix
    }

    /// The same sparsity pattern with new values (dropout keeps zeroed entries in the pattern).
    public func replacingValues(_ values: [Float]) -> SparseFeatures {
        var m = matrix
        m.values = values
        return SparseFeatures(m)
    }
}

/// The input of a layer: a dense activation matrix, or the sparse input features (layer 0 on sparse data).
public enum LayerInput: Sendable {
    case dense(Matrix)
    case sparse(SparseFeatures)

    public var rows: Int {
        switch self {
        case .dense(let m): return m.rows
        case .sparse(let s): return s.matrix.rows
        }
    }

    public var width: Int {
        switch self {
        case .dense(let m): return m.cols
        case .sparse(let s): return s.matrix.cols
        }
    }

    public var isSparse: Bool {
        if case .sparse = self { return true }
        return false
    }

    /// `out (+)= input · weight`.
    func multiply(_ weight: Matrix, into out: inout Matrix, accumulate: Bool, pool: ComputePool) {
        switch self {
        case .dense(let x): gemm(x, weight, into: &out, beta: accumulate ? 1 : 0, pool: pool)
        case .sparse(let s): s.matrix.multiply(weight, into: &out, accumulate: accumulate, pool: pool)
        }
    }

    /// `gradient += inputᵀ · outputGradient` (a weight gradient).
    func accumulateTransposedProduct(_ outputGradient: Matrix, into gradient: inout Matrix, pool: ComputePool) {
        switch self {
        case .dense(let x): gemm(x, outputGradient, into: &gradient, transposeA: true, beta: 1, pool: pool)
        case .sparse(let s): s.matrix.multiplyTransposed(outputGradient, into: &gradient, accumulate: true, pool: pool)
        }
    }
}
