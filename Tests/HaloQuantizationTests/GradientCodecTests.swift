import HaloTensor
@testable import HaloQuantization
import HaloTestSupport
import XCTest

/// The wire formats of compressed gradient all-reduces: float32 exact, bfloat16 rounded to nearest even, int8 rows
/// as the halo message quantizer writes them, and sizes that the decoder checks.
final class GradientCodecTests: XCTestCase {
    private let randomness = QuantizationRandomness(seed: 9, epoch: 4, site: 1 << 30)

    private func roundTrip(_ values: [Float], _ compression: GradientCompression, firstRow: Int = 0) throws -> [Float] {
        let codec = GradientCodec(compression)
        let bytes = values.withUnsafeBufferPointer { codec.encode($0, randomness: randomness, firstRow: firstRow) }
        XCTAssertEqual(bytes.count, codec.encodedSize(count: values.count), "\(compression), \(values.count) values")
        var out = [Float](repeating: .nan, count: values.count)
        try out.withUnsafeMutableBufferPointer { try codec.decode(bytes, into: $0) }
        return out
    }

    /// Counts around the 256-value rows: empty, one, a short row only, whole rows, whole rows and a short one.
    private let counts = [0, 1, 7, 255, 256, 257, 1000]

    func testNoneIsExact() throws {
        var rng = TestRNG(seed: 1)
        for n in counts {
            let values = (0..<n).map { _ in rng.float() * 500 }
            XCTAssertEqual(try roundTrip(values, .none), values)
        }
    }

    /// Round to nearest, ties to even, at bfloat16's 7 mantissa bits (ulp 2⁻⁷ at 1).
    func testBFloat16RoundsToNearestEven() throws {
        let ulp: Float = 1.0 / 128
        let cases: [(Float, Float)] = [
            (1, 1), (-2.5, -2.5), (0, 0), (1 + ulp / 2, 1), (1 + 1.5 * ulp, 1 + 2 * ulp),
            (1 + ulp / 2 + ulp / 64, 1 + ulp), (1 + ulp / 2 - ulp / 64, 1), (-(1 + 1.5 * ulp), -(1 + 2 * ulp)),
            (.infinity, .infinity), (-.infinity, -.infinity), (.greatestFiniteMagnitude, .infinity),
        ]
        let decoded = try roundTrip(cases.map(\.0), .bf16)
        for (i, (x, expected)) in cases.enumerated() {
            XCTAssertEqual(decoded[i], expected, "bf16(\(x))")
        }
        XCTAssertTrue(try roundTrip([.nan, -.nan, Float(bitPattern: 0x7F80_0001)], .bf16).allSatisfy(\.isNaN),
                      "NaN (signalling ones too) stays NaN, so a diverged gradient is still caught after the sum")
    }

    func testBFloat16ErrorIsAtMostHalfAnUlp() throws {
        var rng = TestRNG(seed: 2)
        for n in counts {
            let values = (0..<n).map { _ in rng.float() * pow(2, Float(Int(rng.float(in: 0...1) * 40) - 20)) }
            for (x, y) in zip(values, try roundTrip(values, .bf16)) {
                XCTAssertLessThanOrEqual(abs(x - y), abs(x) * pow(2, -8), "bf16(\(x)) = \(y)")
            }
        }
    }

    /// Each 256-value row is a message row at 8 bits: within one step Δ = (hi − lo)/255 of its value, unbiased on
    /// average over many draws, and the same bytes for the same (randomness, row number).
    func testInt8RowsAreWithinOneStepAndUnbiased() throws {
        var rng = TestRNG(seed: 3)
        for n in counts {
            let values = (0..<n).map { _ in rng.float() }
            let decoded = try roundTrip(values, .int8)
            for start in stride(from: 0, to: n, by: GradientCodec.rowWidth) {
                let row = values[start..<min(n, start + GradientCodec.rowWidth)]
                let step = (row.max()! - row.min()!) / 255
                for i in row.indices {
                    XCTAssertLessThanOrEqual(abs(decoded[i] - values[i]), step * 1.0001, "n \(n), element \(i)")
                }
            }
            XCTAssertEqual(try roundTrip(values, .int8), decoded, "deterministic for one randomness and row number")
        }
        // Unbiased: the mean over 400 row numbers (independent dithers) of one row's decoding is close to it.
        let row = (0..<256).map { _ in rng.float() }
        var mean = [Double](repeating: 0, count: 256)
        for r in 0..<400 {
            for (i, y) in try roundTrip(row, .int8, firstRow: r).enumerated() { mean[i] += Double(y) / 400 }
        }
        let step = Double(row.max()! - row.min()!) / 255
        for i in 0..<256 { XCTAssertEqual(mean[i], Double(row[i]), accuracy: step * 0.2, "element \(i)") }
    }

    func testInt8KeepsNonFiniteValuesVisible() throws {
        var values = [Float](repeating: 0.5, count: 600)
        values[300] = .nan
        values[599] = .infinity
        let decoded = try roundTrip(values, .int8)
        XCTAssertTrue(decoded[256..<512].allSatisfy(\.isNaN), "the row holding a NaN decodes as NaN")
        XCTAssertTrue(decoded[512...].contains { !$0.isFinite }, "the row holding ∞ does not decode as finite")
        XCTAssertTrue(decoded[..<256].allSatisfy { $0 == 0.5 }, "other rows are unaffected")
    }

    func testSizesAndAMismatchedMessageIsRefused() throws {
        XCTAssertEqual(GradientCodec(.none).encodedSize(count: 1000), 4000)
        XCTAssertEqual(GradientCodec(.bf16).encodedSize(count: 1000), 2000)
        // Three rows of 256 codes and one of 232, each with an 8-byte range.
        XCTAssertEqual(GradientCodec(.int8).encodedSize(count: 1000), 1000 + 4 * 8)
        for compression in GradientCompression.allCases {
            let codec = GradientCodec(compression)
            let bytes = [Float](repeating: 1, count: 300).withUnsafeBufferPointer {
                codec.encode($0, randomness: randomness, firstRow: 0)
            }
            var out = [Float](repeating: 0, count: 301)
            XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer { try codec.decode(bytes, into: $0) }) { error in
                XCTAssertTrue("\(error)".contains("holds \(bytes.count) bytes"), "\(compression): \(error)")
            }
        }
    }
}
