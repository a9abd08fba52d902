import Foundation
import HaloTensor
import HaloTestSupport
import XCTest
@testable import HaloQuantization

final class RowQuantizerTests: XCTestCase {
    let quantized: [BitWidth] = [.two, .four, .eight]
    let randomness = QuantizationRandomness(seed: 0xC0FFEE, epoch: 7, site: QuantizationRandomness.site(layer: 1, backward: false))

    /// Encodes every row of `m` at `bits` with node ids `ids` (default: 1000 + row).
    private func encodeAll(
        _ m: Matrix, bits: BitAssignment, ids: [Int32]? = nil, randomness r: QuantizationRandomness? = nil,
        pool: ComputePool = .serial
    ) -> [UInt8] {
        var buffer = [UInt8]()
        RowQuantizer.encode(
            m, rows: .range(0..<m.rows), bits: bits, nodeIDs: ids ?? (0..<m.rows).map { Int32(1000 + $0) },
            randomness: r ?? randomness, into: &buffer, pool: pool)
        return buffer
    }

    private func decodeAll(_ bytes: [UInt8], bits: BitAssignment, rows: Int, cols: Int) throws -> Matrix {
        var out = Matrix(rows: rows, cols: cols, repeating: -12345)
        try RowQuantizer.decode(bytes, bits: bits, into: &out, rows: .range(0..<rows))
        return out
    }

    // MARK: Wire format

    func testEncodedSizeFormula() {
        for width in [0, 1, 3, 7, 8, 15, 17, 33, 257, 602] {
            XCTAssertEqual(RowQuantizer.encodedSize(width: width, bits: .two), 8 + (2 * width + 7) / 8)
            XCTAssertEqual(RowQuantizer.encodedSize(width: width, bits: .four), 8 + (4 * width + 7) / 8)
            XCTAssertEqual(RowQuantizer.encodedSize(width: width, bits: .eight), 8 + width)
            XCTAssertEqual(RowQuantizer.encodedSize(width: width, bits: .full), 4 * width)
        }
        XCTAssertEqual(RowQuantizer.rowHeaderBytes, 8)
    }

    func testMixedBitMessageSizeAndLayout() throws {
        var rng = TestRNG(seed: 1)
        for width in oddWidths {
            let rows = 37
            let bits = (0..<rows).map { _ in BitWidth.allCases[rng.int(0..<4)] }
            let m = randomMatrix(rows, width, &rng)
            let bytes = encodeAll(m, bits: .perRow(bits))
            let expected = bits.reduce(0) { $0 + RowQuantizer.encodedSize(width: width, bits: $1) }
            XCTAssertEqual(bytes.count, expected, "width \(width)")
            XCTAssertEqual(RowQuantizer.encodedSize(width: width, bits: bits), expected)
            XCTAssertEqual(RowQuantizer.encodedSize(width: width, bits: .perRow(bits), rows: rows), expected)
            // Rows lie back to back in order: each slice is exactly the reference encoding of its row.
            var offset = 0
            for i in 0..<rows {
                let size = RowQuantizer.encodedSize(width: width, bits: bits[i])
                let reference = referenceEncodeRow(m.rowArray(i), bits: bits[i], node: Int32(1000 + i), randomness: randomness)
                XCTAssertEqual(Array(bytes[offset..<(offset + size)]), reference, "width \(width) row \(i) bits \(bits[i])")
                offset += size
            }
            let decoded = try decodeAll(bytes, bits: .perRow(bits), rows: rows, cols: width)
            for i in 0..<rows where bits[i] == .full {
                XCTAssertEqual(decoded.rowArray(i), m.rowArray(i), "fp32 rows round-trip exactly")
            }
        }
    }

    /// The SIMD kernel writes exactly the bytes of the scalar reference encoder, for every width path, bit width,
    /// and row position (first rows of a batch, later batches, short last batch).
    func testKernelMatchesScalarReference() {
        var rng = TestRNG(seed: 2)
        for width in oddWidths + [128, 602] {
            for bits in quantized {
                let rows = 35
                // Mix scales and offsets so ranges, lo and Δ vary widely.
                var m = randomMatrix(rows, width, &rng, scale: 3, offset: 0.5)
                for j in 0..<width { m[4, j] *= 1e-3; m[5, j] = m[5, j] * 1e4 - 7 }
                let bytes = encodeAll(m, bits: .uniform(bits))
                let size = RowQuantizer.encodedSize(width: width, bits: bits)
                XCTAssertEqual(bytes.count, rows * size)
                for i in 0..<rows {
                    let reference = referenceEncodeRow(m.rowArray(i), bits: bits, node: Int32(1000 + i), randomness: randomness)
                    XCTAssertEqual(Array(bytes[(i * size)..<((i + 1) * size)]), reference, "width \(width) bits \(bits) row \(i)")
                }
            }
        }
    }

