import HaloQuantization

/// The few bytes in front of every halo message: how many rows it holds, the bit width of each row, and the drift
/// its sender measured.
///
/// Because the widths travel with the rows, a receiver decodes any message on its own: no agreement round
/// between sender and receiver, which pipelined training needs (a late message was encoded under whatever widths
/// held when it was sent) and which spares AdaQP's assignment a round of traffic.
///
/// Layout (little-endian): row count (UInt32), drift (Float32; NaN when not measured), then either `0` and one
/// width byte (every row the same width), or `1` and the widths as 2-bit codes, four rows a byte (row i in bits
/// 2·(i mod 4) of byte i/4; codes 0, 1, 2, 3 for 2, 4, 8 and 32 bits). At 256 columns a per-row width costs 0.3 %
/// of a 2-bit row.
struct MessageHeader: Equatable {
    var rows: Int
    var bits: BitAssignment
    /// The sender's drift `(1 − cos(previous sent block, this block))/2`, or NaN.
    var drift: Float

    private static let fixedBytes = 9
    private static let widths: [BitWidth] = [.two, .four, .eight, .full]

    /// Encoded size of the header.
    var byteCount: Int {
        switch bits {
        case .uniform: Self.fixedBytes + 1
        case .perRow: Self.fixedBytes + (rows + 3) / 4
        }
    }

    /// Appends the header to `bytes`.
    func write(to bytes: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(rows).littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: drift.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        switch bits {
        case .uniform(let b):
            bytes.append(0)
            bytes.append(UInt8(b.rawValue))
        case .perRow(let list):
            precondition(list.count == rows, "\(list.count) widths for \(rows) rows")
            bytes.append(1)
            var packed = [UInt8](repeating: 0, count: (rows + 3) / 4)
            for (i, b) in list.enumerated() {
                packed[i / 4] |= UInt8(Self.widths.firstIndex(of: b)!) << (2 * (i % 4))
            }
            bytes.append(contentsOf: packed)
        }
    }

    /// Reads a header from the front of `bytes`, expecting `rows` rows.
    init(reading bytes: UnsafeRawBufferPointer, expectedRows: Int) throws {
        guard bytes.count >= Self.fixedBytes else {
            throw MessageError.malformed("message of \(bytes.count) bytes is shorter than its header")
        }
        rows = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        guard rows == expectedRows else {
            throw MessageError.malformed("message holds \(rows) rows, the receiver expects \(expectedRows)")
        }
        drift = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        switch bytes[8] {
        case 0:
            guard bytes.count >= Self.fixedBytes + 1 else {
                throw MessageError.malformed("message of \(bytes.count) bytes is shorter than its header")
            }
            guard let b = BitWidth(rawValue: Int(bytes[9])) else {
                throw MessageError.malformed("message announces a width of \(bytes[9]) bits")
            }
            bits = .uniform(b)
        case 1:
            let packedCount = (rows + 3) / 4
            guard bytes.count >= Self.fixedBytes + packedCount else {
                throw MessageError.malformed("message of \(bytes.count) bytes is shorter than its \(rows) row widths")
            }
            bits = .perRow((0..<rows).map { i in
                Self.widths[Int(bytes[Self.fixedBytes + i / 4] >> (2 * (i % 4))) & 3]
            })
        default:
            throw MessageError.malformed("message announces width encoding \(bytes[8])")
        }
    }

    init(rows: Int, bits: BitAssignment, drift: Float = .nan) {
        self.rows = rows
        self.bits = bits
        self.drift = drift
    }
}

/// A halo message a receiver cannot use.
public enum MessageError: Error, CustomStringConvertible, Equatable {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let what): return "malformed halo message: \(what)"
        }
    }
}
