/// The non-zeros of a mostly-zero matrix `G`, listed column by column within blocks of rows: the layout in which
/// `Aᵀ·G` can skip G's zeros (`accumulateTransposedProduct(of:into:pool:)`).
///
/// The matrix this is for is a hidden layer's gradient behind a ReLU and dropout (without a normalisation layer
/// between them and the convolution, which would make it dense again). The weight gradient `Aᵀ·G` is as large a
/// product as the layer's forward GEMM; listing G's non-zeros takes one pass over G, and the product then does only
/// the multiply-adds of the non-zeros.
///
/// Layout: rows are cut into blocks of `blockRows`; list (block b, column j) holds the non-zeros `G[r, j]`, r in
/// block b, in increasing r, each as its value and r's position within the block. Lists are stored one after
/// another in the order (b, j).
public struct BlockColumnLists: Sendable {
    /// Rows per block. A block of A's rows, 64 columns wide, is packed into 32 KiB: it stays in L1 while every
    /// column's list of the block reads from it. Also small enough for a row's position to fit a byte.
    public static let blockRows = 128
    /// The densest `G` worth listing for `Aᵀ·G` without a host calibration: break-even with GEMM was near 50 % on
    /// the AVX-512 host (`halo microbench`); a calibrated run uses this host's (`KernelRates.listedBreakEvenDensity`).
    public static let worthwhileDensity = 0.4

    public let rows: Int
    public let cols: Int
    /// How many elements of G are non-zero (NaN counts as non-zero, so it reaches the product).
    public let nonZeroCount: Int
    /// List (b, j) is entries `starts[b·cols + j] ..< starts[b·cols + j + 1]`.
    let starts: [Int]
    /// Each entry's row within its block.
    let rowsInBlock: [UInt8]
    let values: [Float]

    public var blockCount: Int { (rows + Self.blockRows - 1) / Self.blockRows }
    public var density: Double { rows * cols == 0 ? 0 : Double(nonZeroCount) / Double(rows * cols) }

    /// The lists of `g` when it is sparse enough for them to pay (at most `maximumDensity` non-zero: by default
    /// `worthwhileDensity`, or the break-even this host measured, `KernelRates.listedBreakEvenDensity`), else nil.
    ///
    /// A gradient that is dense (behind a normalisation layer, or after an aggregation) is recognised from every
    /// eighth block of rows before anything is listed, so it costs an eighth of a pass rather than a whole one.
    public static func ifWorthwhile(_ g: Matrix, maximumDensity: Double = worthwhileDensity,
                                    pool: ComputePool = .serial) -> BlockColumnLists? {
        let sampleStride = 8, blocks = (g.rows + blockRows - 1) / blockRows
        if blocks >= 4 * sampleStride, g.cols > 0 {
            var sampledElements = 0
            var counts = [Int32](repeating: 0, count: g.cols)
            g.storage.withUnsafeBufferPointer { gs in
                counts.withUnsafeMutableBufferPointer { cs in
                    for b in stride(from: 0, to: blocks, by: sampleStride) {
                        let rows = (b * blockRows)..<min(g.rows, (b + 1) * blockRows)
                        countNonZeros(gs.baseAddress!, rows: rows, cols: g.cols, into: cs.baseAddress!)
                        sampledElements += rows.count * g.cols
                    }
                }
            }
            let sampledNonZeros = counts.reduce(0) { $0 + Int($1) }
            if Double(sampledNonZeros) > maximumDensity * Double(sampledElements) { return nil }
        }
        return BlockColumnLists(g, maximumDensity: maximumDensity, pool: pool)
    }

    /// Lists the non-zeros of `g`, or returns nil without listing them when more than `maximumDensity` of its
    /// elements are non-zero (found by the counting pass that precedes the listing).
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
        var rowsInBlock = [UInt8](unsafeUninitializedCapacity: nonZeros) { _, n in n = nonZeros }
        var values = [Float](unsafeUninitializedCapacity: nonZeros) { _, n in n = nonZeros }
        g.storage.withUnsafeBufferPointer { gs in
            starts.withUnsafeBufferPointer { ss in
                rowsInBlock.withUnsafeMutableBufferPointer { rs in
                    values.withUnsafeMutableBufferPointer { vs in
                        guard let gp = gs.baseAddress, let sp = ss.baseAddress,
                              let rp = rs.baseAddress, let vp = vs.baseAddress else { return }
                        pool.forEachChunk(of: blocks, grain: 4) { blockRange in
                            var cursors = [Int](repeating: 0, count: cols)
                            cursors.withUnsafeMutableBufferPointer { cursorStorage in
                                let cursors = cursorStorage.baseAddress!
                                for b in blockRange {
                                    for j in 0..<cols { cursors[j] = sp[b * cols + j] }
                                    let first = b * blockRows
                                    for r in first..<min(rows, first + blockRows) {
                                        Self.appendNonZeros(of: gp + r * cols, cols: cols, rowInBlock: UInt8(r - first),
                                                            cursors: cursors, rowsInBlock: rp, values: vp)
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
        self.rowsInBlock = rowsInBlock
        self.values = values
    }

    /// Appends the non-zeros of one row to their columns' lists (column j's next slot is `cursors[j]`).
    ///
    /// Sixteen columns at a time: a compare gives the mask of non-zero lanes, and only its set bits are visited, so
    /// at the densities this is for (5–25 %) no branch is taken per zero element, and none mispredicts on one.
    @inline(__always)
    private static func appendNonZeros(
        of row: UnsafePointer<Float>, cols: Int, rowInBlock: UInt8, cursors: UnsafeMutablePointer<Int>,
        rowsInBlock: UnsafeMutablePointer<UInt8>, values: UnsafeMutablePointer<Float>
    ) {
        let zero = SIMD16<Float>()
        let laneBits = SIMD16<Int32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
        @inline(__always) func append(_ j: Int) {
            let slot = cursors[j]
            rowsInBlock[slot] = rowInBlock
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
