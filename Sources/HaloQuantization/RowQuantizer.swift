import HaloTensor

/// A quantized message that does not match what the receiver expects.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
    /// The message's byte count differs from what its rows, width and bit widths need.
    case messageSize(expected: Int, actual: Int, rows: Int, width: Int)

    public var description: String {
        switch self {
        case let .messageSize(expected, actual, rows, width):
            "quantized message holds \(actual) bytes, but \(rows) rows of width \(width) at the assigned bit widths "
                + "need \(expected) bytes"
        }
    }
}

/// Stochastic integer quantization of message rows (AdaQP, §4 of the algorithms reference), fused with bit
/// packing, and its inverse.
///
/// A message is its rows back to back, in selection order, each in the row wire format of `RowCodec.swift`:
/// `lo` and `Δ` as little-endian Float32 followed by `ceil(D·b/8)` bytes of b-bit codes (value j at bit j·b), or
/// the raw Float32 row at `.full`. Rows may have different bit widths in one message; the widths are not in the rows
/// (HaloTraining's message header carries them). Rows are split over the pool's threads; the output is the same
/// byte for byte for any thread count.
public enum RowQuantizer {
    /// Bytes before a quantized row's codes (lo and Δ).
    public static var rowHeaderBytes: Int { headerBytes }

    /// Bytes of one encoded row of `width` elements.
    public static func encodedSize(width: Int, bits: BitWidth) -> Int {
        precondition(width >= 0, "row width must be non-negative, got \(width)")
        return encodedRowSize(width: width, bits: bits)
    }

    /// Bytes of a message of `rows` rows of `width` elements (with `.perRow`, `rows` must equal its count).
    public static func encodedSize(width: Int, bits: BitAssignment, rows: Int) -> Int {
        switch bits {
        case .uniform(let b):
            return rows * encodedSize(width: width, bits: b)
        case .perRow(let widths):
            precondition(widths.count == rows, "bit assignment lists \(widths.count) rows, message has \(rows)")
            return widths.reduce(0) { $0 + encodedSize(width: width, bits: $1) }
        }
    }

    /// Bytes of a message whose rows have the widths `bits`.
    public static func encodedSize(width: Int, bits: [BitWidth]) -> Int {
        encodedSize(width: width, bits: .perRow(bits), rows: bits.count)
    }

    // MARK: Encode

    /// Quantizes the rows `rows` of `m` into `destination` (which must hold at least `encodedSize` bytes) and
    /// returns the bytes written.
    ///
    /// - Parameters:
    ///   - nodeIDs: the GLOBAL node id of every listed row; with `randomness` it addresses the dither, so a node's
    ///     row encodes to the same bytes wherever and by whomever it is sent.
    ///   - ranges: if given (at least one element per row), receives `hi − lo` of every row (NaN for a row with a
    ///     non-finite value), what AdaQP's variance trace `T_u += (D/6)·(hi − lo)²` needs. Computed for
    ///     `.full` rows too.
    @discardableResult
    public static func encode(
        _ m: Matrix, rows: RowSelection, bits: BitAssignment, nodeIDs: [Int32], randomness: QuantizationRandomness,
        into destination: UnsafeMutableRawBufferPointer, ranges: UnsafeMutableBufferPointer<Float>? = nil,
        pool: ComputePool = .serial
    ) -> Int {
        let count = rows.count, width = m.cols
        precondition(nodeIDs.count == count, "\(nodeIDs.count) node ids for \(count) rows")
        checkRows(rows, limit: m.rows)
        let size = encodedSize(width: width, bits: bits, rows: count)
        precondition(destination.count >= size, "destination holds \(destination.count) bytes, the message needs \(size)")
        if let ranges { precondition(ranges.count >= count, "ranges hold \(ranges.count) floats for \(count) rows") }
        guard count > 0 else { return 0 }
        let layout = MessageLayout(width: width, bits: bits)
        guard width > 0 else {
            // Rows without elements: a quantized row is its header (lo = 0, Δ = 0), a raw row is nothing.
            var offset = 0
            for i in 0..<count {
                if layout.bits(i).isQuantized {
                    (destination.baseAddress! + offset).initializeMemory(as: UInt8.self, repeating: 0, count: headerBytes)
                    offset += headerBytes
                }
                ranges?[i] = 0
            }
            return size
        }
        m.storage.withUnsafeBufferPointer { storage in
            nodeIDs.withUnsafeBufferPointer { ids in
                rows.withIndexPointer { indices, firstRow in
                    let job = EncodeJob(
                        source: storage.baseAddress!, width: width, rowIndices: indices, firstRow: firstRow,
                        layout: layout, nodeIDs: ids.baseAddress!, output: destination.baseAddress!,
                        ranges: ranges?.baseAddress, randomness: randomness)
                    pool.forEachChunk(of: count, grain: rowGrain(width: width)) { job.run($0) }
                }
            }
        }
        return size
    }