    // MARK: Codes and error bounds

    /// Codes never exceed 2^b − 1, including rows where x = hi exactly and rows whose (hi − lo)·(2^b−1)/(hi − lo)
    /// rounds above 2^b − 1 in Float32; every decoded element is within Δ of the input, in [lo, hi] up to rounding.
    func testCodesInRangeAndErrorWithinDelta() throws {
        var rng = TestRNG(seed: 3)
        for bits in quantized {
            let b = bits.rawValue, maxCode = (1 << b) - 1
            var roundsUp = 0
            for width in [1, 2, 3, 17, 64, 257] {
                let rows = 40
                var m = Matrix(rows: rows, cols: width)
                for i in 0..<rows {
                    // Ranges spanning many magnitudes; a few rows at the extremes of Float32 normal numbers.
                    let scale = Float(pow(10, Double(rng.int(-30..<30)))), offset = rng.float(in: -100...100) * scale
                    for j in 0..<width { m[i, j] = offset + scale * rng.float() }
                    if width > 1 { m[i, width - 1] = m[i, 0] }  // a repeated extreme
                    let lo = m.rowArray(i).min()!, hi = m.rowArray(i).max()!
                    let maxF = Float(maxCode)
                    if (hi - lo) * (maxF / (hi - lo)) > maxF { roundsUp += 1 }
                }
                let bytes = encodeAll(m, bits: .uniform(bits))
                let size = RowQuantizer.encodedSize(width: width, bits: bits)
                let decoded = try decodeAll(bytes, bits: .uniform(bits), rows: rows, cols: width)
                for i in 0..<rows {
                    let row = Array(bytes[(i * size)..<((i + 1) * size)])
                    let lo = readFloat(row, 0), delta = readFloat(row, 4)
                    let x = m.rowArray(i)
                    XCTAssertEqual(lo, x.min()!)
                    XCTAssertEqual(delta, (x.max()! - x.min()!) / Float(maxCode))
                    var sawTop = false
                    for j in 0..<width {
                        let q = naiveCode(row[8...], index: j, bits: b)
                        XCTAssertLessThanOrEqual(q, maxCode)
                        if q == maxCode { sawTop = true }
                        let err = abs(decoded[i, j] - x[j])
                        XCTAssertLessThanOrEqual(err, delta * 1.0001 + 4 * x[j].ulp, "bits \(b) width \(width) row \(i) col \(j)")
                        // x = hi must come back as hi up to rounding (q = 2^b − 1 always).
                        if x[j] == x.max()! && delta > 0 {
                            XCTAssertEqual(q, maxCode, "x = hi must take the top code")
                        }
                    }
                    if delta > 0 { XCTAssertTrue(sawTop) }
                    // Unused high bits of the last code byte are zero.
                    let usedBits = width * b
                    if usedBits % 8 != 0 {
                        XCTAssertEqual(row.last! >> UInt8(usedBits % 8), 0, "padding bits must be zero")
                    }
                }
            }
            // The case the inverse is nudged for does occur among these rows.
            XCTAssertGreaterThan(roundsUp, 0, "no row exercised (hi − lo)·inv > 2^b − 1 at \(b) bits")
        }
    }

