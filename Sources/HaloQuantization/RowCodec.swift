import HaloTensor
// The row kernels: one fused pass that quantizes and bit-packs a row into the wire buffer, and one fused pass that
// unpacks and dequantizes it into a matrix row. Everything here works on raw pointers; `RowQuantizer` validates
// sizes and splits messages over threads.
//
// Wire format of one row of width D at b ∈ {2, 4, 8} bits:
//   lo: Float32 LE | Δ: Float32 LE | ceil(D·b/8) bytes of codes,
// code j in byte j·b/8 at bit offset (j·b) mod 8, low bits first; unused high bits of the last byte are zero.
// At b = 32 the row is its D Float32 values, LE, and nothing else.
//
// Encoding (with lo = min x, hi = max x, both stored exactly as Float32):
//   Δ   = (hi − lo) / (2^b − 1)                 Float32, stored as is
//   inv = (2^b − 1)/(hi − lo), lowered by ulps until (hi − lo)·inv ≤ 2^b − 1 in Float32
//   t   = (x − lo)·inv                          ∈ [0, 2^b − 1]: monotone rounding, so no clamp is needed
//   q   = ⌊t⌋ + [u < t − ⌊t⌋]                   ≤ 2^b − 1, since ⌊t⌋ = 2^b − 1 implies t − ⌊t⌋ = 0
// Decoding: x̂ = lo + q·Δ as one fused multiply-add, with exactly the stored lo and Δ.
//
// `⌊t⌋ + [u < frac t]` is `⌊t + u′⌋` with `u′ = 1 − u`, i.e. the issue's `floor((x − lo)/Δ + u)` with the
// uniform relabelled, evaluated without rounding the sum t + u: near t ≈ 255 that sum has only 16 fractional
// bits, which would bias rounding upwards by up to 2^-17·Δ and could round up to 2^b (needing a clamp).
// Here P(q = ⌊t⌋ + 1) = frac t up to the 2^-23 granularity of u, so E[x̂] = lo + Δ·t = x·(1 + O(ε)): the only
// bias is Float32 rounding of x − lo, of ·inv and of Δ·inv ≈ 1, a few ulps relative to x − lo. (u has 23 bits, so
// P(round up) is frac t rounded up to a multiple of 2^-23: at most 2^-23·Δ of bias.)
//
// Degenerate rows: hi = lo (constant) → Δ = 0, codes 0, decodes exactly to lo. A range too small for a normal
// 1/Δ (below ~1e-36) is sent the same way (error ≤ hi − lo). A row holding any NaN or ±∞ (or whose range
// overflows Float32) is sent as lo = NaN, Δ = 0 and decodes to all NaN: non-finite activations are a bug
// upstream, and this keeps them visible instead of crashing or silently inventing values.

#if _endian(big)
#error("the quantized wire format is little-endian; big-endian hosts need byte swapping added here")
#endif

/// A quantized code width as a type, so one generic kernel is specialised per width by the compiler.
///
/// `ways` is how many codes one 32-bit lane of the packing step collects (see `BlockPacker`): 8/b codes make one
/// byte, then bytes are narrowed out of the lanes (b = 2, 4); or 4 codes fill a whole lane and 64-byte vectors are
/// stored as they are (b = 8, where per-block narrowing cost 30% more than the two extra permutes of a 4-way
/// deinterleave; at b = 4 the 8-way deinterleave a full lane would need was slower than narrowing). Measured.
protocol CodeWidth {
    static var bits: Int { get }
    static var ways: Int { get }
}

extension CodeWidth {
    /// Bits of a 32-bit lane that carry codes after packing: 8 (narrowed to bytes) or 32.
    @inline(__always)
    static var laneBits: Int { ways * bits }

    /// Elements per packing block, and the bytes they pack to.
    @inline(__always)
    static var blockElements: Int { 16 * ways }

    @inline(__always)
    static var blockBytes: Int { 2 * ways * bits }
}

enum TwoBitCodes: CodeWidth {
    static var bits: Int { 2 }
    static var ways: Int { 4 }
}

enum FourBitCodes: CodeWidth {
    static var bits: Int { 4 }
    static var ways: Int { 2 }
}

