/// A row's worth of uniform numbers from ONE Philox block: `u_j = lowbias32(k0 + j·step) / 2^32` (23 bits kept).
///
/// Philox for every element costs ten multiply rounds per four numbers, more than the kernels that consume them
/// (dropout masks, stochastic rounding). Here each row — addressed like any counter draw, by (stream, epoch,
/// layer, global node id) — draws one block for a key `(k0, step | 1)`, and element `j` is a Weyl sequence through
/// Chris Wellons' invertible `lowbias32` mixer: about ten vector instructions per 16 numbers. Within a row the
/// inputs never repeat (odd step) and the mixer is a bijection; rows are decorrelated by independent Philox keys.
/// That is what dithering and dropout need — uniform, independent of each other and of the data — not a
/// cryptographic or BigCrush-grade generator.
public struct UniformRow: Sendable {
    public let k0: UInt32
    public let step: UInt32

    @inlinable
    public init(_ random: CounterRandom, _ stream: CounterRandom.Stream, _ a: UInt32, _ b: UInt32, _ c: UInt32) {
        let words = random.block(stream.rawValue &<< 24, a, b, c)
        k0 = words[0]
        step = words[1] | 1
    }

    /// Number `j` of the row, in [0, 1).
    @inlinable
    public func uniform(_ j: Int) -> Float {
        Float(lowbias32(k0 &+ UInt32(truncatingIfNeeded: j) &* step) >> 9) * (1.0 / 8_388_608.0)
    }

    /// Numbers `j ..< j + 16` of the row, equal to `uniform(j + lane)` lane by lane.
    @inlinable @inline(__always)
    public func block(at j: Int) -> SIMD16<Float> {
        let lanes = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let h = lowbias32(SIMD16(repeating: k0) &+ (lanes &+ SIMD16(repeating: UInt32(truncatingIfNeeded: j))) &* step)
        return SIMD16<Float>(h &>> 9) * (1.0 / 8_388_608.0)
    }

    /// Writes numbers `0..<count` to `out` (16 at a time).
    @inlinable
    public func fill(_ out: UnsafeMutablePointer<Float>, count: Int) {
        var j = 0
        while j + 16 <= count {
            storeVector(block(at: j), out + j)
            j += 16
        }
        while j < count {
            out[j] = uniform(j)
            j += 1
        }
    }
}

/// Chris Wellons' `lowbias32` integer mixer: invertible, well avalanching, two multiplies.
@inlinable @inline(__always)
public func lowbias32(_ value: UInt32) -> UInt32 {
    var x = value
    x ^= x &>> 16
    x &*= 0x7FEB_352D
    x ^= x &>> 15
    x &*= 0x846C_A68B
    x ^= x &>> 16
    return x
}

/// `lowbias32` on 16 lanes.
@inlinable @inline(__always)
public func lowbias32(_ value: SIMD16<UInt32>) -> SIMD16<UInt32> {
    var x = value
    x ^= x &>> 16
    x &*= 0x7FEB_352D
    x ^= x &>> 15
    x &*= 0x846C_A68B
    x ^= x &>> 16
    return x
}
