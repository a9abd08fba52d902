import HaloTensor

// Encoding works on batches of 16 rows. Everything a row needs before its codes can be computed — the Philox block
// of its dither key, the horizontal min/max of its extrema lanes, two divisions — is a long chain of dependent
// scalar instructions (~45 ns per row when done row by row, as much as quantizing 256 elements). Across 16
// rows the same work vectorises: one 16-lane Philox, a butterfly reduction of 16 rows' lanes at once, and one
// vector division each for Δ and 1/Δ.
//
// The batches are software-pipelined: while the rows of batch k are quantized, the extrema pass of batch k + 1
// runs alongside, one row per quantized row, and the rows of batch k + 2 are prefetched. The quantizing pass is
// arithmetic on rows already in L1 (16 rows × 1 KB at width 256); the extrema pass reads rows the prefetches
// brought in. Without this, one thread streaming 4-bit rows of width 256 from DRAM alternated between waiting
// and computing at ~8 GB/s; with it, ~14 GB/s, close to the in-cache rate (see `halo quantbench`).

/// The per-row parameters of one batch, lane r for row r.
struct BatchParameters {
    var lo = SIMD16<Float>(), range = SIMD16<Float>(), delta = SIMD16<Float>(), inverse = SIMD16<Float>()
    var k0 = SIMD16<UInt32>(), step = SIMD16<UInt32>()
}

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
        guard !chunk.isEmpty else { return }
        // Extrema lanes (lo, hi, non-finite) of 16 rows each for the batch being finished and the next one.
        let scratch = UnsafeMutablePointer<SIMD16<Float>>.allocate(capacity: 96)
        defer { scratch.deallocate() }
        var current = scratch, next = scratch + 48
        var offset = layout.offset(ofRow: chunk.lowerBound)
        var first = chunk.lowerBound
        var count = min(16, chunk.upperBound - first)
        clearLanes(current)
        for r in 0..<count { storeLanes(of: first + r, into: current, slot: r) }
        var parameters = finishBatch(first: first, count: count, lanes: current)
        while true {
            let nextFirst = first + count
            let nextCount = min(16, chunk.upperBound - nextFirst)
            if nextCount > 0 { clearLanes(next) }
            for r in 0..<count {
                if nextFirst + 16 + r < chunk.upperBound { prefetchRow(nextFirst + 16 + r) }
                if r < nextCount { storeLanes(of: nextFirst + r, into: next, slot: r) }
                let i = first + r, b = layout.bits(i)
                encodeRow(
                    row(i), width: width, bits: b, lo: parameters.lo[r], range: parameters.range[r],
                    delta: parameters.delta[r], inv: parameters.inverse[r],
                    key: RowKey(k0: parameters.k0[r], step: parameters.step[r]), to: output + offset)
                ranges?[i] = parameters.range[r]
                offset += layout.size(b)
            }
            // Only the chunk's last batch is shorter than 16, so `nextCount ≤ count` and every row of `next` is in.
            guard nextCount > 0 else { break }
            parameters = finishBatch(first: nextFirst, count: nextCount, lanes: next)
            swap(&current, &next)
            first = nextFirst
            count = nextCount
        }
    }

    /// Asks for message row `i` to be brought into the cache: the extrema pass reads it one batch from now.
    @inline(__always)
    private func prefetchRow(_ i: Int) {
        let start = UnsafeRawPointer(row(i))
        var offset = 0
        while offset < 4 * width {
            prefetch(start + offset)
            offset += 64
        }
    }

    @inline(__always)
    private func clearLanes(_ lanes: UnsafeMutablePointer<SIMD16<Float>>) {
        lanes.update(repeating: SIMD16(), count: 48)
    }

    /// The extrema lanes of message row `i` into slot `slot` (only rows whose range is needed).
    @inline(__always)
    private func storeLanes(of i: Int, into lanes: UnsafeMutablePointer<SIMD16<Float>>, slot: Int) {
        if layout.bits(i).isQuantized || ranges != nil {
            (lanes[slot], lanes[16 + slot], lanes[32 + slot]) = rowExtremaLanes(row(i), width: width)
        }
    }

    /// Reduces a batch's extrema lanes and derives every row's parameters and dither key.
    private func finishBatch(first: Int, count: Int, lanes: UnsafeMutablePointer<SIMD16<Float>>) -> BatchParameters {
        var maxCodes = SIMD16<Float>(repeating: 1)
        var nodes = SIMD16<UInt32>()
        var quantizedRows = 0
        for r in 0..<count {
            let b = layout.bits(first + r)
            if b.isQuantized {
                maxCodes[r] = Float(b.maxCode)
                quantizedRows += 1
            }
            nodes[r] = UInt32(bitPattern: nodeIDs[first + r])
        }
        var p = BatchParameters()
        // Raw Float32 rows need nothing unless their ranges are asked for.
        guard quantizedRows > 0 || ranges != nil else { return p }
        p.lo = reduceRows(lanes, .minimum)
        let hi = reduceRows(lanes + 16, .maximum)
        let nonFinite = reduceRows(lanes + 32, .sum)
        // NaN marks a row holding NaN or ±∞, or whose range overflows Float32.
        let range = hi - p.lo
        p.range = range.replacing(with: .nan, where: nonFinite .!= 0 .| .!(range .< .infinity))
        p.delta = p.range / maxCodes
        p.inverse = maxCodes / p.range
        (p.k0, p.step) = randomness.rowKeys(nodes: nodes)
        return p
    }
}

/// How `reduceRows` combines lanes.
enum LaneReduction {
    case minimum, maximum, sum

    @inline(__always)
    func callAsFunction(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        switch self {
        case .minimum: a.replacing(with: b, where: b .< a)
        case .maximum: a.replacing(with: b, where: b .> a)
        case .sum: a + b
        }
    }
}

/// Reduces 16 vectors (one per row) to one vector whose lane r is row r's reduction, in 15 two-source
/// permute pairs: each level interleaves two vectors' even and odd lanes and combines them, halving the lanes
/// per row and doubling the rows per vector. Overwrites `v`.
@inline(__always)
func reduceRows(_ v: UnsafeMutablePointer<SIMD16<Float>>, _ combine: LaneReduction) -> SIMD16<Float> {
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

/// LLVM's prefetch intrinsic (read, keep in all cache levels, data cache). Swift has no prefetch API; a call to
/// a function named like the intrinsic compiles to the instruction (`prefetcht0` on x86-64, `prfm` on arm64).
@_silgen_name("llvm.prefetch.p0")
private func llvmPrefetch(_ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ cache: Int32)

@inline(__always)
func prefetch(_ address: UnsafeRawPointer) {
    llvmPrefetch(address, 0, 3, 1)
}
