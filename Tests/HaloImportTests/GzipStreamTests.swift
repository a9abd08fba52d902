import Foundation
import HaloImportTesting
import XCTest

@testable import HaloImport

final class GzipStreamTests: ImportTestCase {
    private func decompress(_ data: Data, chunk: Int = 5) throws -> Data {
        let stream = try GzipStream(ChunkedByteStream(data, chunk: chunk, displayName: "x.csv.gz"), bufferSize: 3)
        var out = Data()
        var buffer = [UInt8](repeating: 0, count: 11)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
            if count == 0 { break }
            out.append(contentsOf: buffer[..<count])
        }
        return out
    }

    func testDecompressesInSmallPiecesAndConcatenatedMembers() throws {
        let text = Data((0..<2000).map { "\($0),\($0 * 7)\n" }.joined().utf8)
        XCTAssertEqual(try decompress(Compression.gzip(text)), text)
        let second = Data("tail\n".utf8)
        XCTAssertEqual(try decompress(Compression.gzip(text) + Compression.gzip(second)), text + second)
    }

    func testTruncatedAndCorruptStreamsAreRefused() throws {
        let gz = Compression.gzip(Data((0..<500).map { "\($0)\n" }.joined().utf8))
        assertImportError(.badCompression, file: "x.csv.gz", "cut short", "complete gzip") {
            try decompress(gz.prefix(gz.count - 6))
        }
        var corrupt = gz
        corrupt[corrupt.count - 5] ^= 0xFF  // inside the CRC-32 / length trailer
        assertImportError(.badCompression, file: "x.csv.gz", "corrupt") { try decompress(corrupt) }
        var garbled = gz
        for k in 12..<40 { garbled[k] = 0xFF }
        assertImportError(.badCompression, file: "x.csv.gz", "corrupt") { try decompress(garbled) }
    }

    func testContentDecidesCompressionButGzNamesMustHoldGzip() throws {
        let plain = scratch.appendingPathComponent("a.csv"), fake = scratch.appendingPathComponent("b.csv.gz")
        let packed = scratch.appendingPathComponent("c.csv")
        try Data("1,2\n".utf8).write(to: plain)
        try Data("1,2\n".utf8).write(to: fake)
        try Compression.gzip(Data("3,4\n".utf8)).write(to: packed)
        XCTAssertTrue(try openPossiblyCompressed(path: plain.path, displayName: "a.csv") is FileByteStream)
        XCTAssertTrue(try openPossiblyCompressed(path: packed.path, displayName: "c.csv") is GzipStream)
        assertImportError(.badCompression, file: "b.csv.gz", "not gzip", "0x31 0x2c") {
            try openPossiblyCompressed(path: fake.path, displayName: "b.csv.gz")
        }
        assertImportError(.missingFile, file: "none.csv", "not readable") {
            try openPossiblyCompressed(path: scratch.appendingPathComponent("none.csv").path, displayName: "none.csv")
        }
    }
}