enum EightBitCodes: CodeWidth {
    static var bits: Int { 8 }
    static var ways: Int { 4 }
}

let headerBytes = 8

/// Bytes of one encoded row.
@inline(__always)
func encodedRowSize(width: Int, bits: BitWidth) -> Int {
    bits == .full ? 4 * width : headerBytes + (width * bits.rawValue + 7) / 8
}

// MARK: - Vector helpers

/// The 16·V floats at `p` (V = 1, 2 or 4) split into V vectors, lane i of vector r holding `p[V·i + r]`.
///
/// This is how packing stays vertical (`BlockPacker`): the codes of vector r are shifted by r·b and ORed, so lane
/// i collects V consecutive codes in wire order. Even/odd splits of SIMD32 compile to one two-source permute each.
@inline(__always)
private func loadDeinterleaved(_ p: UnsafePointer<Float>, ways: Int)
    -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)
{
    if ways == 1 {
        let v = loadVector(p)
        return (v, v, v, v)
    }
    let first = UnsafeRawPointer(p).loadUnaligned(as: SIMD32<Float>.self)
    if ways == 2 { return (first.evenHalf, first.oddHalf, first.evenHalf, first.oddHalf) }
    let second = UnsafeRawPointer(p + 32).loadUnaligned(as: SIMD32<Float>.self)
    let even = SIMD32(lowHalf: first.evenHalf, highHalf: second.evenHalf)  // p[2i]
    let odd = SIMD32(lowHalf: first.oddHalf, highHalf: second.oddHalf)  // p[2i + 1]
    return (even.evenHalf, odd.evenHalf, even.oddHalf, odd.oddHalf)
}

/// The unpacking of one code width: 16 codes straight into Float32 lanes, with no byte-to-lane conversion.
///
/// Codes 2k and 2k+1 of a 16-code group share UInt64 lane k: the lane takes the packed word holding bit
/// 2b·k of the group (a broadcast; at b = 8 the upper four lanes need the group's second word), shifts it right
/// so the pair sits at bit 0, moves the second code to bit 32, masks both to b bits and ORs in the exponent of
/// 2^23, so each 32-bit half reads as the Float 2^23 + q.
private struct UnpackingNetwork<W: CodeWidth> {
    /// Right shifts of lanes 0…7 for groups at bit offsets 0 and 32 within a word.
    let shiftAligned, shiftOdd: SIMD8<UInt64>
    /// Lanes whose pair lies in the group's second word (only at b = 8).
    let secondWord: SIMDMask<SIMD8<Int64>>
    let codeMask: SIMD8<UInt64>

    @inline(__always)
    init() {
        let b = UInt64(W.bits)
        let pairOffset = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7) &* (2 * b)
        shiftAligned = pairOffset & 63
        shiftOdd = (pairOffset &+ 32) & 63
        secondWord = pairOffset .>= 64
        let one: UInt64 = (1 << b) - 1
        codeMask = SIMD8(repeating: one | one << 32)
    }

    /// Codes `16g ..< 16g + 16` of the 64-code block at `block` as Floats.
    @inline(__always)
    func group(_ block: UnsafeRawPointer, _ g: Int) -> SIMD16<Float> {
        let bitOffset = 16 * W.bits * g
        let first = block.loadUnaligned(fromByteOffset: 8 * (bitOffset / 64), as: UInt64.self)
        var v = SIMD8<UInt64>(repeating: first)
        if 16 * W.bits > 64 {
            let second = block.loadUnaligned(fromByteOffset: 8 * (bitOffset / 64) + 8, as: UInt64.self)
            v = v.replacing(with: SIMD8(repeating: second), where: secondWord)
        }
        v &>>= bitOffset % 64 == 0 ? shiftAligned : shiftOdd
        let paired = (v & 0xFFFF_FFFF) | (v &<< UInt64(32 - W.bits) & 0xFFFF_FFFF_0000_0000)
        let exponent: UInt64 = 0x4B00_0000_4B00_0000
        return unsafeBitCast(paired & codeMask | exponent, to: SIMD16<Float>.self) - 8_388_608
    }
}

