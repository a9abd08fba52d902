import CZlib
import Foundation

/// zlib's deflate, for writing the compressed inputs the importers read (gzip files, deflated zip members).
public enum Compression {
    /// `data` as a gzip file (one member), as `gzip` or Python's `gzip.open` write it.
    public static func gzip(_ data: Data) -> Data { deflate(data, windowBits: 15 + 16) }

    /// `data` as raw deflate (no header or trailer), as zip stores a deflated member.
    public static func rawDeflate(_ data: Data) -> Data { deflate(data, windowBits: -15) }

    /// zlib's CRC-32 of `data`.
    public static func crc32(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { raw in
            UInt32(truncatingIfNeeded: CZlib.crc32(0, raw.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(raw.count)))
        }
    }

    private static func deflate(_ data: Data, windowBits: Int32) -> Data {
        var stream = z_stream()
        let status = deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "deflateInit2 failed: \(status)")
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(data.count)))
        var output = Data(count: bound)
        let produced = data.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(out.count)
                let result = CZlib.deflate(&stream, Z_FINISH)
                precondition(result == Z_STREAM_END, "deflate did not finish: \(result)")
                return out.count - Int(stream.avail_out)
            }
        }
        output.count = produced
        return output
    }
}
