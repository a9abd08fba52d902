/// CRC-32C (Castagnoli polynomial, reflected 0x82F63B78), the checksum TFRecord framing uses.
///
/// Table-driven, one byte per step: event files carry a few hundred bytes per epoch, so the slicing-by-8 variant's
/// extra 7 KiB of tables would buy nothing measurable.
public enum CRC32C {
    /// The reflected Castagnoli polynomial.
    static let polynomial: UInt32 = 0x82F6_3B78

    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 {
            crc = crc & 1 == 1 ? (crc >> 1) ^ polynomial : crc >> 1
        }
        return crc
    }

    /// The CRC-32C of `bytes` (initial value and final XOR 0xFFFFFFFF, as every CRC-32C user expects).
    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes {
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
        }
        return ~crc
    }

    /// TFRecord stores checksums masked, because a CRC computed over data that itself embeds CRCs is weak
    /// (the constant and rotation come from LevelDB's log format, which TFRecord copied).
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// The checksum a masked value was made from.
    public static func unmasked(_ masked: UInt32) -> UInt32 {
        let rotated = masked &- 0xA282_EAD8
        return (rotated >> 17) | (rotated << 15)
    }
}
