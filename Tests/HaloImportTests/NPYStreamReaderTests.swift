import Foundation
import HaloImportTesting
import XCTest

@testable import HaloImport

/// Zip members read a buffer at a time, and .npy data decoded from them in chunks straight into the destination.
final class NPYStreamReaderTests: ImportTestCase {
    private func archive(_ members: [(name: String, contents: Data)], method: ZipWriter.Method) throws -> ZipArchive {
        let url = scratch.appendingPathComponent("s.npz")
        try ZipWriter.archive(members, method: method).write(to: url)
        return try ZipArchive(url: url, displayName: "s.npz")
    }

    func testMemberStreamReadInSmallPiecesGivesTheMemberBytes() throws {
        let contents = NPYEncoder.int32(Array(0..<5000))
        for method in [ZipWriter.Method.stored, .deflated] {
            let stream = try archive([("a.npy", contents)], method: method).stream(of: "a.npy")
            var read = Data()
            var piece = [UInt8](repeating: 0, count: 13)
            while true {
                let got = try piece.withUnsafeMutableBytes { try stream.read(into: $0) }
                if got == 0 { break }
                read.append(contentsOf: piece[..<got])
            }
            XCTAssertEqual(read, contents, "\(method)")
        }
    }

    func testFloatsAreDecodedAcrossBufferBoundariesInEitherOrder() throws {
        let values = (0..<600).map { Float($0) * 0.25 - 30 }
        let halves = (0..<600).map { Float($0 % 64) - 16 }
        // The 20 × 30 matrix stored column by column.
        let columnMajor = (0..<600).map { values[($0 % 20) * 30 + $0 / 20] }
        let members: [(name: String, contents: Data)] = [
            ("c.npy", NPYEncoder.float32(values, shape: [20, 30])),
            ("f.npy", NPYEncoder.array(descr: "<f4", shape: [20, 30], body: columnMajor.withUnsafeBytes { Data($0) }, fortranOrder: true)),
            ("d.npy", NPYEncoder.float64(values.map { Double($0) }, shape: [600])),
            ("h.npy", NPYEncoder.array(halves.map(OGBBinaryFixture.halfBits), descr: "<f2", shape: [600])),
        ]
        for method in [ZipWriter.Method.stored, .deflated] {
            let zip = try archive(members, method: method)
            for bufferSize in [16, 23, 4097, 1 << 20] {
                for (name, expected) in [("c.npy", values), ("f.npy", values), ("d.npy", values), ("h.npy", halves)] {
                    let reader = try NPYStreamReader(zip.stream(of: name))
                    XCTAssertEqual(try reader.finiteFloats(meaning: "x", bufferSize: bufferSize), expected, "\(name) \(method) \(bufferSize)")
                }
            }
        }
    }

    func testDamageAndNonFiniteValuesAreReportedAsFromMemory() throws {
        var values = [Float](repeating: 1, count: 300)
        let stored = ZipWriter.archive([("a.npy", NPYEncoder.float32(values))], method: .stored)
        // A flipped bit in the data, still a finite float: only the CRC-32 at the end can tell.
        var flipped = stored
        flipped[stored.range(of: NPYEncoder.float32(values))!.lowerBound + 200] ^= 0x01
        let url = scratch.appendingPathComponent("d.npz")
        try flipped.write(to: url)
        assertImportError(.checksumMismatch, file: "d.npz/a.npy", "CRC-32", "damaged") {
            try NPYStreamReader(ZipArchive(url: url, displayName: "d.npz").stream(of: "a.npy")).finiteFloats(meaning: "x", bufferSize: 64)
        }
        values[123] = .infinity
        let zip = try archive([("b.npy", NPYEncoder.float32(values, shape: [100, 3]))], method: .deflated)
        assertImportError(.nonFinite, file: "s.npz/b.npy", "feature at flat index 123", "inf") {
            try NPYStreamReader(zip.stream(of: "b.npy")).finiteFloats(meaning: "feature", bufferSize: 64)
        }
        assertImportError(.shapeMismatch, file: "s.npz/c.npy", "8 bytes", "12 bytes") {
            try NPYStreamReader(archive([("c.npy", NPYEncoder.array(descr: "<f4", shape: [3], body: Data(count: 8)))], method: .deflated).stream(of: "c.npy"))
        }
        assertImportError(.badHeader, file: "s.npz/e.npy", "5 bytes") {
            try NPYStreamReader(archive([("e.npy", Data([0x93, 0x4E, 0x55, 0x4D, 0x50]))], method: .stored).stream(of: "e.npy"))
        }
        // A deflate stream cut short inside a member whose sizes the archive still records in full.
        let deflated = ZipWriter.archive([("a.npy", NPYEncoder.float32((0..<3000).map { Float($0) }))], method: .deflated)
        let payloadEnd = deflated.count - 22 - (46 + 5)
        var cut = deflated
        cut.replaceSubrange((payloadEnd - 40)..<payloadEnd, with: Data(count: 40))
        try cut.write(to: url)
        XCTAssertThrowsError(try NPYStreamReader(ZipArchive(url: url, displayName: "d.npz").stream(of: "a.npy")).finiteFloats(meaning: "x")) { error in
            XCTAssertEqual((error as? ImportError)?.file, "d.npz/a.npy")
            XCTAssertTrue([.badCompression, .checksumMismatch].contains((error as? ImportError)?.kind), "\(error)")
        }
    }
}