    func testConstantRowsAndFullPrecisionRoundTripExactly() throws {
        let values: [Float] = [0, -0.0, 1, -3.25, 1e-30, 7e30, .leastNormalMagnitude, .greatestFiniteMagnitude]
        for width in [1, 5, 16, 33, 100] {
            let m = Matrix(rows: values.count, cols: width) { i, _ in values[i] }
            for bits in BitWidth.allCases {
                let bytes = encodeAll(m, bits: .uniform(bits))
                let decoded = try decodeAll(bytes, bits: .uniform(bits), rows: m.rows, cols: width)
                XCTAssertEqual(decoded.storage.map(\.bitPattern), m.storage.map(\.bitPattern), "bits \(bits) width \(width)")
                if bits.isQuantized {
                    let size = RowQuantizer.encodedSize(width: width, bits: bits)
                    for i in 0..<m.rows {
                        XCTAssertEqual(readFloat(bytes, i * size + 4), 0, "constant rows send Δ = 0")
                        XCTAssertTrue(bytes[(i * size + 8)..<((i + 1) * size)].allSatisfy { $0 == 0 })
                    }
                }
            }
        }
        // Full precision: arbitrary values, including non-finite ones, come back bit for bit.
        var rng = TestRNG(seed: 4)
        var m = randomMatrix(9, 17, &rng, scale: 1e6)
        m[3, 4] = .nan; m[5, 0] = .infinity; m[6, 16] = -.infinity
        let decoded = try decodeAll(encodeAll(m, bits: .uniform(.full)), bits: .uniform(.full), rows: 9, cols: 17)
        XCTAssertEqual(decoded.storage.map(\.bitPattern), m.storage.map(\.bitPattern))
    }

    /// A range too small for a normal 1/Δ is sent as a constant row at lo (error ≤ hi − lo).
    func testTinyRangeFallsBackToConstant() throws {
        let tiny = Float.leastNonzeroMagnitude * 70_000  // about 1e-40, subnormal
        let m = Matrix([[tiny, 2 * tiny, 3 * tiny, tiny]])
        for bits in quantized {
            let bytes = encodeAll(m, bits: .uniform(bits))
            XCTAssertEqual(readFloat(bytes, 4), 0)
            let decoded = try decodeAll(bytes, bits: .uniform(bits), rows: 1, cols: 4)
            XCTAssertTrue(decoded.storage.allSatisfy { $0 == m[0, 0] })
        }
    }

    /// NaN or ±∞ anywhere in a row (or a range overflowing Float32) makes the row decode to NaN; other rows of the
    /// message are unaffected; nothing traps.
    func testNonFiniteRowsDecodeToNaN() throws {
        var rng = TestRNG(seed: 5)
        for width in [1, 3, 16, 40, 257] {
            var m = randomMatrix(8, width, &rng)
            m[1, width / 2] = .nan
            m[2, 0] = .infinity
            m[3, width - 1] = -.infinity
            for j in 0..<width { m[4, j] = .nan }
            for j in 0..<width { m[5, j] = .infinity }
            m[6, 0] = .greatestFiniteMagnitude; m[6, width - 1] = -.greatestFiniteMagnitude
            if width == 1 { m[6, 0] = 1 }  // a one-element row cannot overflow; keep it ordinary
            for bits in quantized {
                var buffer = [UInt8](), ranges = [Float]()
                RowQuantizer.encode(
                    m, rows: .range(0..<8), bits: .uniform(bits), nodeIDs: (0..<8).map { Int32($0) },
                    randomness: randomness, into: &buffer, ranges: &ranges)
                let decoded = try decodeAll(buffer, bits: .uniform(bits), rows: 8, cols: width)
                let poisoned = width == 1 ? [1, 2, 3, 4, 5] : [1, 2, 3, 4, 5, 6]
                for i in 0..<8 {
                    if poisoned.contains(i) {
                        XCTAssertTrue(decoded.rowArray(i).allSatisfy(\.isNaN), "row \(i) width \(width) bits \(bits)")
                        XCTAssertTrue(ranges[i].isNaN)
                    } else {
                        XCTAssertTrue(decoded.rowArray(i).allSatisfy(\.isFinite), "row \(i) width \(width) bits \(bits)")
                        XCTAssertEqual(ranges[i], m.rowArray(i).max()! - m.rowArray(i).min()!)
                    }
                }
            }
        }
    }

    // MARK: Statistics

