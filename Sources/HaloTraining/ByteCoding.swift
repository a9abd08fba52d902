/// Little-endian serialisation of the few numbers ranks exchange about assignments (group summaries).
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    mutating func append(_ value: Int) { append(UInt64(bitPattern: Int64(value))) }
    mutating func append(_ value: Double) { append(value.bitPattern) }

    mutating func append(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Reads what `ByteWriter` wrote, failing cleanly on a short message.
struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    struct Truncated: Error, CustomStringConvertible {
        let needed: Int, available: Int
        var description: String { "message truncated: needed \(needed) more bytes, \(available) left" }
    }

    private mutating func word() throws -> UInt64 {
        guard offset + 8 <= bytes.count else { throw Truncated(needed: 8, available: bytes.count - offset) }
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        offset += 8
        return UInt64(littleEndian: v)
    }

    mutating func read() throws -> Int { Int(Int64(bitPattern: try word())) }
    mutating func read() throws -> Double { Double(bitPattern: try word()) }
}