// MARK: - Extrema

/// Per-lane extrema of a row: lane-wise minimum, maximum and Σ x·0, which is 0 exactly when every element is
/// finite (x·0 is NaN for NaN and ±∞). NaN is never taken as a minimum or maximum. The horizontal reduction is
/// left to the caller, which reduces 16 rows at once (`RowBatch.swift`).
@inline(__always)
func rowExtremaLanes(_ x: UnsafePointer<Float>, width: Int)
    -> (lo: SIMD16<Float>, hi: SIMD16<Float>, nonFinite: SIMD16<Float>)
{
    guard width > 0 else { return (SIMD16(), SIMD16(), SIMD16()) }
    var lo0 = SIMD16<Float>(repeating: .infinity), hi0 = SIMD16<Float>(repeating: -.infinity)
    var lo1 = lo0, hi1 = hi0
    var nf0 = SIMD16<Float>(), nf1 = SIMD16<Float>()
    let zero = SIMD16<Float>()
    var j = 0
    while j + 32 <= width {
        let a = loadVector(x + j), b = loadVector(x + j + 16)
        lo0 = lo0.replacing(with: a, where: a .< lo0)
        hi0 = hi0.replacing(with: a, where: a .> hi0)
        lo1 = lo1.replacing(with: b, where: b .< lo1)
        hi1 = hi1.replacing(with: b, where: b .> hi1)
        nf0 = nf0.addingProduct(a, zero)
        nf1 = nf1.addingProduct(b, zero)
        j += 32
    }
    if j < width {
        // Up to 31 elements left: full vectors, then one padded with x[0] (neutral: it is part of the row).
        while j < width {
            var a = SIMD16<Float>(repeating: x[0])
            if j + 16 <= width {
                a = loadVector(x + j)
            } else {
                for k in 0..<(width - j) { a[k] = x[j + k] }
            }
            lo0 = lo0.replacing(with: a, where: a .< lo0)
            hi0 = hi0.replacing(with: a, where: a .> hi0)
            nf0 = nf0.addingProduct(a, zero)
            j += 16
        }
    }
    return (lo0.replacing(with: lo1, where: lo1 .< lo0), hi0.replacing(with: hi1, where: hi1 .> hi0), nf0 + nf1)
}

// MARK: - Encode

/// 16 codes `q = ⌊t⌋ + [u < t − ⌊t⌋]`, `t = (x − lo)·inv`, `u` from the hashed element indices `index`.
///
/// The result's low 23 bits are the code (< 2^b, the higher code bits are 0); bits 23 and up hold the exponent
/// of 2^23, which the caller masks or narrows away. Integer↔float conversions use exponent tricks: the standard
/// library's generic SIMD conversions are not reliably inlined (a call per vector).
@inline(__always)
private func quantize16(
    _ x: SIMD16<Float>, lo: SIMD16<Float>, inv: SIMD16<Float>, index: SIMD16<UInt32>
) -> SIMD16<UInt32> {
    let t = (x - lo) * inv
    let whole = t.rounded(.down)
    let fraction = t - whole  // exact
    // u = k / 2^23 for the top 23 hash bits k: 1 + u has k as its mantissa, and subtracting 1 is exact.
    let u = unsafeBitCast(lowbias32(index) &>> 9 | 0x3F80_0000, to: SIMD16<Float>.self) - 1
    // whole + 2^23 (+ 1) is exact and carries the integer code in its low mantissa bits.
    let biased = whole + 8_388_608
    return unsafeBitCast(biased.replacing(with: biased + 1, where: u .< fraction), to: SIMD16<UInt32>.self)
}

/// The low byte of every lane. Two even-half selections compile to byte-narrowing moves; the standard library's
/// `SIMD16<UInt8>(truncatingIfNeeded:)` is a lane loop that LLVM splits into pieces and drags the whole
/// computation feeding it into 128-bit registers.
@inline(__always)
private func narrowToBytes(_ v: SIMD16<UInt32>) -> SIMD16<UInt8> {
    let halves = unsafeBitCast(v, to: SIMD32<UInt16>.self).evenHalf
    return unsafeBitCast(halves, to: SIMD32<UInt8>.self).evenHalf
}