    /// E[x̂] = x: the mean of many independent encodings (different epochs and node ids) is within 5 standard
    /// errors of x for every element, and each element's variance is at most Δ²/4.
    func testUnbiasedAndVarianceBound() throws {
        var rng = TestRNG(seed: 6)
        let width = 21, copies = 64, epochs = 40
        // One row (with x = lo and x = hi present), repeated under different node ids.
        let base = (0..<width).map { _ in rng.float(in: -2...3) }
        let m = Matrix(rows: copies, cols: width) { _, j in base[j] }
        for bits in quantized {
            var sum = [Double](repeating: 0, count: width), sumSq = [Double](repeating: 0, count: width)
            var delta: Float = 0
            for epoch in 0..<epochs {
                let r = QuantizationRandomness(seed: 99, epoch: UInt32(epoch), site: 3)
                let bytes = encodeAll(m, bits: .uniform(bits), ids: (0..<copies).map { Int32($0 * 7 + 1) }, randomness: r)
                delta = readFloat(bytes, 4)
                let decoded = try decodeAll(bytes, bits: .uniform(bits), rows: copies, cols: width)
                for i in 0..<copies {
                    for j in 0..<width {
                        let e = Double(decoded[i, j]) - Double(base[j])
                        sum[j] += e; sumSq[j] += e * e
                    }
                }
            }
            let n = Double(copies * epochs), d = Double(delta)
            // Float32 rounding of lo + qΔ (and of Δ itself, ×2^b): a few ulps of the row's magnitude.
            let rounding = 8 * Double(max(abs(base.min()!), abs(base.max()!)).ulp)
            for j in 0..<width {
                let mean = sum[j] / n
                let variance = max(0, sumSq[j] / n - mean * mean)
                let standardError = (variance / n).squareRoot()
                XCTAssertLessThanOrEqual(abs(mean), 5 * standardError + rounding, "bits \(bits) element \(j): bias \(mean / d) Δ")
                XCTAssertLessThanOrEqual(variance, d * d / 4 * (1 + 5 * (2 / n).squareRoot()) + 1e-12, "bits \(bits) element \(j)")
                // Variance matches Δ²·f(1 − f) for the element's fractional grid position f.
                let t = (Double(base[j]) - Double(base.min()!)) / d
                let f = t - t.rounded(.down)
                XCTAssertEqual(variance, d * d * f * (1 - f), accuracy: d * d * (0.02 + 5 * 0.25 * (2 / n).squareRoot()),
                               "bits \(bits) element \(j)")
            }
        }
    }

    /// The per-element dither u: uniform on [0, 1) (mean, variance, ten bins), uncorrelated with the next column and
    /// with the same column of the next node id.
    func testDitherUniformityAndIndependence() {
        let r = QuantizationRandomness(seed: 2024, epoch: 3, site: 5)
        let rows = 200, cols = 500
        var u = [[Double]](repeating: [], count: rows)
        for i in 0..<rows { u[i] = (0..<cols).map { Double(r.uniform(node: Int32(i), column: $0)) } }
        let all = u.flatMap { $0 }
        let n = Double(all.count)
        XCTAssertTrue(all.allSatisfy { $0 >= 0 && $0 < 1 })
        let mean = all.reduce(0, +) / n
        let variance = all.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        XCTAssertEqual(mean, 0.5, accuracy: 5 * (1 / 12 / n).squareRoot())
        XCTAssertEqual(variance, 1.0 / 12, accuracy: 5 * (1 / 180 / n).squareRoot())
        var bins = [Double](repeating: 0, count: 10)
        for v in all { bins[Int(v * 10)] += 1 }
        let chi2 = bins.reduce(0) { $0 + ($1 - n / 10) * ($1 - n / 10) / (n / 10) }
        XCTAssertLessThan(chi2, 33.7, "χ² with 9 degrees of freedom beyond its 99.99th percentile")
        // Correlations: along a row (lag 1) and across rows (adjacent node ids, same column). Standard error 1/√n.
        func correlation(_ pairs: [(Double, Double)]) -> Double {
            let k = Double(pairs.count)
            let ma = pairs.reduce(0) { $0 + $1.0 } / k, mb = pairs.reduce(0) { $0 + $1.1 } / k
            var c = 0.0, va = 0.0, vb = 0.0
            for (a, b) in pairs { c += (a - ma) * (b - mb); va += (a - ma) * (a - ma); vb += (b - mb) * (b - mb) }
            return c / (va * vb).squareRoot()
        }
        let lag = u.flatMap { row in (0..<(cols - 1)).map { (row[$0], row[$0 + 1]) } }
        let across = (0..<(rows - 1)).flatMap { i in (0..<cols).map { (u[i][$0], u[i + 1][$0]) } }
        XCTAssertLessThan(abs(correlation(lag)), 5 / Double(lag.count).squareRoot())
        XCTAssertLessThan(abs(correlation(across)), 5 / Double(across.count).squareRoot())
        // Different epochs and sites give different dither for the same element.
        let other = QuantizationRandomness(seed: 2024, epoch: 4, site: 5), site = QuantizationRandomness(seed: 2024, epoch: 3, site: 6)
        let same = (0..<cols).filter { r.uniform(node: 1, column: $0) == other.uniform(node: 1, column: $0) }.count
        let sameSite = (0..<cols).filter { r.uniform(node: 1, column: $0) == site.uniform(node: 1, column: $0) }.count
        XCTAssertLessThan(same, 3)
        XCTAssertLessThan(sameSite, 3)
    }

