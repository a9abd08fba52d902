import HaloTensor

/// How weight gradients travel in the all-reduce: as float32, rounded to bfloat16, or as 8-bit integers.
///
/// The compressed formats are meant for use with error feedback (HaloTraining's `CompressedGradientReduction`):
/// what a rank's rounding loses in one step is added to its gradient in the next, so rounding errors do not pile
/// up over the run.
public enum GradientCompression: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    /// Float32: the plain all-reduce.
    case none
    /// bfloat16 — float32's sign, exponent and top seven mantissa bits, rounded to nearest even: half the bytes,
    /// a relative error of at most 2⁻⁸ per value.
    case bf16
    /// The quantizer of halo messages (`RowQuantizer`) at 8 bits, on rows of `GradientCodec.rowWidth` values each
    /// with its own range, stochastically rounded: a quarter of the bytes and 8 more per row.
    case int8

    public var description: String { rawValue }
}

/// Encodes and decodes a flat run of gradient values in one `GradientCompression` format.
///
/// Values are cut into rows of `rowWidth` (the last one shorter); only int8 uses the rows (each has its own range
/// and its own dither, addressed by its row number), bf16 and none are element-wise. Both ends must agree on the
/// value count, which the message does not carry: `decode` checks the byte count against it.
public struct GradientCodec: Sendable {
    public let compression: GradientCompression

    /// Values per int8 row: one range (8 bytes) per 256 values costs 3 % of the 8-bit codes.
    public static let rowWidth = 256

    public init(_ compression: GradientCompression) { self.compression = compression }

    /// Rows of `rowWidth` that `count` values fill (the last one partly).
    public static func rows(count: Int) -> Int { (count + rowWidth - 1) / rowWidth }

    /// Bytes of `count` encoded values.
    public func encodedSize(count: Int) -> Int {
        switch compression {
        case .none: 4 * count
        case .bf16: 2 * count
        case .int8:
            count / Self.rowWidth * RowQuantizer.encodedSize(width: Self.rowWidth, bits: .eight)
                + (count % Self.rowWidth == 0 ? 0 : RowQuantizer.encodedSize(width: count % Self.rowWidth, bits: .eight))
        }
    }

    /// Encodes `values`. For int8, row `i` of `values` draws its dither as node `firstRow + i` of `randomness`, so a
    /// caller that gives every row it encodes in a step its own number gets independent rounding.
    public func encode(_ values: UnsafeBufferPointer<Float>, randomness: QuantizationRandomness, firstRow: Int) -> [UInt8] {
        let count = values.count
        var bytes = [UInt8](repeating: 0, count: encodedSize(count: count))
        guard count > 0 else { return bytes }
        switch compression {
        case .none:
            bytes.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(values)) }
        case .bf16:
            bytes.withUnsafeMutableBytes { raw in
                let out = raw.bindMemory(to: UInt16.self)
                for i in 0..<count { out[i] = Self.bfloat16Bits(values[i]).littleEndian }
            }
        case .int8:
            let width = Self.rowWidth, whole = count / width
            bytes.withUnsafeMutableBytes { raw in
                var offset = 0
                // The whole rows as one matrix, then the short last row as its own (no padding on the wire).
                for (rows, cols, start) in [(whole, width, 0), (count % width == 0 ? 0 : 1, count % width, whole * width)]
                where rows > 0 {
                    let m = Matrix(rows: rows, cols: cols, storage: Array(values[start..<(start + rows * cols)]))
                    let ids = (0..<rows).map { Int32(truncatingIfNeeded: firstRow + start / width + $0) }
                    offset += RowQuantizer.encode(
                        m, rows: .range(0..<rows), bits: .uniform(.eight), nodeIDs: ids, randomness: randomness,
                        into: UnsafeMutableRawBufferPointer(rebasing: raw[offset...]))
                }
            }
        }
        return bytes
    }

    /// Decodes `bytes`, which must hold `out.count` encoded values, into `out`.
    public func decode(_ bytes: [UInt8], into out: UnsafeMutableBufferPointer<Float>) throws {
        let count = out.count
        guard bytes.count == encodedSize(count: count) else {
            throw QuantizationError.messageSize(expected: encodedSize(count: count), actual: bytes.count, rows: Self.rows(count: count),
                                                width: Self.rowWidth)
        }
        guard count > 0 else { return }
        switch compression {
        case .none:
            bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(out).copyMemory(from: $0) }
        case .bf16:
            bytes.withUnsafeBytes { raw in
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.load(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
                }
            }
        case .int8:
            let width = Self.rowWidth, whole = count / width
            try bytes.withUnsafeBytes { raw in
                var offset = 0
                for (rows, cols, start) in [(whole, width, 0), (count % width == 0 ? 0 : 1, count % width, whole * width)]
                where rows > 0 {
                    let size = RowQuantizer.encodedSize(width: cols, bits: .uniform(.eight), rows: rows)
                    var m = Matrix(rows: rows, cols: cols)
                    try RowQuantizer.decode(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + size)]), bits: .uniform(.eight),
                                            into: &m, rows: .range(0..<rows))
                    m.storage.withUnsafeBufferPointer { (out.baseAddress! + start).update(from: $0.baseAddress!, count: $0.count) }
                    offset += size
                }
            }
        }
    }

    /// The bfloat16 nearest to `x` (ties to even) as its 16 bits; NaN stays a (quiet) NaN, ±∞ stays ±∞, and a
    /// finite value too large for bfloat16 rounds to ±∞ as float32 arithmetic would.
    @inline(__always)
    public static func bfloat16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }
}
