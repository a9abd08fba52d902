import HaloTensor

/// Sparse input features (CSR), as the first layer consumes them: `X·W` by SpMM forward, `Xᵀ·G` by the
/// scattering transposed product backward (`SparseMatrix.multiplyTransposed`), so no transpose is stored — or,
/// when `binary` holds the same matrix as bit codes (indicator features dense enough), both by table lookup.
public struct SparseFeatures: Sendable {
    public let matrix: SparseMatrix
    /// `matrix` as codes for the table-lookup products, when every non-zero has one value.
    public let binary: BinaryMatrix?

    public init(_ matrix: SparseMatrix, binary: BinaryMatrix? = nil) {
        precondition(binary.map { $0.rows == matrix.rows && $0.cols == matrix.cols } ?? true,
                     "the binary codes must have the CSR matrix's shape")
        self.matrix = matrix
        self.binary = binary
    }

    /// The same sparsity pattern with new values (dropout keeps zeroed entries in the pattern), multiplied in CSR
    /// form: the values may no longer be one (trainers do not choose codes for features that get input dropout).
    public func replacingValues(_ values: [Float]) -> SparseFeatures {
        var m = matrix
        m.values = values
        return SparseFeatures(m)
    }

    /// `out (+)= X · weight`.
    func multiply(_ weight: Matrix, into out: inout Matrix, accumulate: Bool, pool: ComputePool) {
        if let binary {
            binary.multiply(weight, into: &out, accumulate: accumulate, pool: pool)
        } else {
            matrix.multiply(weight, into: &out, accumulate: accumulate, pool: pool)
        }
    }

    /// `gradient += Xᵀ · outputGradient`, only rows `rows` of it when given.
    func accumulateTransposedProduct(
        _ outputGradient: Matrix, into gradient: inout Matrix, pool: ComputePool, rows: Range<Int>? = nil
    ) {
        if let binary {
            binary.multiplyTransposed(outputGradient, into: &gradient, accumulate: true, pool: pool, rows: rows)
        } else {
            matrix.multiplyTransposed(outputGradient, into: &gradient, accumulate: true, pool: pool, rows: rows)
        }
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

    /// `out (+)= input · weight`; a dense input's GEMM in calls of `rowsPerCall` rows when given (`GEMMRowBlocking`).
    func multiply(_ weight: Matrix, into out: inout Matrix, accumulate: Bool, pool: ComputePool, rowsPerCall: Int? = nil) {
        switch self {
        case .dense(let x): gemm(x, weight, into: &out, beta: accumulate ? 1 : 0, pool: pool, rowsPerCall: rowsPerCall)
        case .sparse(let s): s.multiply(weight, into: &out, accumulate: accumulate, pool: pool)
        }
    }

    /// `gradient += inputᵀ · outputGradient` (a weight gradient). For a dense input the output gradient's non-zeros
    /// are listed first when it is sparse enough for that to pay (`BlockColumnLists.ifWorthwhile`).
    func accumulateTransposedProduct(_ outputGradient: Matrix, into gradient: inout Matrix, pool: ComputePool) {
        switch self {
        case .dense(let x): addTransposedProduct(x, outputGradient, into: &gradient, pool: pool)
        case .sparse(let s): s.accumulateTransposedProduct(outputGradient, into: &gradient, pool: pool)
        }
    }

    /// The same, with the output gradient's non-zeros already listed (or nil: GEMM) for a dense input; only rows
    /// `rows` of the gradient when given (a piece, `WeightGradientPieces`).
    func accumulateTransposedProduct(
        _ outputGradient: Matrix, listed: BlockColumnLists?, into gradient: inout Matrix, pool: ComputePool,
        rows: Range<Int>? = nil
    ) {
        switch self {
        case .dense(let x): addTransposedProduct(x, outputGradient, listed: listed, into: &gradient, pool: pool, rows: rows)
        case .sparse(let s): s.accumulateTransposedProduct(outputGradient, into: &gradient, pool: pool, rows: rows)
        }
    }
}

extension LayerInput {
    /// Counts the features' arrays (the CSR and its lookup codes for sparse features) as `kind`.
    public func tally(into tally: inout MemoryTally, as kind: MemoryTally.Kind) {
        switch self {
        case .dense(let m): tally.add(m, as: kind)
        case .sparse(let s):
            tally.add(s.matrix, as: kind)
            if let binary = s.binary { tally.add(binary, as: kind) }
        }
    }
}
