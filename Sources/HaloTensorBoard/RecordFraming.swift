/// TFRecord framing, the container of TensorBoard event files: each record is
///
///     uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data
///
/// so a reader can find a torn or corrupted record instead of decoding garbage.
public enum RecordFraming {
    /// Bytes a record adds around its data.
    public static let overhead = 8 + 4 + 4

    /// `data` framed as one record, appended to `output`.
    public static func append(_ data: [UInt8], to output: inout [UInt8]) {
        var length = [UInt8]()
        withUnsafeBytes(of: UInt64(data.count).littleEndian) { length.append(contentsOf: $0) }
        output.append(contentsOf: length)
        appendUInt32(CRC32C.masked(CRC32C.checksum(length)), to: &output)
        output.append(contentsOf: data)
        appendUInt32(CRC32C.masked(CRC32C.checksum(data)), to: &output)
    }

    private static func appendUInt32(_ value: UInt32, to output: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) }
    }
}
