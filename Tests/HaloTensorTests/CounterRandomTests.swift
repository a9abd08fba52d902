import Foundation
import HaloTensor
import XCTest

final class CounterRandomTests: XCTestCase {
    /// Known-answer vectors of Philox4x32-10 from Random123's `kat_vectors` (counter words, key words, output).
    func testPhiloxKnownAnswers() {
        let cases: [(seed: UInt64, counter: (UInt32, UInt32, UInt32, UInt32), expected: SIMD4<UInt32>)] = [
            (0, (0, 0, 0, 0), SIMD4(0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8)),
            (0xFFFF_FFFF_FFFF_FFFF, (0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF),
             SIMD4(0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd)),
            // Key (0xa4093822, 0x299f31d0): the seed's low word is key word 0.
            (0x299f_31d0_a409_3822, (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344),
             SIMD4(0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1)),
        ]
        for c in cases {
            let random = CounterRandom(seed: c.seed)
            let out = random.block(c.counter.0, c.counter.1, c.counter.2, c.counter.3)
            XCTAssertEqual(out, c.expected, String(format: "seed %016llx", c.seed))
        }
    }

    func testSeedMapsToKeyWords() {
        let r = CounterRandom(seed: 0x1122_3344_5566_7788)
        XCTAssertEqual(r.key.0, 0x5566_7788)
        XCTAssertEqual(r.key.1, 0x1122_3344)
        XCTAssertEqual(r, CounterRandom(seed: 0x1122_3344_5566_7788))
        XCTAssertNotEqual(r, CounterRandom(seed: 0x1122_3344_5566_7789))
        XCTAssertEqual(Set([r, CounterRandom(seed: 0x1122_3344_5566_7788), CounterRandom(seed: 1)]).count, 2)
    }

    func testDeterministic() {
        let a = CounterRandom(seed: 42), b = CounterRandom(seed: 42)
        for i in 0..<50 {
            XCTAssertEqual(a.uniform(.dropout, 3, 4, 5, index: i), b.uniform(.dropout, 3, 4, 5, index: i))
            XCTAssertEqual(a.normal(.parameterInit, 1, 2, 3, index: i), b.normal(.parameterInit, 1, 2, 3, index: i))
            XCTAssertEqual(a.word64(.partition, 1, 2, 3, index: i), b.word64(.partition, 1, 2, 3, index: i))
        }
        XCTAssertEqual(a.block(1, 2, 3, 4), b.block(1, 2, 3, 4))
        XCTAssertEqual(a.block(1, 2, 3, 4), a.block(1, 2, 3, 4))
    }

    func testFillUniformMatchesSingleDraws() {
        let random = CounterRandom(seed: 7)
        for count in [0, 1, 2, 3, 4, 5, 7, 9, 13, 31, 64, 65, 130] {
            var buffer = [Float](repeating: -1, count: count + 1)  // one guard element past the end
            buffer.withUnsafeMutableBufferPointer { p in
                random.fillUniform(p.baseAddress!, count: count, .dropout, 9, 0xFFFF_0000, 123)
            }
            for i in 0..<count {
                XCTAssertEqual(buffer[i], random.uniform(.dropout, 9, 0xFFFF_0000, 123, index: i), "count \(count) index \(i)")
            }
            XCTAssertEqual(buffer[count], -1, "fillUniform wrote past count \(count)")
        }
    }

    func testUnitFloat() {
        XCTAssertEqual(CounterRandom.unitFloat(0), 0)
        XCTAssertEqual(CounterRandom.unitFloat(0xFF), 0, "only the top 24 bits count")
        XCTAssertLessThan(CounterRandom.unitFloat(.max), 1)
        XCTAssertEqual(CounterRandom.unitFloat(.max), 1 - 1.0 / 16_777_216)
        XCTAssertEqual(CounterRandom.unitFloat(0x8000_0000), 0.5)
    }

