/// Little-endian serialisation of what ranks tell each other about assignments (group summaries) and of the state
/// a checkpoint keeps (parameters, optimiser moments, an exchange's caches).
///
/// Arrays are written as their count followed by their elements' bytes, so a reader can check a count against
/// the bytes left before allocating anything: a corrupt count fails cleanly instead of asking for terabytes.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func append(_ value: Int) { append(UInt64(bitPattern: Int64(value))) }
    public mutating func append(_ value: Double) { append(value.bitPattern) }
    public mutating func append(_ value: Bool) { append(value ? 1 : 0) }

    public mutating func append(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func append<T: BitwiseCopyable>(elements values: [T]) {
        append(values.count)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }

    public mutating func append(_ text: String) { append(elements: Array(text.utf8)) }
}

/// Reads what `ByteWriter` wrote, failing cleanly on a short or inconsistent message.
public struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Bytes not read yet.
    public var remaining: Int { bytes.count - offset }

    public struct Truncated: Error, CustomStringConvertible {
        public let needed: Int, available: Int
        public var description: String { "truncated: needed \(needed) more bytes, \(available) left" }
    }

    private mutating func word() throws -> UInt64 {
        guard offset + 8 <= bytes.count else { throw Truncated(needed: 8, available: bytes.count - offset) }
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        offset += 8
        return UInt64(littleEndian: v)
    }

    public mutating func read() throws -> Int { Int(Int64(bitPattern: try word())) }
    public mutating func read() throws -> Double { Double(bitPattern: try word()) }
    public mutating func read() throws -> UInt64 { try word() }
    public mutating func read() throws -> Bool { try word() != 0 }

    /// An array written by `append(elements:)`; its count is checked against the bytes left first.
    public mutating func readElements<T: BitwiseCopyable>(of type: T.Type = T.self) throws -> [T] {
        let count: Int = try read()
        let size = MemoryLayout<T>.stride
        guard count >= 0, count <= remaining / max(size, 1) else {
            let needed = count.multipliedReportingOverflow(by: size)
            throw Truncated(needed: count < 0 || needed.overflow ? Int.max : needed.partialValue, available: remaining)
        }
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count * size)]))
            }
            initialized = count
        }
        offset += count * size
        return values
    }

    public mutating func read() throws -> String {
        String(decoding: try readElements(of: UInt8.self), as: UTF8.self)
    }
}
