import Foundation

/// An `.npy` zip member read front to back: its header first, then its data decoded a buffer at a time straight
/// into the destination array, so that the member is never held inflated whole (OGB's `node_feat` of
/// ogbn-papers100M inflates to 57 GB). `NPYArray` reads the same files from memory.
struct NPYStreamReader {
    let header: NPYHeader
    let displayName: String
    private let stream: ZipMemberStream

    init(_ stream: ZipMemberStream) throws {
        self.stream = stream
        displayName = stream.displayName
        // 12 bytes hold the magic, the version and the header length of every format version.
        var prefix = try Self.read(stream, count: min(12, stream.size))
        let headerSize = try NPYHeader.size(ofHeaderIn: prefix, displayName: displayName)
        if headerSize > prefix.count { prefix += try Self.read(stream, count: min(headerSize, stream.size) - prefix.count) }
        header = try NPYHeader(prefix, fileSize: stream.size, displayName: displayName)
    }

    private static func read(_ stream: ZipMemberStream, count: Int) throws -> Data {
        var bytes = Data(count: count)
        try bytes.withUnsafeMutableBytes { out in
            var filled = 0
            while filled < count {
                let got = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: out[filled...]))
                guard got > 0 else { break }
                filled += got
            }
        }
        return bytes
    }

    /// The elements in C order as finite 32-bit floats, checked as `NPYArray.finiteFloats` checks them. The member's
    /// CRC-32 is checked when the last buffer has been read, before the array is returned.
    func finiteFloats(meaning: String, bufferSize: Int = 1 << 20) throws -> [Float] {
        var result = [Float](repeating: 0, count: header.count)
        try result.withUnsafeMutableBufferPointer { destination in
            try forEachElement(bufferSize: bufferSize) { index, element in
                destination[index] = try NPYArray.finiteFloat(element, index: index, displayName: displayName, meaning: meaning)
            }
        }
        return result
    }

    /// Calls `body` with (C-order index, element) for every element in the order they are stored: C order, or column
    /// by column for a Fortran-order matrix. `bufferSize` bytes are read at a time (tests choose sizes that split
    /// elements between reads). The member's CRC-32 is checked after the last element, so whatever `body` built is
    /// to be trusted only once this returns.
    func forEachElement(bufferSize: Int = 1 << 20, _ body: (Int, NPYArray.Element) throws -> Void) throws {
        let type = header.type, elementSize = type.size
        precondition(bufferSize >= 2 * elementSize, "a buffer holds an element carried over and the next")
        let rows = header.shape.first ?? 1, cols = header.shape.count == 2 ? header.shape[1] : 1
        var buffer = [UInt8](repeating: 0, count: bufferSize)
        var next = 0  // the storage index of the next element
        var carried = 0  // bytes of an element split between two reads, moved to the front of the buffer
        try buffer.withUnsafeMutableBytes { raw in
            while true {
                let got = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[carried...]))
                if got == 0 { break }
                let available = carried + got, whole = available / elementSize
                for k in 0..<whole {
                    let stored = next + k
                    // Column-major storage holds element (i, j) at j * rows + i.
                    let index = header.fortranOrder ? (stored % rows) * cols + stored / rows : stored
                    try body(index, NPYArray.element(in: UnsafeRawBufferPointer(raw), at: k * elementSize, type: type))
                }
                next += whole
                carried = available - whole * elementSize
                for b in 0..<carried { raw[b] = raw[whole * elementSize + b] }
            }
        }
    }
}