    func testUniformStatistics() {
        let random = CounterRandom(seed: 2024)
        let n = 100_000
        var values = [Float](repeating: 0, count: n)
        values.withUnsafeMutableBufferPointer { p in
            // 100 rows of 1000, like dropout masks.
            for row in 0..<100 { random.fillUniform(p.baseAddress! + row * 1000, count: 1000, .dropout, 1, 2, UInt32(row)) }
        }
        XCTAssertTrue(values.allSatisfy { $0 >= 0 && $0 < 1 })
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(n)
        let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(n - 1)
        // Standard errors: mean √(1/12/n) ≈ 0.00091; variance √(1/180/n) ≈ 0.00024. Allow 5σ.
        XCTAssertEqual(mean, 0.5, accuracy: 5 * 0.000913)
        XCTAssertEqual(variance, 1.0 / 12, accuracy: 5 * 0.000236)
        // Ten equal bins: a loose χ² bound (9 degrees of freedom, 99.99th percentile ≈ 33.7).
        var bins = [Int](repeating: 0, count: 10)
        for v in values { bins[min(9, Int(v * 10))] += 1 }
        let expected = Double(n) / 10
        let chi2 = bins.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        XCTAssertLessThan(chi2, 33.7, "bins \(bins)")
        // Neighbouring draws are uncorrelated.
        var lag = 0.0
        for i in 1..<n { lag += (Double(values[i]) - mean) * (Double(values[i - 1]) - mean) }
        let correlation = lag / Double(n - 1) / variance
        XCTAssertEqual(correlation, 0, accuracy: 5 / Double(n).squareRoot())
    }

    func testNormalStatistics() {
        let random = CounterRandom(seed: 99)
        let n = 50_000
        let values = (0..<n).map { Double(random.normal(.parameterInit, 0, 1, UInt32($0 / 1000), index: $0 % 1000)) }
        XCTAssertTrue(values.allSatisfy(\.isFinite))
        let mean = values.reduce(0, +) / Double(n)
        let variance = values.reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
        // Standard errors: mean 1/√n ≈ 0.0045; variance √(2/n) ≈ 0.0063.
        XCTAssertEqual(mean, 0, accuracy: 5 * 0.0045)
        XCTAssertEqual(variance, 1, accuracy: 5 * 0.0064)
        let beyond2 = Double(values.filter { abs($0) > 2 }.count) / Double(n)
        XCTAssertEqual(beyond2, 0.0455, accuracy: 0.006)
    }

    func testDifferentAddressesGiveDifferentNumbers() {
        let random = CounterRandom(seed: 5)
        func row(_ r: CounterRandom, _ s: CounterRandom.Stream, _ a: UInt32, _ b: UInt32, _ c: UInt32) -> [Float] {
            (0..<16).map { r.uniform(s, a, b, c, index: $0) }
        }
        let base = row(random, .dropout, 1, 2, 3)
        XCTAssertEqual(Set(base).count, 16, "draws within one sequence repeat")
        XCTAssertNotEqual(base, row(random, .quantization, 1, 2, 3), "stream")
        XCTAssertNotEqual(base, row(random, .dropout, 2, 2, 3), "counter word a")
        XCTAssertNotEqual(base, row(random, .dropout, 1, 3, 3), "counter word b")
        XCTAssertNotEqual(base, row(random, .dropout, 1, 2, 4), "counter word c")
        XCTAssertNotEqual(base, row(CounterRandom(seed: 6), .dropout, 1, 2, 3), "seed low word")
        XCTAssertNotEqual(base, row(CounterRandom(seed: 5 | 1 << 32), .dropout, 1, 2, 3), "seed high word")
        // Every stream is distinct from every other.
        let streams: [CounterRandom.Stream] = [.parameterInit, .dropout, .quantization, .synthetic, .partition, .assignment]
        XCTAssertEqual(Set(streams.map { row(random, $0, 1, 2, 3) }).count, streams.count)
        // Normals and 64-bit words also depend on every address part.
        XCTAssertNotEqual(random.normal(.dropout, 1, 2, 3, index: 0), random.normal(.dropout, 1, 2, 3, index: 1))
        XCTAssertNotEqual(random.normal(.dropout, 1, 2, 3, index: 0), random.normal(.dropout, 1, 2, 4, index: 0))
        XCTAssertNotEqual(random.word64(.partition, 0, 0, 0, index: 0), random.word64(.partition, 0, 0, 0, index: 1))
        XCTAssertNotEqual(random.word64(.partition, 0, 0, 0, index: 0), random.word64(.assignment, 0, 0, 0, index: 0))
        let words = Set((0..<1000).map { random.word64(.partition, 0, 0, 0, index: $0) })
        XCTAssertEqual(words.count, 1000)
    }
}
