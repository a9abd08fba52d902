/// The non-zeros of a mostly-zero matrix `G`, listed column by column within blocks of rows: the layout in which
/// `Aᵀ·G` can skip G's zeros (`accumulateTransposedProduct(_:_:into:pool:)`).
///
/// The matrix this is for is a hidden layer's gradient: the ReLU and dropout in front of it zero about three
/// quarters of its elements, and the weight gradient `Aᵀ·G` is as large a product as the layer's forward GEMM.
/// Listing G's non-zeros takes one pass over G; the product then does a quarter of GEMM's multiply-adds.
///
/// Layout: rows are cut into blocks of `blockRows`; list (block b, column j) holds the non-zeros
/// `G[r, j]`, r in block b, in increasing r, each as its value and the offset of row r in a packed block of A
/// (`(r − first row of b) · packedRowStride`). Lists are stored one after another in the order (b, j).
public struct BlockColumnLists: Sendable {
    /// Rows per block. A block of A's rows, 64 columns wide, is packed into 32 KiB: it stays in L1 while every
    /// column's list of the block reads from it.
    public static let blockRows = 128
    /// Floats between consecutive packed rows of A (one 64-column tile: four 16-lane vectors).
    static let packedRowStride = 64

    public let rows: Int
    public let cols: Int
    /// How many elements of G are non-zero (NaN counts as non-zero, so it reaches the product).
    public let nonZeroCount: Int
    /// List (b, j) is entries `starts[b·cols + j] ..< starts[b·cols + j + 1]`.
    let starts: [Int]
    let rowOffsets: [Int32]
    let values: [Float]

    public var blockCount: Int { (rows + Self.blockRows - 1) / Self.blockRows }
    public var density: Double { rows * cols == 0 ? 0 : Double(nonZeroCount) / Double(rows * cols) }

    /// Lists the non-zeros of `g`, or returns nil without listing them when more than `maximumDensity` of its
    /// elements are non-zero (counting them is a cheap pass; the caller then uses a dense product).
    public init?(_ g: Matrix, maximumDensity: Double = 1, pool: ComputePool = .serial) {
        let rows = g.rows, cols = g.cols, blockRows = Self.blockRows
        let blocks = (rows + blockRows - 1) / blockRows
        // counts[b·cols + j]: non-zeros of column j in block b.
        var counts = [Int32](repeating: 0, count: blocks * cols)
        g.storage.withUnsafeBufferPointer { gs in
            counts.withUnsafeMutableBufferPointer { cs in
                guard let gp = gs.baseAddress, let cp = cs.baseAddress else { return }
                pool.forEachChunk(of: blocks, grain: 4) { blockRange in
                    for b in blockRange {
                        Self.countNonZeros(gp, rows: (b * blockRows)..<min(rows, (b + 1) * blockRows), cols: cols,
                                           into: cp + b * cols)
                    }
                }
            }
        }
        let nonZeros = counts.reduce(0) { $0 + Int($1) }
        guard rows * cols == 0 || Double(nonZeros) <= maximumDensity * Double(rows * cols) else { return nil }

        // counts in list order (b, j) → the lists' starts.
        var starts = [Int](repeating: 0, count: blocks * cols + 1)
        for list in 0..<(blocks * cols) { starts[list + 1] = starts[list] + Int(counts[list]) }
        var rowOffsets = [Int32](unsafeUninitializedCapacity: nonZeros) { _, n in n = nonZeros }
        var values = [Float](unsafeUninitializedCapacity: nonZeros) { _, n in n = nonZeros }
        g.storage.withUnsafeBufferPointer { gs in
            starts.withUnsafeBufferPointer { ss in
                rowOffsets.withUnsafeMutableBufferPointer { os in
                    values.withUnsafeMutableBufferPointer { vs in
                        guard let gp = gs.baseAddress, let sp = ss.baseAddress,
                              let op = os.baseAddress, let vp = vs.baseAddress else { return }
                        pool.forEachChunk(of: blocks, grain: 4) { blockRange in
                            var cursors = [Int](repeating: 0, count: cols)
                            cursors.withUnsafeMutableBufferPointer { cursorStorage in
                                let cursors = cursorStorage.baseAddress!
                                for b in blockRange {
                                    for j in 0..<cols { cursors[j] = sp[b * cols + j] }
                                    let first = b * blockRows
                                    for r in first..<min(rows, first + blockRows) {
                                        Self.appendNonZeros(of: gp + r * cols, cols: cols,
                                                            offset: Int32((r - first) * Self.packedRowStride),
                                                            cursors: cursors, offsets: op, values: vp)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        self.rows = rows
        self.cols = cols
        self.nonZeroCount = nonZeros
        self.starts = starts
        self.rowOffsets = rowOffsets
        self.values = values
    }

    /// Appends the non-zeros of one row to their columns' lists (column j's next slot is `cursors[j]`).
    ///
    /// Sixteen columns at a time: a compare gives the mask of non-zero lanes, and only its set bits are visited, so
    /// at the densities this is for (5–25 %) no branch is taken per zero element, and none mispredicts on one.
    @inline(__always)
    private static func appendNonZeros(
        of row: UnsafePointer<Float>, cols: Int, offset: Int32, cursors: UnsafeMutablePointer<Int>,
        offsets: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<Float>
    ) {
        let zero = SIMD16<Float>()
        let laneBits = SIMD16<Int32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
        @inline(__always) func append(_ j: Int) {
            let slot = cursors[j]
            offsets[slot] = offset
            values[slot] = row[j]
            cursors[j] = slot + 1
        }
        var j = 0
        while j + 16 <= cols {
            var bits = UInt32(truncatingIfNeeded: SIMD16<Int32>().replacing(with: laneBits, where: loadVector(row + j) .!= zero).wrappedSum())
            while bits != 0 {
                append(j + bits.trailingZeroBitCount)
                bits &= bits - 1
            }
            j += 16
        }
        while j < cols {
            if row[j] != 0 { append(j) }
            j += 1
        }
    }

    /// Adds each column's non-zero count over `rows` of the row-major `cols`-wide matrix at `g` to `counts`.
    private static func countNonZeros(
        _ g: UnsafePointer<Float>, rows: Range<Int>, cols: Int, into counts: UnsafeMutablePointer<Int32>
    ) {
        let zero = SIMD16<Float>(), one = SIMD16<Int32>(repeating: 1)
        for r in rows {
            let row = g + r * cols
            var j = 0
            while j + 16 <= cols {
                let raw = UnsafeMutableRawPointer(counts + j)
                let sum = raw.loadUnaligned(as: SIMD16<Int32>.self)
                    &+ SIMD16<Int32>().replacing(with: one, where: loadVector(row + j) .!= zero)
                raw.storeBytes(of: sum, as: SIMD16<Int32>.self)
                j += 16
            }
            while j < cols {
                if row[j] != 0 { counts[j] += 1 }
                j += 1
            }
        }
    }
}
