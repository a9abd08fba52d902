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
/// The arithmetic is float32 addition of the dense operand's rows, then one multiplication by the common value:
/// results equal the CSR product up to rounding order (exactly so in summation order when the value is a power of
/// two, such as the usual 1).
public struct BinaryMatrix: Sendable {
    public let rows: Int
    public let cols: Int
    /// The value of every non-zero.
    public let value: Float
    public let nonZeroCount: Int

    /// Columns (or, for the transpose, rows) per code: the kernels are written for four (16-entry tables).
    static let groupSize = 4
    /// Groups whose tables are used together: 8 groups × 16 entries × 64 floats = 32 KiB, two thirds of the 48 KiB
    /// L1 data cache of the host it was tuned on, leaving room for the output rows streaming through; all of a Zen 3's
    /// 32 KiB, where blocks of 2, 4 and 6 groups were measured no faster. Fixed, as the column codes' layout holds it.
    static let blockGroups = 8

    /// `rowCodes[r · columnGroups + g]`: bit `b` set when `(r, 4g + b)` is a non-zero.
    let rowCodes: [UInt8]
    /// `columnCodes[(block · cols + c) · blockGroups + i]`: bit `b` set when `(4(8·block + i) + b, c)` is a non-zero.
    /// The codes one output row of `Bᵀ·X` needs from one block of row groups are contiguous.
    let columnCodes: [UInt8]

    var columnGroups: Int { (cols + Self.groupSize - 1) / Self.groupSize }
    var rowGroups: Int { (rows + Self.groupSize - 1) / Self.groupSize }
    var rowBlocks: Int { (rowGroups + Self.blockGroups - 1) / Self.blockGroups }

    /// The one value of all non-zeros of `sparse` (stored zeros do not count), or nil when there are none, they
    /// differ, or the value is not finite (an infinite value would turn the zero table entries into NaN).
    public static func commonValue(of sparse: SparseMatrix) -> Float? {
        var common: Float?
        for v in sparse.values where v != 0 {
            guard v.isFinite else { return nil }
            if let c = common, c != v { return nil }
            common = v
        }
        return common
    }

    /// The codes of `sparse`, or nil when its non-zeros do not share one finite value (`commonValue(of:)`), or a
    /// row names a column twice, which codes cannot count. Stored zeros (entries dropout has zeroed) are left out.
    public init?(_ sparse: SparseMatrix) {
        guard let common = Self.commonValue(of: sparse) else { return nil }
        rows = sparse.rows
        cols = sparse.cols
        value = common
        var nonZeros = 0
        let columnGroups = (cols + Self.groupSize - 1) / Self.groupSize
        let rowGroups = (rows + Self.groupSize - 1) / Self.groupSize
        let rowBlocks = (rowGroups + Self.blockGroups - 1) / Self.blockGroups
        var rowCodes = [UInt8](repeating: 0, count: rows * columnGroups)
        var columnCodes = [UInt8](repeating: 0, count: rowBlocks * cols * Self.blockGroups)
        for r in 0..<rows {
            let group = r / Self.groupSize, rowBit = UInt8(1) << (r % Self.groupSize)
            let block = group / Self.blockGroups, slot = group % Self.blockGroups
            for e in sparse.rowPointers[r]..<sparse.rowPointers[r + 1] where sparse.values[e] != 0 {
                let c = Int(sparse.columnIndices[e])
                precondition(c >= 0 && c < cols, "column \(c) of row \(r) outside 0..<\(cols)")
                let columnBit = UInt8(1) << (c % Self.groupSize)
                let rowCode = r * columnGroups + c / Self.groupSize
                if rowCodes[rowCode] & columnBit != 0 { return nil }
                rowCodes[rowCode] |= columnBit
                columnCodes[(block * cols + c) * Self.blockGroups + slot] |= rowBit
                nonZeros += 1
            }
        }
        nonZeroCount = nonZeros
        self.rowCodes = rowCodes
        self.columnCodes = columnCodes
    }
}
