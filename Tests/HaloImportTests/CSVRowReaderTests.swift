import Foundation
import HaloImportTesting
import XCTest

@testable import HaloImport

final class CSVRowReaderTests: ImportTestCase {
    private func rows(_ text: String, bufferSize: Int = 16) throws -> [[Double?]] {
        let reader = CSVRowReader(ChunkedByteStream(Data(text.utf8)), bufferSize: bufferSize)
        var result: [[Double?]] = []
        try reader.forEachRow { row in
            var values: [Double?] = []
            while !row.isAtEnd { values.append(try row.nextNumber()) }
            result.append(values)
        }
        return result
    }

    func testReadsLinesAcrossBufferBoundariesWithAnyLineEnd() throws {
        let long = (0..<40).map { "\($0).5" }.joined(separator: ",")
        let parsed = try rows("1,2\r\n-3.25,1e-3\n\(long)\n7", bufferSize: 8)
        XCTAssertEqual(parsed.count, 4)
        XCTAssertEqual(parsed[0], [1, 2])
        XCTAssertEqual(parsed[1], [-3.25, 0.001])
        XCTAssertEqual(parsed[2].count, 40)
        XCTAssertEqual(parsed[2][39], 39.5)
        XCTAssertEqual(parsed[3], [7])
    }

    func testEmptyFieldsAndNaN() throws {
        let parsed = try rows("nan\n\n3,\n")
        XCTAssertEqual(parsed.count, 3)
        XCTAssertTrue(parsed[0][0]!.isNaN)
        XCTAssertEqual(parsed[1], [nil])
        XCTAssertEqual(parsed[2], [3, nil])
    }

    func testIntegersAreStrict() throws {
        let reader = CSVRowReader(ChunkedByteStream(Data("12,-4\n5,x\n".utf8), displayName: "g/raw/edge.csv"))
        var seen: [Int64] = []
        assertImportError(.badNumber, file: "g/raw/edge.csv", "line 2, field 2", "\"x\"", "an integer") {
            try reader.forEachRow { row in
                seen.append(try row.nextInteger())
                seen.append(try row.nextInteger())
                try row.finish(expected: "2 fields")
            }
        }
        XCTAssertEqual(seen, [12, -4, 5])
        assertImportError(.badNumber, file: "test.csv", "1.5") {
            try CSVRowReader(ChunkedByteStream(Data("1.5\n".utf8))).forEachRow { row in _ = try row.nextInteger() }
        }
        assertImportError(.badNumber, file: "test.csv", "64 bits") {
            try CSVRowReader(ChunkedByteStream(Data("99999999999999999999\n".utf8))).forEachRow { row in _ = try row.nextInteger() }
        }
    }

    func testColumnCountIsChecked() throws {
        assertImportError(.columnCount, file: "test.csv", "line 1", "3 fields", "2 fields") {
            try CSVRowReader(ChunkedByteStream(Data("1,2,3\n".utf8))).forEachRow { row in
                _ = try row.nextInteger()
                _ = try row.nextInteger()
                try row.finish(expected: "2 fields")
            }
        }
        assertImportError(.columnCount, file: "test.csv", "line 1", "at least 2 fields") {
            try CSVRowReader(ChunkedByteStream(Data("1\n".utf8))).forEachRow { row in
                _ = try row.nextInteger()
                _ = try row.nextInteger()
            }
        }
    }

    func testFloatsMustBeFinite() throws {
        assertImportError(.nonFinite, file: "test.csv", "line 1, field 2") {
            try CSVRowReader(ChunkedByteStream(Data("1,inf\n".utf8))).forEachRow { row in
                _ = try row.nextFiniteFloat()
                _ = try row.nextFiniteFloat()
            }
        }
        assertImportError(.nonFinite, file: "test.csv", "1e+300") {
            try CSVRowReader(ChunkedByteStream(Data("1e300\n".utf8))).forEachRow { row in _ = try row.nextFiniteFloat() }
        }
        assertImportError(.badNumber, file: "test.csv", "\" 2\"") {
            try CSVRowReader(ChunkedByteStream(Data(" 2\n".utf8))).forEachRow { row in _ = try row.nextFiniteFloat() }
        }
    }
}
