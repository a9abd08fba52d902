/// A sparse matrix whose non-zeros all have one value — bag-of-words and other indicator features — stored as
/// 4-bit codes, so products with it look up precomputed sums instead of multiplying.
///
/// Four consecutive columns of a row form a group; the group's code says which of them are non-zero. A product
/// `B·X` first tabulates, per group, the 16 possible sums of the group's four rows of `X`, then adds one table entry
/// per group to each output row: `cols / 4` vector additions per output row whatever the density, where CSR needs
/// one multiply-add per non-zero and dense GEMM one per column. `Bᵀ·X` does the same with groups of four rows.
/// At Amazon-Photo's 35% density this beats both (see `BinaryMatrixProducts.swift` for measurements); at low
/// densities CSR wins, so the caller chooses (`LayerInput`).
///
/// The arithmetic is plain float32 addition: results equal the CSR product up to summation order.
public struct BinaryMatrix: Sendable {
    public let rows: Int
    public let cols: Int
    /// The value of every non-zero.
    public let value: Float
    public let nonZeroCount: Int

    /// Rows, columns or rows of the transpose per code (the bits of a code).
    static let groupSize = 4
    /// Groups whose tables are used together: 8 groups × 16 entries × 64 floats = 32 KiB, one L1 cache's worth.
    static let blockGroups = 8

    /// `rowCodes[r · columnGroups + g]`: bit `b` set when `(r, 4g + b)` is a non-zero.
    let rowCodes: [UInt8]
    /// `columnCodes[(block · cols + c) · blockGroups + i]`: bit `b` set when `(4(8·block + i) + b, c)` is a non-zero.
    /// The codes one output row of `Bᵀ·X` needs from one block of row groups are contiguous.
    let columnCodes: [UInt8]

    var columnGroups: Int { (cols + Self.groupSize - 1) / Self.groupSize }
    var rowGroups: Int { (rows + Self.groupSize - 1) / Self.groupSize }
    var rowBlocks: Int { (rowGroups + Self.blockGroups - 1) / Self.blockGroups }

    /// The codes of `sparse`, or nil when its stored values are not all one non-zero value (or it stores nothing,
    /// or a row names a column twice, which codes cannot count).
    public init?(_ sparse: SparseMatrix) {
        guard let first = sparse.values.first, first != 0, sparse.values.allSatisfy({ $0 == first }) else { return nil }
        rows = sparse.rows
        cols = sparse.cols
        value = first
        nonZeroCount = sparse.nonZeroCount
        let columnGroups = (cols + Self.groupSize - 1) / Self.groupSize
        let rowGroups = (rows + Self.groupSize - 1) / Self.groupSize
        let rowBlocks = (rowGroups + Self.blockGroups - 1) / Self.blockGroups
        var rowCodes = [UInt8](repeating: 0, count: rows * columnGroups)
        var columnCodes = [UInt8](repeating: 0, count: rowBlocks * cols * Self.blockGroups)
        for r in 0..<rows {
            let group = r / Self.groupSize, rowBit = UInt8(1) << (r % Self.groupSize)
            let block = group / Self.blockGroups, slot = group % Self.blockGroups
            for e in sparse.rowPointers[r]..<sparse.rowPointers[r + 1] {
                let c = Int(sparse.columnIndices[e])
                let columnBit = UInt8(1) << (c % Self.groupSize)
                let rowCode = r * columnGroups + c / Self.groupSize
                if rowCodes[rowCode] & columnBit != 0 { return nil }
                rowCodes[rowCode] |= columnBit
                columnCodes[(block * cols + c) * Self.blockGroups + slot] |= rowBit
            }
        }
        self.rowCodes = rowCodes
        self.columnCodes = columnCodes
    }
}
