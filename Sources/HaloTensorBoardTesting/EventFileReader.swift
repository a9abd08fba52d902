import Foundation

/// Reads TensorBoard event files back the way TensorBoard does, for tests, sharing no code with the writer
/// (`HaloTensorBoard`): splits the TFRecord framing, checks both masked CRC-32Cs of every record with a bit-at-a-time
/// CRC, and decodes `Event` messages with its own protobuf reader. Unexpected fields are errors, so a test sees
/// anything the writer adds.
public enum EventFileReader {
    public struct ReadError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public struct Event {
        public var wallTime: Double?
        public var step: Int64 = 0
        public var fileVersion: String?
        /// `tag: simple_value` of the summary, in order.
        public var scalars: [(tag: String, value: Float)] = []

        public func scalar(_ tag: String) -> Float? { scalars.first { $0.tag == tag }?.value }
    }

    /// A straightforward bit-at-a-time CRC-32C, the reference the table-driven one is tested against.
    public static func bitwiseCRC32C(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0x82F6_3B78 : 0) }
        }
        return ~crc
    }

    public static func mask(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }

    /// The records of `bytes`, every CRC checked.
    public static func records(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var records: [[UInt8]] = []
        var offset = 0
        func uint32(at i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[i + $1]) << (8 * $1) } }
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw ReadError(description: "torn header at \(offset)") }
            let lengthBytes = Array(bytes[offset..<offset + 8])
            let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(lengthBytes[$1]) << (8 * UInt64($1)) }
            guard uint32(at: offset + 8) == mask(bitwiseCRC32C(lengthBytes)) else {
                throw ReadError(description: "bad length CRC at \(offset)")
            }
            let start = offset + 12
            guard start + Int(length) + 4 <= bytes.count else { throw ReadError(description: "torn record at \(offset)") }
            let data = Array(bytes[start..<start + Int(length)])
            guard uint32(at: start + Int(length)) == mask(bitwiseCRC32C(data)) else {
                throw ReadError(description: "bad data CRC at \(offset)")
            }
            records.append(data)
            offset = start + Int(length) + 4
        }
        return records
    }

    public static func events(inFile path: String) throws -> [Event] {
        try records(Array(try Data(contentsOf: URL(fileURLWithPath: path)))).map(decodeEvent)
    }

    // MARK: Protobuf

    private struct Fields {
        var bytes: [UInt8]
        var offset = 0

        mutating func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard offset < bytes.count, shift < 64 else { throw ReadError(description: "bad varint") }
                let byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }

        mutating func take(_ count: Int) throws -> [UInt8] {
            guard offset + count <= bytes.count else { throw ReadError(description: "truncated field") }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        /// The next (field, wire type, payload) triple; payload as raw bytes (varints decoded into 8 bytes LE).
        mutating func next() throws -> (field: Int, wire: Int, payload: [UInt8])? {
            guard offset < bytes.count else { return nil }
            let key = try varint()
            let wire = Int(key & 7)
            switch wire {
            case 0:
                let value = try varint()
                return (Int(key >> 3), wire, withUnsafeBytes(of: value.littleEndian) { Array($0) })
            case 1: return (Int(key >> 3), wire, try take(8))
            case 2: return (Int(key >> 3), wire, try take(Int(try varint())))
            case 5: return (Int(key >> 3), wire, try take(4))
            default: throw ReadError(description: "unknown wire type \(wire)")
            }
        }
    }

    private static func uint64(_ bytes: [UInt8]) -> UInt64 {
        bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    public static func decodeEvent(_ bytes: [UInt8]) throws -> Event {
        var event = Event()
        var fields = Fields(bytes: bytes)
        while let (field, wire, payload) = try fields.next() {
            switch (field, wire) {
            case (1, 1): event.wallTime = Double(bitPattern: uint64(payload))
            case (2, 0): event.step = Int64(bitPattern: uint64(payload))
            case (3, 2): event.fileVersion = String(decoding: payload, as: UTF8.self)
            case (5, 2):
                var summary = Fields(bytes: payload)
                while let (valueField, valueWire, value) = try summary.next() {
                    guard valueField == 1, valueWire == 2 else { continue }
                    var tag = "", number: Float?
                    var parts = Fields(bytes: value)
                    while let (f, w, p) = try parts.next() {
                        if f == 1, w == 2 { tag = String(decoding: p, as: UTF8.self) }
                        if f == 2, w == 5 { number = Float(bitPattern: UInt32(truncatingIfNeeded: uint64(p))) }
                    }
                    guard let number else { throw ReadError(description: "value \(tag) has no simple_value") }
                    event.scalars.append((tag, number))
                }
            default:
                throw ReadError(description: "unexpected field \(field) of wire type \(wire)")
            }
        }
        return event
    }
}
