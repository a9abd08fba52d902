import CZlib

/// zlib's inflate behind a Swift API: decompresses a gzip stream or raw deflate data (a zip member) piece by piece,
/// so an input of any size needs only the caller's fixed buffers.
///
/// zlib itself, through a system library, because the streams are all that is needed: a package would bring a zip
/// reader Halo does not use (ZIPFoundation cannot read gzip) or swift-nio (compress-nio).
final class ZlibInflater {
    enum Format {
        /// A gzip stream, possibly several members one after the other (as `cat a.gz b.gz` makes).
        case gzip
        /// Deflate data without header or trailer, as zip stores it.
        case rawDeflate
    }

    /// What a call to `inflate` did.
    struct Step {
        var consumed: Int
        var produced: Int
        /// The compressed stream (the current gzip member) ended.
        var streamEnded: Bool
    }

    struct Failure: Error {
        let message: String
    }

    private let stream: UnsafeMutablePointer<z_stream>
    let format: Format

    init(_ format: Format) throws {
        self.format = format
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15-bit window; +16 reads a gzip header and trailer, negative means raw deflate.
        let windowBits: Int32 = format == .gzip ? 15 + 16 : -15
        let status = inflateInit2_(stream, windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw Failure(message: "zlib could not start (status \(status))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Decompresses from `input` into `output` until one of them is exhausted or the stream ends.
    func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Step {
        guard let inBase = input.baseAddress, let outBase = output.baseAddress, !output.isEmpty else {
            return Step(consumed: 0, produced: 0, streamEnded: false)
        }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: inBase.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(min(input.count, Int(UInt32.max)))
        stream.pointee.next_out = outBase.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(min(output.count, Int(UInt32.max)))
        let availableIn = Int(stream.pointee.avail_in), availableOut = Int(stream.pointee.avail_out)
        let status = CZlib.inflate(stream, Z_NO_FLUSH)
        let step = Step(consumed: availableIn - Int(stream.pointee.avail_in), produced: availableOut - Int(stream.pointee.avail_out),
                        streamEnded: status == Z_STREAM_END)
        switch status {
        case Z_OK, Z_STREAM_END:
            return step
        case Z_BUF_ERROR:
            // No progress possible with what was given (more input is needed); not an error in itself.
            return step
        default:
            let detail = stream.pointee.msg.map { String(cString: $0) } ?? "status \(status)"
            throw Failure(message: detail)
        }
    }

    /// Prepares for another gzip member after one ended.
    func reset() {
        inflateReset(stream)
    }
}

/// The CRC-32 of zip members (zlib's `crc32`), extended one buffer at a time.
struct CRC32 {
    private(set) var value: UInt32 = 0

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let length = min(bytes.count - offset, Int(UInt32.max))
            value = UInt32(truncatingIfNeeded: crc32(uLong(value), base.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(length)))
            offset += length
        }
    }
}