/// The quantize-and-pack step of one code width: 16·V elements (V = `W.ways`) to `W.blockBytes` bytes.
///
/// The elements come deinterleaved (`loadDeinterleaved`): vector r holds elements V·i + r, so shifting the codes of
/// vector r by r·b and ORing puts the V consecutive codes of lane i in wire order — packing stays vertical, with
/// no shuffles of codes. Lanes then hold one byte (narrowed out, 16 bytes) or four (stored as they are, 64 bytes).
private struct BlockPacker<W: CodeWidth> {
    let lo: SIMD16<Float>, inv: SIMD16<Float>
    /// Hash inputs of the elements in each deinterleaved vector, and their advance per block.
    var index0, index1, index2, index3: SIMD16<UInt32>
    let step: SIMD16<UInt32>

    @inline(__always)
    init(lo: Float, inv: Float, key: RowKey) {
        self.lo = SIMD16(repeating: lo)
        self.inv = SIMD16(repeating: inv)
        let lane = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) &* UInt32(W.ways)
        let m = SIMD16<UInt32>(repeating: key.step), k0 = SIMD16<UInt32>(repeating: key.k0)
        // Element j of the row hashes k0 + j·m; vector r of a block holds elements V·i + r.
        index0 = k0 &+ lane &* m
        index1 = index0 &+ m
        index2 = index1 &+ m
        index3 = index2 &+ m
        step = SIMD16(repeating: key.step &* UInt32(W.blockElements))
    }

    /// The code bits of vector r, shifted to their place in the lane.
    @inline(__always)
    private func place(_ q: SIMD16<UInt32>, _ r: Int) -> SIMD16<UInt32> {
        // Narrowed lanes lose everything above bit 8 anyway; full lanes need the exponent bits cleared.
        let clean = W.laneBits == 8 ? q : q & UInt32((1 << W.bits) - 1)
        return clean &<< UInt32(r * W.bits)
    }

    /// Quantizes 16·V floats, deinterleaved by `loadDeinterleaved`, and writes their `W.blockBytes` packed bytes.
    ///
    /// `@_transparent` rather than `@inline(__always)`: the optimiser declined to inline the latter into the
    /// row loop (a call per block, with the index vectors spilled to memory), measured 2× slower.
    @_transparent
    mutating func pack(
        _ parts: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>), to out: UnsafeMutableRawPointer
    ) {
        let ways = W.ways
        var packed = place(quantize16(parts.0, lo: lo, inv: inv, index: index0), 0)
        index0 &+= step
        if ways >= 2 {
            packed |= place(quantize16(parts.1, lo: lo, inv: inv, index: index1), 1)
            index1 &+= step
        }
        if ways >= 4 {
            packed |= place(quantize16(parts.2, lo: lo, inv: inv, index: index2), 2)
            packed |= place(quantize16(parts.3, lo: lo, inv: inv, index: index3), 3)
            index2 &+= step
            index3 &+= step
        }
        if W.laneBits == 8 {
            out.storeBytes(of: narrowToBytes(packed), as: SIMD16<UInt8>.self)
        } else {
            out.storeBytes(of: packed, as: SIMD16<UInt32>.self)
        }
    }
}

/// Writes the codes of one row with known parameters: `ceil(width·b/8)` bytes at `codes`.
///
/// Kept out of line (and the tail separate): the optimiser stops inlining the standard library's SIMD helpers
/// (`evenHalf`, …) into large functions, which turned every block into calls. Small functions keep them inline.
@inline(never)
private func quantizeRow<W: CodeWidth>(
    _: W.Type, _ x: UnsafePointer<Float>, width: Int, lo: Float, inv: Float, key: RowKey,
    to codes: UnsafeMutableRawPointer
) {
    var packer = BlockPacker<W>(lo: lo, inv: inv, key: key)
    var j = 0, o = 0
    while j + W.blockElements <= width {
        packer.pack(loadDeinterleaved(x + j, ways: W.ways), to: codes + o)
        j += W.blockElements
        o += W.blockBytes
    }
    if j < width {
        quantizeTail(W.self, x + j, count: width - j, packer: &packer, to: codes + o)
    }
}

