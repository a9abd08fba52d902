/// The decompressed bytes of a gzip file, produced as they are read: memory is two fixed buffers whatever the
/// file's size. A stream that stops before its last member's trailer (a truncated download) or whose data or
/// CRC is wrong is an error naming the file.
final class GzipStream: ByteStream {
    private let source: any ByteStream
    private let inflater: ZlibInflater
    private var input: [UInt8]
    private var inputStart = 0, inputEnd = 0
    private var sourceEnded = false
    /// Set between a member's end and the next member's first byte (or the end of the file).
    private var betweenMembers = false
    private var finished = false
    private var produced = 0

    var displayName: String { source.displayName }

    init(_ source: any ByteStream, bufferSize: Int = 1 << 20) throws {
        self.source = source
        input = [UInt8](repeating: 0, count: bufferSize)
        do { inflater = try ZlibInflater(.gzip) } catch let failure as ZlibInflater.Failure {
            throw ImportError(.badCompression, file: source.displayName, field: "gzip stream", found: failure.message, expected: "zlib to start")
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while !finished {
            if inputStart == inputEnd && !sourceEnded { try refill() }
            if inputStart == inputEnd && sourceEnded {
                if betweenMembers { finished = true; return 0 }
                throw ImportError(.badCompression, file: displayName, field: "gzip stream",
                                  found: "cut short after \(produced) decompressed bytes", expected: "a complete gzip file (was the download interrupted?)")
            }
            let step: ZlibInflater.Step
            do {
                step = try input.withUnsafeBytes { raw in
                    try inflater.inflate(UnsafeRawBufferPointer(rebasing: raw[inputStart..<inputEnd]), into: buffer)
                }
            } catch let failure as ZlibInflater.Failure {
                throw ImportError(.badCompression, file: displayName, field: "gzip data after \(produced) decompressed bytes",
                                  found: "corrupt (\(failure.message))", expected: "a valid gzip stream")
            }
            inputStart += step.consumed
            produced += step.produced
            if step.consumed > 0 { betweenMembers = false }
            if step.streamEnded {
                inflater.reset()
                betweenMembers = true
            }
            if step.produced > 0 { return step.produced }
        }
        return 0
    }

    private func refill() throws {
        let count = try input.withUnsafeMutableBytes { try source.read(into: $0) }
        inputStart = 0
        inputEnd = count
        if count == 0 { sourceEnded = true }
    }
}
