/// XXH64 over bytes that arrive in pieces: the same value as `XXHash64.hash` of all the pieces joined.
///
/// The dataset reader feeds it each chunk right after copying that chunk into its array, while the bytes are still in
/// cache, so verifying a file costs no second pass over memory.
public struct XXHash64Stream {
    private let seed: UInt64
    private var v1: UInt64, v2: UInt64, v3: UInt64, v4: UInt64
    /// Bytes given so far, including those waiting in `pending`.
    private var length = 0
    /// The start of a 32-byte stripe not yet complete; the lanes consume only whole stripes.
    private var pending = [UInt8](repeating: 0, count: 32)
    private var pendingCount = 0

    public init(seed: UInt64 = 0) {
        self.seed = seed
        v1 = seed &+ XXHash64.prime1 &+ XXHash64.prime2
        v2 = seed &+ XXHash64.prime2
        v3 = seed
        v4 = seed &- XXHash64.prime1
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        length += bytes.count
        var offset = 0
        if pendingCount > 0 {
            let take = min(32 - pendingCount, bytes.count)
            let start = pendingCount
            pending.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: start).copyMemory(from: base, byteCount: take) }
            pendingCount += take
            offset = take
            guard pendingCount == 32 else { return }
            pending.withUnsafeBytes { consumeStripes($0.baseAddress!, from: 0, to: 32) }
            pendingCount = 0
        }
        let whole = offset + (bytes.count - offset) / 32 * 32
        consumeStripes(base, from: offset, to: whole)
        let rest = bytes.count - whole
        if rest > 0 {
            pending.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: base + whole, byteCount: rest) }
            pendingCount = rest
        }
    }

    /// The XXH64 of every byte given so far.
    public var value: UInt64 {
        var h: UInt64
        if length >= 32 {
            h = XXHash64.rotl(v1, 1) &+ XXHash64.rotl(v2, 7) &+ XXHash64.rotl(v3, 12) &+ XXHash64.rotl(v4, 18)
            h = XXHash64.merge(h, v1)
            h = XXHash64.merge(h, v2)
            h = XXHash64.merge(h, v3)
            h = XXHash64.merge(h, v4)
        } else {
            h = seed &+ XXHash64.prime5
        }
        let (h0, total, count) = (h, length, pendingCount)
        return pending.withUnsafeBytes {
            XXHash64.finish(h0, length: total, tail: UnsafeRawBufferPointer(rebasing: $0.prefix(count)), from: 0)
        }
    }

    /// Runs the four lanes over the whole stripes in `start..<end`; the lanes live in locals so they stay in registers.
    @inline(__always)
    private mutating func consumeStripes(_ base: UnsafeRawPointer, from start: Int, to end: Int) {
        var a = v1, b = v2, c = v3, d = v4
        var offset = start
        while offset < end {
            a = XXHash64.round(a, XXHash64.read64(base, offset))
            b = XXHash64.round(b, XXHash64.read64(base, offset + 8))
            c = XXHash64.round(c, XXHash64.read64(base, offset + 16))
            d = XXHash64.round(d, XXHash64.read64(base, offset + 24))
            offset += 32
        }
        (v1, v2, v3, v4) = (a, b, c, d)
    }
}