    // MARK: Determinism

    /// A node's row encodes to the same bytes wherever it sits in a message (any batch position, any message
    /// order), by gather or by range, and on any number of threads.
    func testRowBytesDependOnlyOnNodeNotPosition() {
        var rng = TestRNG(seed: 7)
        let width = 45, rows = 50
        let m = randomMatrix(rows, width, &rng)
        let ids = (0..<rows).map { Int32(5000 + 3 * $0) }
        for bits in quantized {
            let size = RowQuantizer.encodedSize(width: width, bits: bits)
            let inOrder = encodeAll(m, bits: .uniform(bits), ids: ids)
            // Gather the rows in a shuffled order with the matching node ids.
            var order = Array(0..<rows)
            order.shuffle(using: &rng)
            var shuffled = [UInt8]()
            RowQuantizer.encode(
                m, rows: .indices(order.map { Int32($0) }), bits: .uniform(bits), nodeIDs: order.map { ids[$0] },
                randomness: randomness, into: &shuffled, pool: ComputePool(threads: 3))
            for (position, row) in order.enumerated() {
                XCTAssertEqual(shuffled[(position * size)..<((position + 1) * size)], inOrder[(row * size)..<((row + 1) * size)],
                               "bits \(bits): row \(row) at position \(position)")
            }
            // A single row alone in its message.
            for row in [0, 17, 49] {
                var alone = [UInt8]()
                RowQuantizer.encode(m, rows: .range(row..<(row + 1)), bits: .uniform(bits), nodeIDs: [ids[row]],
                                    randomness: randomness, into: &alone)
                XCTAssertEqual(alone[...], inOrder[(row * size)..<((row + 1) * size)])
            }
            // A different node id, epoch or site changes the bytes.
            var moved = [UInt8]()
            RowQuantizer.encode(m, rows: .range(0..<1), bits: .uniform(bits), nodeIDs: [ids[0] + 1],
                                randomness: randomness, into: &moved)
            XCTAssertNotEqual(moved[...], inOrder[0..<size])
        }
    }

    func testMultithreadedEncodeMatchesSerialByteForByte() throws {
        var rng = TestRNG(seed: 8)
        for width in [17, 257, 602] {
            let rows = 211
            let m = randomMatrix(rows, width, &rng)
            let mixed = (0..<rows).map { _ in BitWidth.allCases[rng.int(0..<4)] }
            for bits in [BitAssignment.uniform(.four), .perRow(mixed)] {
                let serial = encodeAll(m, bits: bits)
                var serialRanges = [Float](), buffer = [UInt8]()
                RowQuantizer.encode(m, rows: .range(0..<rows), bits: bits, nodeIDs: (0..<rows).map { Int32(1000 + $0) },
                                    randomness: randomness, into: &buffer, ranges: &serialRanges)
                XCTAssertEqual(buffer, serial)
                for threads in [2, 3, 4, 8] {
                    let pool = ComputePool(threads: threads)
                    XCTAssertEqual(encodeAll(m, bits: bits, pool: pool), serial, "width \(width) threads \(threads)")
                    var ranges = [Float](), parallel = [UInt8](repeating: 0xAB, count: 3)  // reused, wrong size
                    RowQuantizer.encode(m, rows: .range(0..<rows), bits: bits, nodeIDs: (0..<rows).map { Int32(1000 + $0) },
                                        randomness: randomness, into: &parallel, ranges: &ranges, pool: pool)
                    XCTAssertEqual(parallel, serial)
                    XCTAssertEqual(ranges, serialRanges)
                    var decodedParallel = Matrix(rows: rows, cols: width)
                    try RowQuantizer.decode(serial, bits: bits, into: &decodedParallel, rows: .range(0..<rows), pool: pool)
                    XCTAssertEqual(decodedParallel, try decodeAll(serial, bits: bits, rows: rows, cols: width))
                }
            }
        }
    }

