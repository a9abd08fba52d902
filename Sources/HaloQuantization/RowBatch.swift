import HaloTensor

// Encoding works on batches of 16 rows. Everything a row needs before its codes can be computed — the Philox block
// of its dither key, the horizontal min/max of its extrema lanes, two divisions — is a long chain of dependent
// scalar instructions (~45 ns per row when done row by row, as much as quantizing 256 elements). Across 16
// rows the same work vectorises: one 16-lane Philox, a butterfly reduction of 16 rows' lanes at once, and one
// vector division each for Δ and 1/Δ. The rows of a batch (16 × 1 KB at width 256) stay in L1 between the
// extrema pass and the quantizing pass.

/// One call's encoding work, split over threads by `RowQuantizer`.
struct EncodeJob {
    let source: UnsafePointer<Float>
    let width: Int
    /// Matrix row of message row i: `rowIndices[i]`, or `firstRow + i` when nil.
    let rowIndices: UnsafePointer<Int32>?
    let firstRow: Int
    let layout: MessageLayout
    let nodeIDs: UnsafePointer<Int32>
    let output: UnsafeMutableRawPointer
    let ranges: UnsafeMutablePointer<Float>?
    let randomness: QuantizationRandomness

    @inline(__always)
    func row(_ i: Int) -> UnsafePointer<Float> {
        source + (rowIndices.map { Int($0[i]) } ?? firstRow + i) * width
    }

    /// Encodes message rows `chunk` (their bytes start at `layout.offset(ofRow: chunk.lowerBound)`).
    func run(_ chunk: Range<Int>) {
        let scratch = UnsafeMutablePointer<SIMD16<Float>>.allocate(capacity: 48)
        defer { scratch.deallocate() }
        var offset = layout.offset(ofRow: chunk.lowerBound)
        var first = chunk.lowerBound
        while first < chunk.upperBound {
            let count = min(16, chunk.upperBound - first)
            offset = encodeBatch(first: first, count: count, offset: offset, scratch: scratch)
            first += count
        }
    }

    /// Encodes message rows `first ..< first + count` (count ≤ 16) starting at byte `offset`; returns the offset
    /// after them.
    private func encodeBatch(first: Int, count: Int, offset: Int, scratch: UnsafeMutablePointer<SIMD16<Float>>)
        -> Int
    {
        let los = scratch, his = scratch + 16, nonFinites = scratch + 32
        var maxCodes = SIMD16<Float>(repeating: 1)
        var nodes = SIMD16<UInt32>()
        for r in 0..<16 {
            los[r] = SIMD16(); his[r] = SIMD16(); nonFinites[r] = SIMD16()
            guard r < count else { continue }
            let i = first + r, b = layout.bits(i)
            if b.isQuantized || ranges != nil {
                (los[r], his[r], nonFinites[r]) = rowExtremaLanes(row(i), width: width)
            }
            if b.isQuantized { maxCodes[r] = Float(b.maxCode) }
            nodes[r] = UInt32(bitPattern: nodeIDs[i])
        }
        let lo = reduceRows(los) { a, b in a.replacing(with: b, where: b .< a) }
        let hi = reduceRows(his) { a, b in a.replacing(with: b, where: b .> a) }
        let nonFinite = reduceRows(nonFinites) { a, b in a + b }
        // NaN marks a row holding NaN or ±∞, or whose range overflows.
        let range = (hi - lo).replacing(with: .nan, where: nonFinite .!= 0)
        let delta = range / maxCodes
        let inverse = maxCodes / range
        let keys = randomness.rowKeys(nodes: nodes)

        var o = offset
        for r in 0..<count {
            let i = first + r, b = layout.bits(i)
            encodeRow(
                row(i), width: width, bits: b, lo: lo[r], range: range[r], delta: delta[r], inv: inverse[r],
                key: RowKey(k0: keys.k0[r], step: keys.step[r]), to: output + o)
            ranges?[i] = range[r]
            o += layout.size(b)
        }
        return o
    }
}

/// Reduces 16 vectors (one per row) to one vector whose lane r is row r's reduction, in 15 two-source
/// permute pairs: each level interleaves two vectors' even and odd lanes and combines them, halving the lanes
/// per row and doubling the rows per vector. Overwrites `v`.
@inline(__always)
func reduceRows(
    _ v: UnsafeMutablePointer<SIMD16<Float>>, _ combine: (SIMD16<Float>, SIMD16<Float>) -> SIMD16<Float>
) -> SIMD16<Float> {
    var vectors = 8
    while vectors >= 1 {
        for k in 0..<vectors {
            let pair = SIMD32(lowHalf: v[2 * k], highHalf: v[2 * k + 1])
            v[k] = combine(pair.evenHalf, pair.oddHalf)
        }
        vectors /= 2
    }
    return v[0]
}

extension QuantizationRandomness {
    /// The row keys of 16 nodes at once: Philox4x32-10 on 16 counters in 64-bit lanes (32×32→64-bit products),
    /// identical to `rowKey(node:)` lane by lane.
    @inline(__always)
    func rowKeys(nodes: SIMD16<UInt32>) -> (k0: SIMD16<UInt32>, step: SIMD16<UInt32>) {
        let (k0a, k1a) = philox8(SIMD8<UInt64>(truncatingIfNeeded: nodes.lowHalf))
        let (k0b, k1b) = philox8(SIMD8<UInt64>(truncatingIfNeeded: nodes.highHalf))
        let k0 = SIMD16(lowHalf: lowWords(k0a), highHalf: lowWords(k0b))
        let k1 = SIMD16(lowHalf: lowWords(k1a), highHalf: lowWords(k1b))
        return (k0, k1 | 1)
    }

    /// Words 0 and 1 of the Philox blocks of counters (quantization stream, epoch, site, node) for 8 nodes.
    @inline(__always)
    private func philox8(_ node: SIMD8<UInt64>) -> (SIMD8<UInt64>, SIMD8<UInt64>) {
        let low: UInt64 = 0xFFFF_FFFF
        var x0 = SIMD8<UInt64>(repeating: UInt64(CounterRandom.Stream.quantization.rawValue &<< 24))
        var x1 = SIMD8<UInt64>(repeating: UInt64(epoch)), x2 = SIMD8<UInt64>(repeating: UInt64(site))
        var x3 = node
        var key0 = random.key.0, key1 = random.key.1
        for _ in 0..<10 {
            let p0 = x0 &* 0xD251_1F53, p1 = x2 &* 0xCD9E_8D57
            let y0 = (p1 &>> 32) ^ x1 ^ UInt64(key0)
            let y2 = (p0 &>> 32) ^ x3 ^ UInt64(key1)
            (x0, x1, x2, x3) = (y0, p1 & low, y2, p0 & low)
            key0 &+= 0x9E37_79B9
            key1 &+= 0xBB67_AE85
        }
        return (x0, x1)
    }

    @inline(__always)
    private func lowWords(_ v: SIMD8<UInt64>) -> SIMD8<UInt32> {
        unsafeBitCast(v, to: SIMD16<UInt32>.self).evenHalf
    }
}
