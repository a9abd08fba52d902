import Foundation

/// One zip member's uncompressed bytes, read front to back a buffer at a time: a deflated member is inflated as it
/// is read, so a member of any size needs only the reader's buffer. Reaching the declared size checks that the
/// deflate stream ends there and that the CRC-32 matches; the bytes handed out before are not yet verified, so a
/// reader must read to the end (a return of 0) before trusting what it built.
final class ZipMemberStream: ByteStream {
    let displayName: String
    /// The uncompressed size the archive records.
    let size: Int
    /// The member's bytes as stored in the archive (a slice of the memory-mapped file).
    private let stored: Data
    /// Nil for a stored member, which is copied as it lies.
    private let inflater: ZlibInflater?
    private let expectedCRC: UInt32
    private var crc = CRC32()
    private var consumed = 0
    private var produced = 0
    private var streamEnded = false
    private var verified = false

    init(stored: Data, method: UInt16, size: Int, crc: UInt32, displayName: String) throws {
        self.stored = stored
        self.size = size
        expectedCRC = crc
        self.displayName = displayName
        switch method {
        case 0:
            guard size == stored.count else {
                throw ImportError(.badArchive, file: displayName, field: "sizes of stored member", found: "\(stored.count) stored, \(size) declared",
                                  expected: "equal sizes")
            }
            inflater = nil
        case 8:
            do { inflater = try ZlibInflater(.rawDeflate) } catch let failure as ZlibInflater.Failure {
                throw ImportError(.badCompression, file: displayName, field: "deflate stream", found: failure.message, expected: "zlib to start")
            }
        default:
            throw ImportError(.badCompression, file: displayName, field: "compression method", found: "\(method)",
                              expected: "0 (stored) or 8 (deflate), what numpy.savez and savez_compressed write")
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let wanted = min(buffer.count, size - produced)
        guard wanted > 0 else {
            if !verified { try verifyEnd() }
            return 0
        }
        let out = UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted])
        let written: Int
        if let inflater {
            written = try inflate(with: inflater, into: out)
        } else {
            stored.withUnsafeBytes { raw in out.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[consumed..<(consumed + wanted)])) }
            consumed += wanted
            written = wanted
        }
        crc.update(UnsafeRawBufferPointer(rebasing: out[..<written]))
        produced += written
        return written
    }

    /// Inflates at least one byte into `out`, or fails: the stream may not end before the declared size.
    private func inflate(with inflater: ZlibInflater, into out: UnsafeMutableRawBufferPointer) throws -> Int {
        try stored.withUnsafeBytes { input in
            while true {
                let step = try self.step(inflater, input, into: out)
                if step.produced > 0 { return step.produced }
                if streamEnded || step.consumed == 0 {
                    throw sizeError(found: streamEnded ? "\(produced) bytes" : "cut short after \(produced) bytes")
                }
            }
        }
    }

    /// One call to zlib on the input not yet consumed.
    private func step(_ inflater: ZlibInflater, _ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws -> ZlibInflater.Step {
        let step: ZlibInflater.Step
        do {
            step = try inflater.inflate(UnsafeRawBufferPointer(rebasing: input[consumed...]), into: out)
        } catch let failure as ZlibInflater.Failure {
            throw ImportError(.badCompression, file: displayName, field: "deflate data after \(produced) bytes",
                              found: "corrupt (\(failure.message))", expected: "a valid deflate stream")
        }
        consumed += step.consumed
        streamEnded = streamEnded || step.streamEnded
        return step
    }

    private func sizeError(found: String) -> ImportError {
        ImportError(.badCompression, file: displayName, field: "deflate stream", found: found, expected: "\(size) bytes, as the archive records")
    }

    /// At the declared size: a deflate stream must end there (one spare byte shows data beyond it), and the CRC-32
    /// of everything read must be the archive's.
    private func verifyEnd() throws {
        if let inflater, !streamEnded {
            var spare: UInt8 = 0
            try withUnsafeMutableBytes(of: &spare) { out in
                try stored.withUnsafeBytes { input in
                    while !streamEnded {
                        let step = try self.step(inflater, input, into: out)
                        guard step.produced == 0, streamEnded || step.consumed > 0 else {
                            throw sizeError(found: step.produced > 0 ? "more than \(size) bytes" : "cut short after \(produced) bytes")
                        }
                    }
                }
            }
        }
        guard crc.value == expectedCRC else {
            throw ImportError(.checksumMismatch, file: displayName, field: "CRC-32", found: String(format: "%08x", crc.value),
                              expected: String(format: "%08x", expectedCRC) + " as the archive records: the file is damaged")
        }
        verified = true
    }
}