    /// Quantizes the rows `rows` of `m` into `buffer`, which is resized to exactly the message (its capacity is
    /// reused, and every byte is overwritten).
    public static func encode(
        _ m: Matrix, rows: RowSelection, bits: BitAssignment, nodeIDs: [Int32], randomness: QuantizationRandomness,
        into buffer: inout [UInt8], pool: ComputePool = .serial
    ) {
        resize(&buffer, to: encodedSize(width: m.cols, bits: bits, rows: rows.count), fill: 0)
        buffer.withUnsafeMutableBytes { dst in
            _ = encode(m, rows: rows, bits: bits, nodeIDs: nodeIDs, randomness: randomness, into: dst, pool: pool)
        }
    }

    /// Quantizes the rows `rows` of `m` into `buffer` (resized to the message) and writes every row's `hi − lo`
    /// to `ranges` (resized to the row count).
    public static func encode(
        _ m: Matrix, rows: RowSelection, bits: BitAssignment, nodeIDs: [Int32], randomness: QuantizationRandomness,
        into buffer: inout [UInt8], ranges: inout [Float], pool: ComputePool = .serial
    ) {
        resize(&buffer, to: encodedSize(width: m.cols, bits: bits, rows: rows.count), fill: 0)
        resize(&ranges, to: rows.count, fill: 0)
        buffer.withUnsafeMutableBytes { dst in
            ranges.withUnsafeMutableBufferPointer { r in
                _ = encode(m, rows: rows, bits: bits, nodeIDs: nodeIDs, randomness: randomness, into: dst, ranges: r,
                       pool: pool)
            }
        }
    }

    // MARK: Decode

