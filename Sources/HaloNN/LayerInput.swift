import HaloTensor

/// Sparse input features with their transpose prepared for the weight-gradient product `Xᵀ·G`.
public struct SparseFeatures: Sendable {
    public let matrix: SparseMatrix
    public let transpose: SparseMatrix
    /// Entry `k` of `transpose` is entry `permutation[k]` of `matrix`.
    let permutation: [Int]

    public init(_ matrix: SparseMatrix) {
        self.matrix = matrix
        (transpose, permutation) = matrix.transposedWithPermutation()
    }

    private init(matrix: SparseMatrix, transpose: SparseMatrix, permutation: [Int]) {
        self.matrix = matrix
        self.transpose = transpose
        self.permutation = permutation
    }

    /// The same sparsity pattern with new values (in `matrix` order); the transpose follows in O(nnz).
    public func replacingValues(_ values: [Float]) -> SparseFeatures {
        var m = matrix
        m.values = values
        var t = transpose
        t.values = permutation.map { values[$0] }
        return SparseFeatures(matrix: m, transpose: t, permutation: permutation)
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
        case .dense(let x): gemm(x, weight, into: &out, beta: accumulate ? 1 : 0)
        case .sparse(let s): s.matrix.multiply(weight, into: &out, accumulate: accumulate, pool: pool)
        }
    }

    /// `gradient += inputᵀ · outputGradient` (a weight gradient).
    func accumulateTransposedProduct(_ outputGradient: Matrix, into gradient: inout Matrix, pool: ComputePool) {
        switch self {
        case .dense(let x): gemm(x, outputGradient, into: &gradient, transposeA: true, beta: 1)
        case .sparse(let s): s.transpose.multiply(outputGradient, into: &gradient, accumulate: true, pool: pool)
        }
    }
}