    /// The 16-lane Philox of a batch gives exactly `CounterRandom.block` on (stream, epoch, site, node).
    func testBatchRowKeysMatchScalarPhilox() {
        var rng = TestRNG(seed: 9)
        for _ in 0..<20 {
            let r = QuantizationRandomness(seed: rng.next(), epoch: UInt32(truncatingIfNeeded: rng.next()),
                                           site: UInt32(truncatingIfNeeded: rng.next()))
            var nodes = SIMD16<UInt32>()
            for k in 0..<16 { nodes[k] = UInt32(truncatingIfNeeded: rng.next()) }
            nodes[0] = 0; nodes[1] = .max
            let keys = r.rowKeys(nodes: nodes)
            for k in 0..<16 {
                let words = r.random.block(CounterRandom.Stream.quantization.rawValue << 24, r.epoch, r.site, nodes[k])
                XCTAssertEqual(keys.k0[k], words[0])
                XCTAssertEqual(keys.step[k], words[1] | 1)
                let scalar = r.rowKey(node: Int32(bitPattern: nodes[k]))
                XCTAssertEqual(scalar.k0, keys.k0[k])
                XCTAssertEqual(scalar.step, keys.step[k])
            }
        }
    }

    // MARK: Decode

    func testDecodeScatterAndAccumulate() throws {
        var rng = TestRNG(seed: 10)
        let width = 33, rows = 20
        let m = randomMatrix(rows, width, &rng)
        let bits = (0..<rows).map { _ in BitWidth.allCases[rng.int(0..<4)] }
        let bytes = encodeAll(m, bits: .perRow(bits))
        let plain = try decodeAll(bytes, bits: .perRow(bits), rows: rows, cols: width)
        // Scatter into a bigger block at listed rows, then accumulate onto existing values.
        let targets = (0..<rows).map { Int32(40 - 2 * $0) }
        var block = Matrix(rows: 41, cols: width, repeating: 0.5)
        try RowQuantizer.decode(bytes, bits: .perRow(bits), into: &block, rows: .indices(targets), pool: ComputePool(threads: 2))
        for i in 0..<rows { XCTAssertEqual(block.rowArray(Int(targets[i])), plain.rowArray(i)) }
        XCTAssertEqual(block.rowArray(1), [Float](repeating: 0.5, count: width), "unlisted rows untouched")
        try RowQuantizer.decode(bytes, bits: .perRow(bits), into: &block, rows: .indices(targets), accumulate: true)
        for i in 0..<rows {
            let row = block.rowArray(Int(targets[i]))
            for j in 0..<width { XCTAssertEqual(row[j], plain[i, j] + plain[i, j]) }
        }
        // The reference decoder agrees with the kernel.
        var offset = 0
        for i in 0..<rows {
            let size = RowQuantizer.encodedSize(width: width, bits: bits[i])
            XCTAssertEqual(referenceDecodeRow(bytes[offset..<(offset + size)], width: width, bits: bits[i]), plain.rowArray(i))
            offset += size
        }
        // The firstRow convenience.
        var shifted = Matrix(rows: rows + 3, cols: width)
        try RowQuantizer.decode(bytes, bits: bits, into: &shifted, firstRow: 3)
        XCTAssertEqual(shifted.rows(3..<(rows + 3)), plain)
    }

