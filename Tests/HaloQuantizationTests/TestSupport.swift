import Foundation
import HaloTensor
@testable import HaloQuantization
import HaloTestSupport

/// Widths that hit every kernel path: tails only, whole 16·V blocks for each V, blocks plus tails.
let oddWidths = [1, 3, 7, 15, 16, 17, 33, 64, 65, 255, 257]

func randomMatrix(_ rows: Int, _ cols: Int, _ rng: inout TestRNG, scale: Float = 1, offset: Float = 0) -> Matrix {
    Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in offset + scale * rng.float() })
}

/// The b-bit code `j` of a packed code area: the naive bit-level reading of the wire format.
func naiveCode(_ codes: ArraySlice<UInt8>, index j: Int, bits b: Int) -> Int {
    let bit = j * b
    let byte = codes[codes.startIndex + bit / 8]
    return Int(byte >> UInt8(bit % 8)) & ((1 << b) - 1)
}

/// Little-endian Float32 at `offset`.
func readFloat(_ bytes: [UInt8], _ offset: Int) -> Float {
    var word: UInt32 = 0
    for k in 0..<4 { word |= UInt32(bytes[offset + k]) << (8 * k) }
    return Float(bitPattern: word)
}

/// The specification of one encoded row, written the slow obvious way: scalar, element by element.
///
/// It repeats the documented arithmetic (RowCodec.swift) in plain Float32 operations, so the kernel must produce
/// exactly these bytes.
func referenceEncodeRow(_ x: [Float], bits: BitWidth, node: Int32, randomness: QuantizationRandomness) -> [UInt8] {
    var out = [UInt8]()
    func append(_ f: Float) {
        let w = f.bitPattern
        for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: w >> (8 * k))) }
    }
    if bits == .full {
        x.forEach(append)
        return out
    }
    let b = bits.rawValue
    let codeBytes = (x.count * b + 7) / 8
    var lo = Float.infinity, hi = -Float.infinity
    var finite = true
    for v in x {
        if v < lo { lo = v }
        if v > hi { hi = v }
        if !v.isFinite { finite = false }
    }
    if x.isEmpty { lo = 0; hi = 0 }
    let range = hi - lo
    if !finite || !range.isFinite {
        append(.nan); append(0)
        return out + [UInt8](repeating: 0, count: codeBytes)
    }
    let maxCode = Float((1 << b) - 1)
    let delta = range / maxCode
    var inv = maxCode / range
    if !(delta > 0 && inv.isFinite) {
        append(lo); append(0)
        return out + [UInt8](repeating: 0, count: codeBytes)
    }
    while range * inv > maxCode { inv = inv.nextDown }
    append(lo); append(delta)
    var codes = [UInt8](repeating: 0, count: codeBytes)
    for (j, v) in x.enumerated() {
        let t = (v - lo) * inv
        let whole = t.rounded(.down)
        let u = randomness.uniform(node: node, column: j)
        let q = Int(whole) + (u < t - whole ? 1 : 0)
        precondition(q >= 0 && q <= (1 << b) - 1, "reference code \(q) out of range")
        codes[j * b / 8] |= UInt8(q << ((j * b) % 8))
    }
    return out + codes
}

/// Decodes one row of the wire format the slow obvious way.
func referenceDecodeRow(_ bytes: ArraySlice<UInt8>, width: Int, bits: BitWidth) -> [Float] {
    let data = Array(bytes)
    if bits == .full { return (0..<width).map { readFloat(data, 4 * $0) } }
    let lo = readFloat(data, 0), delta = readFloat(data, 4)
    let codes = data[8...]
    return (0..<width).map { j in lo.addingProduct(Float(naiveCode(codes, index: j, bits: bits.rawValue)), delta) }
}

extension Matrix {
    func rowArray(_ i: Int) -> [Float] { Array(storage[(i * cols)..<((i + 1) * cols)]) }
}
