import HaloTensor

/// The address of a message's dither: run seed, epoch and message site (layer and direction).
///
/// The uniform `u` that rounds element `j` of a node's row is a pure function of
/// (seed, epoch, site, global node id, j). A node's row therefore quantizes to the same bytes whichever rank
/// sends it, to whichever peer, at whatever position of the message, with however many threads.
///
/// How `u` is drawn. Philox4x32-10 for every element would cost more than the rest of the kernel together, so
/// each row draws ONE Philox block (stream `.quantization`, counter `(stream, epoch, site, node)`), whose first
/// two words become a 63-bit row key `(k0, m = k1 | 1)`. Element `j` then gets
/// `h = lowbias32(k0 &+ j &* m)` and `u = (h >> 9) / 2^23` — a Weyl sequence through an invertible 32-bit
/// mixer (Wellons' `lowbias32`, a better-avalanching relative of MurmurHash3's `fmix32`), about ten vector
/// instructions per 16 elements. (23 bits because `1 + u` is then built exactly from the bits, without an
/// integer-to-float conversion.) That is adequate because stochastic rounding only needs each `u` to be
/// uniform on [0, 1) and independent of the others and of the data: the step m is odd and the mixer a
/// bijection, so within a row the hashes of different columns never repeat; rows are decorrelated by independent
/// Philox keys (two rows share a sequence only if 63 key bits collide); and nothing about `u` depends on the
/// values rounded. The
/// tests check mean, variance, bins and lag-1 / adjacent-row correlation of the `u`, and unbiasedness of the
/// quantizer itself. It is not meant to be cryptographic or to pass BigCrush.
public struct QuantizationRandomness: Sendable, Hashable {
    /// The run's generator (its key is the seed).
    public var random: CounterRandom
    public var epoch: UInt32
    /// The message site: which layer and direction this message belongs to (see `site(layer:backward:)`).
    public var site: UInt32

    public init(random: CounterRandom, epoch: UInt32, site: UInt32) {
        self.random = random
        self.epoch = epoch
        self.site = site
    }

    public init(seed: UInt64, epoch: UInt32, site: UInt32) {
        self.init(random: CounterRandom(seed: seed), epoch: epoch, site: site)
    }

    /// A conventional site number: forward messages of layer `l` are `2l`, backward (gradient) messages `2l + 1`.
    public static func site(layer: Int, backward: Bool) -> UInt32 {
        UInt32(truncatingIfNeeded: layer) &<< 1 | (backward ? 1 : 0)
    }

    /// The per-row key of node `node` (one Philox block).
    @inline(__always)
    func rowKey(node: Int32) -> RowKey {
        let row = UniformRow(random, .quantization, epoch, site, UInt32(bitPattern: node))
        return RowKey(k0: row.k0, step: row.step)
    }

    /// The dither `u ∈ [0, 1)` of element `column` of node `node`'s row: exactly what the kernels draw
    /// (a scalar reference for tests and for anyone re-deriving a message).
    public func uniform(node: Int32, column: Int) -> Float {
        let key = rowKey(node: node)
        let h = lowbias32(key.k0 &+ UInt32(truncatingIfNeeded: column) &* key.step)
        return Float(h >> 9) * (1.0 / 8_388_608.0)
    }
}

/// One row's dither key: element `j` hashes `k0 &+ j &* step` (`step` odd).
struct RowKey {
    var k0: UInt32
    var step: UInt32
}
