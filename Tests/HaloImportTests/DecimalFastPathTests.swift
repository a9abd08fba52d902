import Foundation
import XCTest

@testable import HaloImport

#if canImport(Glibc)
import Glibc
#endif

final class DecimalFastPathTests: XCTestCase {
    /// Wherever the fast path answers, it answers exactly what `strtod` does.
    func testAgreesWithStrtodBitForBit() {
        var generator = SystemRandomNumberGenerator()
        var texts = ["0", "-0", "1", "+7", ".5", "5.", "0.000123", "1e5", "1E-5", "-2.5e+3", "123456789012345", "1234567890123456",
                     "0.1", "0.3", "9007199254740993", "1e22", "1e23", "4.35e-22", "7e-23", "1.500000000000000000"]
        for _ in 0..<20_000 {
            let float = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))
            if float.isFinite { texts.append(float.description) }
            let double = Double.random(in: -1000...1000, using: &generator)
            texts.append(double.description)
            texts.append(String(format: "%.6g", double))
            texts.append(String(format: "%.9e", double))
        }
        var answered = 0
        for text in texts {
            let bytes = Array(text.utf8) + [0]
            bytes.withUnsafeBufferPointer { full in
                let line = UnsafeBufferPointer(rebasing: full[..<(full.count - 1)])
                guard let (value, end) = DecimalFastPath.parse(line, from: 0) else { return }
                answered += 1
                var stop: UnsafeMutablePointer<CChar>?
                let expected = full.baseAddress!.withMemoryRebound(to: CChar.self, capacity: full.count) { strtod($0, &stop) }
                XCTAssertEqual(value.bitPattern, expected.bitPattern, text)
                XCTAssertEqual(end, line.count, text)
            }
        }
        XCTAssertGreaterThan(answered, texts.count / 2)
        XCTAssertNil(DecimalFastPath.parse(UnsafeBufferPointer(start: nil, count: 0), from: 0))
    }
}
