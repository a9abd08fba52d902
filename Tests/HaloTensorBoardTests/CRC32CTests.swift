@testable import HaloTensorBoard
import HaloTensorBoardTesting
import XCTest

final class CRC32CTests: XCTestCase {
    /// The check value every CRC-32C catalogue lists, and the vectors of RFC 3720 (iSCSI), appendix B.4.
    func testKnownVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }), 0x113F_DB5C)
    }

    func testTableAgreesWithTheBitwiseReference() {
        var generator = SystemRandomNumberGenerator()
        for length in [1, 2, 3, 7, 8, 9, 63, 64, 65, 1000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            XCTAssertEqual(CRC32C.checksum(bytes), EventFileReader.bitwiseCRC32C(bytes), "length \(length)")
        }
    }

    func testMaskingIsTFRecords() {
        for crc: UInt32 in [0, 1, 0xE306_9283, 0xFFFF_FFFF, 0x8000_0000] {
            XCTAssertEqual(CRC32C.masked(crc), EventFileReader.mask(crc))
            XCTAssertEqual(CRC32C.unmasked(CRC32C.masked(crc)), crc)
        }
        // TensorFlow's own framing of an empty record: length 0 and its masked CRC.
        var framed: [UInt8] = []
        RecordFraming.append([], to: &framed)
        XCTAssertEqual(framed.count, RecordFraming.overhead)
        XCTAssertEqual(try EventFileReader.records(framed), [[]])
    }
}