/// The last partial block of a row (1 ..< 16·V elements), padded with lo, which quantizes to code 0 (t = 0 never
/// rounds up); writes `ceil(count·b/8)` bytes.
@inline(never)
private func quantizeTail<W: CodeWidth>(
    _: W.Type, _ x: UnsafePointer<Float>, count: Int, packer: inout BlockPacker<W>, to codes: UnsafeMutableRawPointer
) {
    var padded = SIMD64<Float>(repeating: packer.lo[0])
    let parts = withUnsafeMutableBytes(of: &padded) { p in
        let f = p.baseAddress!.assumingMemoryBound(to: Float.self)
        f.update(from: x, count: count)
        return loadDeinterleaved(f, ways: W.ways)
    }
    var bytes = SIMD16<UInt32>()
    withUnsafeMutableBytes(of: &bytes) { packer.pack(parts, to: $0.baseAddress!) }
    withUnsafeBytes(of: &bytes) { codes.copyMemory(from: $0.baseAddress!, byteCount: (count * W.bits + 7) / 8) }
}

@inline(__always)
private func writeHeader(_ out: UnsafeMutableRawPointer, lo: Float, delta: Float) {
    out.storeBytes(of: lo.bitPattern.littleEndian, toByteOffset: 0, as: UInt32.self)
    out.storeBytes(of: delta.bitPattern.littleEndian, toByteOffset: 4, as: UInt32.self)
}

/// Encodes one quantized row (header and codes) from its extrema-derived parameters.
///
/// `range` is hi − lo, NaN if the row holds a non-finite value; `delta` = range / maxCode and `inv` =
/// maxCode / range as computed (for 16 rows at once) by the caller.
@inline(__always)
private func encodeQuantizedRow<W: CodeWidth>(
    _: W.Type, _ x: UnsafePointer<Float>, width: Int, lo: Float, range: Float, delta: Float, inv: Float,
    key: RowKey, to out: UnsafeMutableRawPointer
) {
    let codes = out + headerBytes
    guard range.isFinite else {
        writeHeader(out, lo: .nan, delta: 0)
        codes.initializeMemory(as: UInt8.self, repeating: 0, count: (width * W.bits + 7) / 8)
        return
    }
    guard delta > 0, inv.isFinite else {
        // Constant row, or a range too small to invert: every element decodes to lo.
        writeHeader(out, lo: lo, delta: 0)
        codes.initializeMemory(as: UInt8.self, repeating: 0, count: (width * W.bits + 7) / 8)
        return
    }
    // (x − lo)·inv ≤ (hi − lo)·inv by monotone rounding; make the latter ≤ 2^b − 1 so no code needs clamping.
    let maxCode = Float((1 << W.bits) - 1)
    var inv = inv
    while range * inv > maxCode { inv = inv.nextDown }
    writeHeader(out, lo: lo, delta: delta)
    quantizeRow(W.self, x, width: width, lo: lo, inv: inv, key: key, to: codes)
}

/// Encodes one row at `bits` to `out` (which holds `encodedRowSize(width:bits:)` bytes) from its parameters.
@inline(__always)
func encodeRow(
    _ x: UnsafePointer<Float>, width: Int, bits: BitWidth, lo: Float, range: Float, delta: Float, inv: Float,
    key: RowKey, to out: UnsafeMutableRawPointer
) {
    switch bits {
    case .two:
        encodeQuantizedRow(TwoBitCodes.self, x, width: width, lo: lo, range: range, delta: delta, inv: inv,
                           key: key, to: out)
    case .four:
        encodeQuantizedRow(FourBitCodes.self, x, width: width, lo: lo, range: range, delta: delta, inv: inv,
                           key: key, to: out)
    case .eight:
        encodeQuantizedRow(EightBitCodes.self, x, width: width, lo: lo, range: range, delta: delta, inv: inv,
                           key: key, to: out)
    case .full:
        out.copyMemory(from: x, byteCount: 4 * width)
    }
}

// MARK: - Decode

