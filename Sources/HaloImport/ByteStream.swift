import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes read front to back, a buffer at a time: a file, or what a decompressor makes of one.
protocol ByteStream: AnyObject {
    /// How errors name the input, e.g. `arxiv/raw/edge.csv.gz`.
    var displayName: String { get }
    /// Fills the front of `buffer`; returns how many bytes it wrote, 0 only at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A file read with `read(2)`; the descriptor is closed when the stream goes away.
final class FileByteStream: ByteStream {
    let displayName: String
    private let descriptor: Int32

    init(path: String, displayName: String) throws {
        self.displayName = displayName
        descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw ImportError(errno == ENOENT ? .missingFile : .io, file: displayName, field: "file", found: "not readable (\(reason))",
                              expected: "a readable file")
        }
    }

    deinit { close(descriptor) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        while true {
            let count = Glibc.read(descriptor, base, buffer.count)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw ImportError(.io, file: displayName, field: "file", found: "unreadable (\(String(cString: strerror(errno))))",
                              expected: "a readable file")
        }
    }
}

/// Opens a file that may be gzip-compressed: what its first two bytes say decides, not its name, so
/// `edge.csv` holding gzip data and `edge.csv.gz` already decompressed both read. A name ending in `.gz` whose
/// content is not gzip is still refused, since it most likely means a damaged download.
func openPossiblyCompressed(path: String, displayName: String) throws -> any ByteStream {
    let probe = try FileByteStream(path: path, displayName: displayName)
    var magic: [UInt8] = [0, 0]
    var filled = 0
    while filled < 2 {
        let count = try magic.withUnsafeMutableBytes { try probe.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
        if count == 0 { break }
        filled += count
    }
    let file = try FileByteStream(path: path, displayName: displayName)
    if filled == 2 && magic == [0x1F, 0x8B] { return try GzipStream(file) }
    if path.hasSuffix(".gz") {
        let found = filled == 0 ? "empty" : "not gzip (starts with " + magic[..<filled].map { String(format: "0x%02x", $0) }.joined(separator: " ") + ")"
        throw ImportError(.badCompression, file: displayName, field: "gzip header", found: found, expected: "gzip data (0x1f 0x8b …) as the .gz name says")
    }
    return file
}
