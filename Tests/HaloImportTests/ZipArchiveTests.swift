import Foundation
import HaloImportTesting
import XCTest

@testable import HaloImport

final class ZipArchiveTests: ImportTestCase {
    private let members: [(name: String, contents: Data)] = [
        ("a.npy", NPYEncoder.int32(Array(0..<1000))), ("b.npy", Data()), ("c.npy", NPYEncoder.float32([1.5])),
    ]

    private func archive(_ data: Data, name: String = "t.npz") throws -> ZipArchive {
        let url = scratch.appendingPathComponent(name)
        try data.write(to: url)
        return try ZipArchive(url: url, displayName: name)
    }

    func testStoredAndDeflatedWithAndWithoutZip64() throws {
        for method in [ZipWriter.Method.stored, .deflated] {
            for zip64 in [false, true] {
                let zip = try archive(ZipWriter.archive(members, method: method, zip64: zip64))
                XCTAssertEqual(Set(zip.members.keys), ["a.npy", "b.npy", "c.npy"])
                for member in members { XCTAssertEqual(try zip.contents(of: member.name), member.contents, "\(method) \(zip64)") }
            }
        }
    }

    func testDamagedArchivesAreRefused() throws {
        let stored = ZipWriter.archive(members, method: .stored)
        var flipped = stored
        flipped[200] ^= 0x01  // inside a.npy's data
        assertImportError(.checksumMismatch, file: "t.npz/a.npy", "CRC-32", "damaged") { try archive(flipped).contents(of: "a.npy") }
        assertImportError(.badArchive, file: "t.npz", "end of central directory", "missing") { try archive(stored.prefix(stored.count - 30)) }
        assertImportError(.badArchive, file: "t.npz", "end of central directory") { try archive(Data("not a zip".utf8)) }

        let deflated = ZipWriter.archive(members, method: .deflated)
        var corrupt = deflated
        for k in 80..<120 { corrupt[k] = 0x5A }
        // Garbled deflate data either breaks the stream or decodes to other bytes; both are caught.
        XCTAssertThrowsError(try archive(corrupt).contents(of: "a.npy")) { error in
            let failure = error as? ImportError
            XCTAssertEqual(failure?.file, "t.npz/a.npy")
            XCTAssertTrue([.badCompression, .checksumMismatch].contains(failure?.kind), "\(error)")
        }
        assertImportError(.missingFile, file: "t.npz/zzz.npy", "missing") { try archive(deflated).contents(of: "zzz.npy") }

        var unknownMethod = stored
        // The method field of the first central directory entry (offset 10 into it).
        let centralOffset = Int(stored[stored.count - 6]) | Int(stored[stored.count - 5]) << 8 | Int(stored[stored.count - 4]) << 16
        unknownMethod[centralOffset + 10] = 14
        assertImportError(.badCompression, file: "t.npz/a.npy", "compression method", "14") { try archive(unknownMethod).contents(of: "a.npy") }
    }
}
