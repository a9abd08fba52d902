import XCTest

@testable import HaloGraph

final class XXHash64StreamTests: XCTestCase {
    /// Published XXH64 values (seed 0), so both forms are tied to the algorithm, not only to each other.
    func testKnownValues() {
        for (text, value): (String, UInt64) in [("", 0xEF46_DB37_51D8_E999), ("a", 0xD24E_C4F1_A98C_6E5B), ("abc", 0x44BC_2CF5_AD77_0999)] {
            let bytes = Array(text.utf8)
            XCTAssertEqual(XXHash64.hash(bytes), value, text)
            var stream = XXHash64Stream()
            bytes.withUnsafeBytes { stream.update($0) }
            XCTAssertEqual(stream.value, value, text)
        }
    }

    /// Any split into pieces (crossing and not crossing the 32-byte stripes) gives the one-shot value.
    func testPiecesGiveTheOneShotValue() {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 31, 32, 33, 63, 64, 100, 1000, 4099] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for seed: UInt64 in [0, 0x9E37_79B9] {
                let whole = XXHash64.hash(bytes, seed: seed)
                for _ in 0..<20 {
                    var stream = XXHash64Stream(seed: seed)
                    var offset = 0
                    bytes.withUnsafeBytes { raw in
                        while offset < length {
                            let end = min(length, offset + Int.random(in: 0...70, using: &generator))
                            stream.update(UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
                            offset = end
                        }
                    }
                    XCTAssertEqual(stream.value, whole, "length \(length), seed \(seed)")
                }
            }
        }
    }
}