    func testDecodeRejectsWrongSize() {
        var rng = TestRNG(seed: 11)
        let m = randomMatrix(4, 10, &rng)
        let bytes = encodeAll(m, bits: .uniform(.four))
        var out = Matrix(rows: 4, cols: 10)
        for bad in [Array(bytes.dropLast()), bytes + [0], []] {
            XCTAssertThrowsError(try RowQuantizer.decode(bad, bits: .uniform(.four), into: &out, rows: .range(0..<4))) { error in
                XCTAssertEqual(error as? QuantizationError,
                               .messageSize(expected: bytes.count, actual: bad.count, rows: 4, width: 10))
                XCTAssertTrue("\(error)".contains("\(bytes.count)"), "\(error)")
            }
        }
        // Decoding with the wrong bit widths is a size mismatch too.
        XCTAssertThrowsError(try RowQuantizer.decode(bytes, bits: .uniform(.eight), into: &out, rows: .range(0..<4)))
        XCTAssertNoThrow(try RowQuantizer.decode(bytes, bits: .uniform(.four), into: &out, rows: .range(0..<4)))
    }

    func testEmptyMessagesAndRawDestination() throws {
        var rng = TestRNG(seed: 12)
        let m = randomMatrix(5, 9, &rng)
        var buffer = [UInt8](repeating: 1, count: 10)
        RowQuantizer.encode(m, rows: .indices([]), bits: .uniform(.two), nodeIDs: [], randomness: randomness, into: &buffer)
        XCTAssertEqual(buffer, [])
        var out = m
        try RowQuantizer.decode([UInt8](), bits: .perRow([]), into: &out, rows: .indices([]))
        XCTAssertEqual(out, m)
        // Writing into a larger raw buffer at an offset leaves the surrounding bytes alone.
        let size = RowQuantizer.encodedSize(width: 9, bits: .perRow([.two, .full, .eight]), rows: 3)
        var raw = [UInt8](repeating: 0xEE, count: size + 20)
        var ranges = [Float](repeating: -1, count: 3)
        let written = raw.withUnsafeMutableBytes { dst in
            ranges.withUnsafeMutableBufferPointer { r in
                RowQuantizer.encode(m, rows: .indices([4, 0, 2]), bits: .perRow([.two, .full, .eight]), nodeIDs: [4, 0, 2],
                                    randomness: randomness, into: UnsafeMutableRawBufferPointer(rebasing: dst[10...]), ranges: r)
            }
        }
        XCTAssertEqual(written, size)
        XCTAssertTrue(raw[0..<10].allSatisfy { $0 == 0xEE } && raw[(10 + size)...].allSatisfy { $0 == 0xEE })
        for (k, row) in [4, 0, 2].enumerated() {
            XCTAssertEqual(ranges[k], m.rowArray(row).max()! - m.rowArray(row).min()!)
        }
        var expected = [UInt8]()
        RowQuantizer.encode(m, rows: .indices([4, 0, 2]), bits: .perRow([.two, .full, .eight]), nodeIDs: [4, 0, 2],
                            randomness: randomness, into: &expected)
        XCTAssertEqual(Array(raw[10..<(10 + size)]), expected)
        // Rows of width 0: quantized rows are a bare header, raw rows nothing.
        let empty = Matrix(rows: 3, cols: 0)
        var headers = [UInt8](), emptyRanges = [Float]()
        RowQuantizer.encode(empty, rows: .range(0..<3), bits: .perRow([.four, .full, .two]), nodeIDs: [1, 2, 3],
                            randomness: randomness, into: &headers, ranges: &emptyRanges)
        XCTAssertEqual(headers, [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(emptyRanges, [0, 0, 0])
        var emptyOut = empty
        try RowQuantizer.decode(headers, bits: .perRow([.four, .full, .two]), into: &emptyOut, rows: .range(0..<3))
    }

    func testBitWidthLadder() throws {
        XCTAssertEqual(BitWidth.allCases.map(\.bits), [2, 4, 8, 32])
        XCTAssertEqual(BitWidth.two.higher, .four)
        XCTAssertEqual(BitWidth.eight.higher, .full)
        XCTAssertNil(BitWidth.full.higher)
        XCTAssertEqual(BitWidth.full.lower, .eight)
        XCTAssertNil(BitWidth.two.lower)
        XCTAssertEqual(BitWidth.four.maxCode, 15)
        XCTAssertTrue(BitWidth.two < .full)
        let json = try JSONEncoder().encode([BitWidth.two, .full])
        XCTAssertEqual(String(decoding: json, as: UTF8.self), "[2,32]")
        XCTAssertEqual(try JSONDecoder().decode([BitWidth].self, from: json), [.two, .full])
        XCTAssertEqual(QuantizationRandomness.site(layer: 2, backward: true), 5)
    }
}
