/// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
///
/// Every random draw in Halo is a pure function of (seed, stream, epoch, layer, global node id, element): no
/// generator state is carried from one draw to the next. That is what makes a partitioned run draw exactly the
/// numbers the single-process run draws for the same node, whichever rank owns it and in whatever order it is
/// visited, and what lets a quantizer's receiver-independent randomness be regenerated for checking.
public struct CounterRandom: Sendable, Hashable {
    /// What the numbers are for; separates otherwise identical counters.
    public enum Stream: UInt32, Sendable {
        case parameterInit = 1
        case dropout = 2
        case quantization = 3
        case synthetic = 4
        case partition = 5
        case assignment = 6
    }

    public let key: (UInt32, UInt32)

    public static func == (a: Self, b: Self) -> Bool { a.key == b.key }
    public func hash(into h: inout Hasher) { h.combine(key.0); h.combine(key.1) }

    public init(seed: UInt64) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// Four 32-bit words for the 128-bit counter `(c0, c1, c2, c3)`.
    @inlinable
    public func block(_ c0: UInt32, _ c1: UInt32, _ c2: UInt32, _ c3: UInt32) -> SIMD4<UInt32> {
        var x0 = c0, x1 = c1, x2 = c2, x3 = c3
        var k0 = key.0, k1 = key.1
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(x0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(x2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (x0, x1, x2, x3) = (hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0)
            k0 &+= 0x9E37_79B9
            k1 &+= 0xBB67_AE85
        }
        return SIMD4(x0, x1, x2, x3)
    }

    /// A uniform draw in [0, 1) from 24 random bits (exactly representable as `Float`).
    @inlinable
    public static func unitFloat(_ bits: UInt32) -> Float {
        Float(bits >> 8) * (1.0 / 16_777_216.0)
    }

    /// The `index`-th uniform in [0, 1) of the sequence addressed by (stream, a, b, c).
    ///
    /// Typical addressing: `a` = epoch, `b` = layer, `c` = global node id, `index` = feature column.
    @inlinable
    public func uniform(_ stream: Stream, _ a: UInt32, _ b: UInt32, _ c: UInt32, index: Int) -> Float {
        let words = block(stream.rawValue &<< 24 ^ UInt32(truncatingIfNeeded: index >> 2), a, b, c)
        return Self.unitFloat(words[index & 3])
    }

    /// Fills `out` with the uniforms `0..<out.count` of sequence (stream, a, b, c), four per Philox block.
    ///
    /// Draw `i` equals `uniform(stream, a, b, c, index: i)`, so a consumer may generate a whole row at once or
    /// single elements and get the same numbers.
    @inlinable
    public func fillUniform(_ out: UnsafeMutablePointer<Float>, count: Int, _ stream: Stream, _ a: UInt32, _ b: UInt32, _ c: UInt32) {
        var i = 0
        while i < count {
            let words = block(stream.rawValue &<< 24 ^ UInt32(truncatingIfNeeded: i >> 2), a, b, c)
            for lane in 0..<min(4, count - i) { out[i + lane] = Self.unitFloat(words[lane]) }
            i += 4
        }
    }

    /// A standard normal draw (Box–Muller on two uniforms of the sequence).
    @inlinable
    public func normal(_ stream: Stream, _ a: UInt32, _ b: UInt32, _ c: UInt32, index: Int) -> Float {
        let words = block(stream.rawValue &<< 24 ^ UInt32(truncatingIfNeeded: index), a, b, c ^ 0x5EED_0001)
        let u1 = max(Self.unitFloat(words[0]), 1.0 / 16_777_216.0)
        let u2 = Self.unitFloat(words[1])
        return (-2 * _logf(u1)).squareRoot() * _cosf(2 * .pi * u2)
    }

    /// A uniform 64-bit word of the sequence (for integer sampling).
    @inlinable
    public func word64(_ stream: Stream, _ a: UInt32, _ b: UInt32, _ c: UInt32, index: Int) -> UInt64 {
        let words = block(stream.rawValue &<< 24 ^ UInt32(truncatingIfNeeded: index >> 1), a, b, c ^ 0xA5A5_0002)
        return (index & 1) == 0
            ? UInt64(words[0]) << 32 | UInt64(words[1])
            : UInt64(words[2]) << 32 | UInt64(words[3])
    }
}

#if canImport(Glibc)
import Glibc
@usableFromInline func _logf(_ x: Float) -> Float { Glibc.logf(x) }
@usableFromInline func _cosf(_ x: Float) -> Float { Glibc.cosf(x) }
#elseif canImport(Darwin)
import Darwin
@usableFromInline func _logf(_ x: Float) -> Float { Darwin.logf(x) }
@usableFromInline func _cosf(_ x: Float) -> Float { Darwin.cosf(x) }
#endif