/// Writes (or adds) `lo + q·Δ` for 16 codes `q` (as Floats), the first `count` lanes only.
@inline(__always)
private func dequantize16(
    _ q: SIMD16<Float>, lo: SIMD16<Float>, delta: SIMD16<Float>, to y: UnsafeMutablePointer<Float>, count: Int,
    accumulate: Bool, exact: Bool = false
) {
    var v = exact ? lo : lo.addingProduct(q, delta)
    if count == 16 {
        if accumulate { v += loadVector(y) }
        storeVector(v, y)
    } else {
        for k in 0..<count { y[k] = accumulate ? y[k] + v[k] : v[k] }
    }
}

/// Decodes one quantized row. Out of line for the same reason as `quantizeRow`.
@inline(never)
private func decodeQuantizedRow<W: CodeWidth>(
    _: W.Type, from row: UnsafeRawPointer, width: Int, to y: UnsafeMutablePointer<Float>, accumulate: Bool
) {
    let lo = Float(bitPattern: UInt32(littleEndian: row.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
    let delta = Float(bitPattern: UInt32(littleEndian: row.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
    let codes = row + headerBytes
    let codeBytes = (width * W.bits + 7) / 8
    let vlo = SIMD16<Float>(repeating: lo), vdelta = SIMD16<Float>(repeating: delta)
    guard delta != 0 else {
        // Constant (or non-finite) row: exactly lo everywhere. (lo + 0·Δ would turn lo = −0 into +0.)
        var j = 0
        while j < width {
            dequantize16(SIMD16(), lo: vlo, delta: SIMD16(), to: y + j, count: min(16, width - j), accumulate: accumulate,
                         exact: true)
            j += 16
        }
        return
    }
    let network = UnpackingNetwork<W>()
    let blockBytes = 8 * W.bits
    var j = 0, o = 0
    while j + 64 <= width {
        let block = codes + o
        dequantize16(network.group(block, 0), lo: vlo, delta: vdelta, to: y + j, count: 16, accumulate: accumulate)
        dequantize16(network.group(block, 1), lo: vlo, delta: vdelta, to: y + j + 16, count: 16, accumulate: accumulate)
        dequantize16(network.group(block, 2), lo: vlo, delta: vdelta, to: y + j + 32, count: 16, accumulate: accumulate)
        dequantize16(network.group(block, 3), lo: vlo, delta: vdelta, to: y + j + 48, count: 16, accumulate: accumulate)
        j += 64
        o += blockBytes
    }
    if j < width {
        // Last 1…63 elements: their bytes, zero-padded to a whole block.
        var padded = SIMD8<UInt64>()
        withUnsafeMutableBytes(of: &padded) { $0.baseAddress!.copyMemory(from: codes + o, byteCount: codeBytes - o) }
        withUnsafeBytes(of: &padded) { block in
            var g = 0
            while j + 16 * g < width {
                let start = j + 16 * g
                dequantize16(network.group(block.baseAddress!, g), lo: vlo, delta: vdelta, to: y + start,
                             count: min(16, width - start), accumulate: accumulate)
                g += 1
            }
        }
    }
}

/// Decodes one row encoded at `bits` into `y` (`y = x̂`, or `y += x̂` when `accumulate`).
@inline(__always)
func decodeRow(
    from row: UnsafeRawPointer, width: Int, bits: BitWidth, to y: UnsafeMutablePointer<Float>, accumulate: Bool
) {
    switch bits {
    case .two: decodeQuantizedRow(TwoBitCodes.self, from: row, width: width, to: y, accumulate: accumulate)
    case .four: decodeQuantizedRow(FourBitCodes.self, from: row, width: width, to: y, accumulate: accumulate)
    case .eight: decodeQuantizedRow(EightBitCodes.self, from: row, width: width, to: y, accumulate: accumulate)
    case .full:
        if accumulate {
            var j = 0
            while j + 16 <= width {
                storeVector(loadVector(y + j) + row.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self), y + j)
                j += 16
            }
            while j < width {
                y[j] += row.loadUnaligned(fromByteOffset: 4 * j, as: Float.self)
                j += 1
            }
        } else {
            UnsafeMutableRawPointer(y).copyMemory(from: row, byteCount: 4 * width)
        }
    }
}
