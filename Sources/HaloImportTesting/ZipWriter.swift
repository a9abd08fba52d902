import Foundation

/// Writes zip archives the way `numpy.savez` (stored) and `savez_compressed` (deflated) do, zip64 extra fields
/// included, so tests can build .npz files without Python.
public enum ZipWriter {
    public enum Method: Sendable {
        case stored, deflated
    }

    /// An archive of `members` (name, contents), in order. `zip64` adds the zip64 extra field to every local
    /// header, as numpy's `force_zip64=True` does.
    public static func archive(_ members: [(name: String, contents: Data)], method: Method, zip64: Bool = true) -> Data {
        var out = Data()
        var central = Data()
        for member in members {
            let payload = method == .stored ? member.contents : Compression.rawDeflate(member.contents)
            let crc = Compression.crc32(member.contents)
            let offset = out.count
            let name = Data(member.name.utf8)
            let methodCode: UInt16 = method == .stored ? 0 : 8
            // Local header.
            out.append(le32(0x0403_4B50))
            out.append(le16(zip64 ? 45 : 20))
            out.append(le16(0))
            out.append(le16(methodCode))
            out.append(le32(0))  // time and date
            out.append(le32(crc))
            if zip64 {
                out.append(le32(0xFFFF_FFFF))
                out.append(le32(0xFFFF_FFFF))
            } else {
                out.append(le32(UInt32(payload.count)))
                out.append(le32(UInt32(member.contents.count)))
            }
            out.append(le16(UInt16(name.count)))
            out.append(le16(zip64 ? 20 : 0))
            out.append(name)
            if zip64 {
                out.append(le16(0x0001))
                out.append(le16(16))
                out.append(le64(UInt64(member.contents.count)))
                out.append(le64(UInt64(payload.count)))
            }
            out.append(payload)
            // Central directory entry: 32-bit sizes (they fit), as Python writes them for small members.
            central.append(le32(0x0201_4B50))
            central.append(le16(zip64 ? 45 : 20))
            central.append(le16(zip64 ? 45 : 20))
            central.append(le16(0))
            central.append(le16(methodCode))
            central.append(le32(0))
            central.append(le32(crc))
            central.append(le32(UInt32(payload.count)))
            central.append(le32(UInt32(member.contents.count)))
            central.append(le16(UInt16(name.count)))
            central.append(le16(0))
            central.append(le16(0))
            central.append(le16(0))
            central.append(le16(0))
            central.append(le32(0))
            central.append(le32(UInt32(offset)))
            central.append(name)
        }
        let centralOffset = out.count
        out.append(central)
        out.append(le32(0x0605_4B50))
        out.append(le16(0))
        out.append(le16(0))
        out.append(le16(UInt16(members.count)))
        out.append(le16(UInt16(members.count)))
        out.append(le32(UInt32(central.count)))
        out.append(le32(UInt32(centralOffset)))
        out.append(le16(0))
        return out
    }

    static func le16(_ v: UInt16) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    static func le32(_ v: UInt32) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    static func le64(_ v: UInt64) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
}