    /// Dequantizes a message into the rows `rows` of `m`: `m[row] = x̂`, or `m[row] += x̂` when `accumulate`
    /// (gradients sent back to their owner). Throws if the message's size does not match.
    ///
    /// With `accumulate` and listed rows, a row listed twice would be updated from two threads: list each once.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, bits: BitAssignment, into m: inout Matrix, rows: RowSelection,
        accumulate: Bool = false, pool: ComputePool = .serial
    ) throws {
        let count = rows.count, width = m.cols
        if case .perRow(let widths) = bits {
            precondition(widths.count == count, "bit assignment lists \(widths.count) rows, message has \(count)")
        }
        checkRows(rows, limit: m.rows)
        let expected = encodedSize(width: width, bits: bits, rows: count)
        guard bytes.count == expected else {
            throw QuantizationError.messageSize(expected: expected, actual: bytes.count, rows: count, width: width)
        }
        guard count > 0, width > 0 else { return }
        let layout = MessageLayout(width: width, bits: bits)
        m.storage.withUnsafeMutableBufferPointer { storage in
            rows.withIndices { rowIndex in
                let base = storage.baseAddress!, src = bytes.baseAddress!
                pool.forEachChunk(of: count, grain: rowGrain(width: width)) { chunk in
                    var offset = layout.offset(ofRow: chunk.lowerBound)
                    for i in chunk {
                        let b = layout.bits(i)
                        decodeRow(from: src + offset, width: width, bits: b, to: base + rowIndex(i) * width,
                                  accumulate: accumulate)
                        offset += layout.size(b)
                    }
                }
            }
        }
    }

    /// `decode` from an array.
    public static func decode(
        _ bytes: [UInt8], bits: BitAssignment, into m: inout Matrix, rows: RowSelection, accumulate: Bool = false,
        pool: ComputePool = .serial
    ) throws {
        try bytes.withUnsafeBytes { try decode($0, bits: bits, into: &m, rows: rows, accumulate: accumulate, pool: pool) }
    }

    /// Dequantizes a message of `bits.count` rows into the consecutive rows of `m` starting at `firstRow`.
    public static func decode(
        _ bytes: [UInt8], bits: [BitWidth], into m: inout Matrix, firstRow: Int, pool: ComputePool = .serial
    ) throws {
        try decode(bytes, bits: .perRow(bits), into: &m, rows: .range(firstRow..<(firstRow + bits.count)), pool: pool)
    }

    // MARK: Helpers

    private static func checkRows(_ rows: RowSelection, limit: Int) {
        switch rows {
        case .range(let r):
            precondition(r.lowerBound >= 0 && r.upperBound <= limit, "rows \(r) outside the matrix's 0..<\(limit)")
        case .indices(let list):
            for r in list where r < 0 || Int(r) >= limit {
                preconditionFailure("row \(r) outside the matrix's 0..<\(limit)")
            }
        }
    }

    /// Rows per thread chunk: enough that a chunk moves at least ~64 KB of floats.
    private static func rowGrain(width: Int) -> Int { max(1, 16_384 / max(width, 1)) }

    private static func resize<T>(_ array: inout [T], to count: Int, fill: T) {
        if array.count > count {
            array.removeLast(array.count - count)
        } else if array.count < count {
            array.append(contentsOf: repeatElement(fill, count: count - array.count))
        }
    }
}

extension RowSelection {
    /// Runs `body` with the listed indices (or nil) and the first row of a range (or 0).
    @inline(__always)
    fileprivate func withIndexPointer<R>(_ body: (UnsafePointer<Int32>?, Int) -> R) -> R {
        switch self {
        case .range(let r):
            return body(nil, r.lowerBound)
        case .indices(let list):
            return list.withUnsafeBufferPointer { body($0.baseAddress, 0) }
        }
    }

    /// Runs `body` with a cheap function from message row to matrix row.
    @inline(__always)
    fileprivate func withIndices<R>(_ body: ((Int) -> Int) -> R) -> R {
        switch self {
        case .range(let r):
            let first = r.lowerBound
            return body { first + $0 }
        case .indices(let list):
            return list.withUnsafeBufferPointer { p in
                let base = p.baseAddress
                return body { Int(base.unsafelyUnwrapped[$0]) }
            }
        }
    }
}

/// Where each row of a message starts, without materialising a prefix-sum array.
struct MessageLayout {
    let sizes: (Int, Int, Int, Int)
    let uniform: BitWidth?
    let perRow: [BitWidth]

    init(width: Int, bits: BitAssignment) {
        sizes = (encodedRowSize(width: width, bits: .two), encodedRowSize(width: width, bits: .four),
                 encodedRowSize(width: width, bits: .eight), encodedRowSize(width: width, bits: .full))
        switch bits {
        case .uniform(let b):
            uniform = b
            perRow = []
        case .perRow(let widths):
            uniform = nil
            perRow = widths
        }
    }

    @inline(__always)
    func size(_ b: BitWidth) -> Int {
        switch b {
        case .two: sizes.0
        case .four: sizes.1
        case .eight: sizes.2
        case .full: sizes.3
        }
    }

    @inline(__always)
    func bits(_ i: Int) -> BitWidth { uniform ?? perRow[i] }

    /// Byte offset of row `i`: the sum of the sizes before it (each thread chunk computes its own start).
    func offset(ofRow i: Int) -> Int {
        if let uniform { return i * size(uniform) }
        var o = 0
        for k in 0..<i { o += size(perRow[k]) }
        return o
    }
}
