/// The few pieces of Protocol Buffers' wire format that TensorBoard's `Event` and `Summary` messages need:
/// varints, 64-bit and 32-bit little-endian fields, and length-delimited fields (strings and nested messages).
///
/// Why not apple/swift-protobuf: it would bring a runtime library, `.proto` files and a generator plugin whose
/// build takes about ten minutes on a 2-core machine (as the machine description of this project's hosts records), all to encode five fields of two messages. The
/// encoding below is the whole of what those fields need, and the tests decode it back field by field.
struct ProtobufWriter {
    /// The protobuf wire types used here.
    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    private(set) var bytes: [UInt8] = []

    mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func appendKey(field: Int, _ type: WireType) {
        appendVarint(UInt64(field) << 3 | type.rawValue)
    }

    /// An `int64` field: negative values take ten bytes (two's complement as a 64-bit varint), as protobuf says.
    mutating func appendInt64(field: Int, _ value: Int64) {
        appendKey(field: field, .varint)
        appendVarint(UInt64(bitPattern: value))
    }

    mutating func appendDouble(field: Int, _ value: Double) {
        appendKey(field: field, .fixed64)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func appendFloat(field: Int, _ value: Float) {
        appendKey(field: field, .fixed32)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func appendString(field: Int, _ value: String) {
        appendBytes(field: field, Array(value.utf8))
    }

    /// A length-delimited field: a string's UTF-8 or an embedded message's encoding.
    mutating func appendBytes(field: Int, _ value: [UInt8]) {
        appendKey(field: field, .lengthDelimited)
        appendVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }
}
