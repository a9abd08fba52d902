import Foundation
import HaloImportTesting
import XCTest

@testable import HaloImport

final class NPYArrayTests: ImportTestCase {
    func testReadsEveryVersionAndConvertsTypes() throws {
        for version: UInt8 in [1, 2, 3] {
            let bytes = NPYEncoder.array(descr: "<i8", shape: [2, 2], body: [Int64(1), -2, 3, 4].withUnsafeBytes { Data($0) }, version: version)
            let array = try NPYArray(bytes, displayName: "a.npy")
            XCTAssertEqual(array.shape, [2, 2])
            XCTAssertEqual(try array.integers(Int32.self, in: -5...5, meaning: "x"), [1, -2, 3, 4])
            XCTAssertEqual(try array.finiteFloats(meaning: "x"), [1, -2, 3, 4])
        }
        let small = try NPYArray(NPYEncoder.array([UInt8(0), 1, 255], descr: "|u1"), displayName: "u.npy")
        XCTAssertEqual(try small.integers(Int32.self, in: 0...255, meaning: "x"), [0, 1, 255])
        let flags = try NPYArray(NPYEncoder.bool([true, false]), displayName: "b.npy")
        XCTAssertEqual(try flags.integers(UInt8.self, in: 0...1, meaning: "x"), [1, 0])
        let doubles = try NPYArray(NPYEncoder.float64([0.5, 2]), displayName: "f.npy")
        assertImportError(.idOutOfRange, file: "f.npy", "0.5", "whole number") { try doubles.integers(Int32.self, in: 0...9, meaning: "x") }
    }

    func testFortranOrderIsTransposedToRowMajor() throws {
        // The 2 × 3 matrix [[1, 2, 3], [4, 5, 6]] stored column by column.
        let body = [Float(1), 4, 2, 5, 3, 6].withUnsafeBytes { Data($0) }
        let array = try NPYArray(NPYEncoder.array(descr: "<f4", shape: [2, 3], body: body, fortranOrder: true), displayName: "m.npy")
        XCTAssertEqual(try array.finiteFloats(meaning: "x"), [1, 2, 3, 4, 5, 6])
    }

    func testHalfPrecisionFloatsInEitherOrder() throws {
        // [[1, -2, 0.5], [65504, 0, 0.25]] as float16 bit patterns, stored column by column.
        let halves: [UInt16] = [0x3C00, 0x7BFF, 0xC000, 0x0000, 0x3800, 0x3400]
        let array = try NPYArray(NPYEncoder.array(descr: "<f2", shape: [2, 3], body: halves.withUnsafeBytes { Data($0) }, fortranOrder: true),
                                 displayName: "h.npy")
        XCTAssertEqual(try array.finiteFloats(meaning: "x"), [1, -2, 0.5, 65504, 0, 0.25])
        let infinite = try NPYArray(NPYEncoder.array([UInt16(0x7C00)], descr: "<f2"), displayName: "inf.npy")
        assertImportError(.nonFinite, file: "inf.npy", "flat index 0", "inf") { try infinite.finiteFloats(meaning: "feature") }
    }

    func testRefusesWhatItCannotRead() {
        let four = [Float(1), 2].withUnsafeBytes { Data($0) }
        assertImportError(.unsupportedType, file: "big.npy", "big-endian >f4") {
            try NPYArray(NPYEncoder.array(descr: ">f4", shape: [2], body: four), displayName: "big.npy")
        }
        assertImportError(.unsupportedType, file: "o.npy", "|O", "Python objects") {
            try NPYArray(NPYEncoder.array(descr: "|O", shape: [1], body: Data(count: 8)), displayName: "o.npy")
        }
        assertImportError(.unsupportedType, file: "c.npy", "<c8", "f2, f4, f8") {
            try NPYArray(NPYEncoder.array(descr: "<c8", shape: [2], body: Data(count: 16)), displayName: "c.npy")
        }
        assertImportError(.unsupportedType, file: "t.npy", "Fortran order with 3 dimensions") {
            try NPYArray(NPYEncoder.array(descr: "|u1", shape: [1, 1, 1], body: Data(count: 1), fortranOrder: true), displayName: "t.npy")
        }
        assertImportError(.badHeader, file: "m.npy", "magic") { try NPYArray(Data("PK\u{3}\u{4}notnumpyatall".utf8), displayName: "m.npy") }
        assertImportError(.badHeader, file: "v.npy", "format version 9.0") {
            var bytes = NPYEncoder.float32([1])
            bytes[6] = 9
            return try NPYArray(bytes, displayName: "v.npy")
        }
        assertImportError(.badHeader, file: "d.npy", "'shape'") {
            var bytes = NPYEncoder.float32([1])
            bytes.replaceSubrange(bytes.range(of: Data("'shape'".utf8))!, with: Data("'shope'".utf8))
            return try NPYArray(bytes, displayName: "d.npy")
        }
        assertImportError(.badHeader, file: "s.npy", "unterminated") {
            let header = "{'descr': '<f4, }".padding(toLength: 54, withPad: " ", startingAt: 0) + "\n"
            return try NPYArray(Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count), 0]) + Data(header.utf8), displayName: "s.npy")
        }
        assertImportError(.shapeMismatch, file: "short.npy", "4 bytes", "8 bytes for shape [2] of <i4") {
            try NPYArray(NPYEncoder.array(descr: "<i4", shape: [2], body: Data(count: 4)), displayName: "short.npy")
        }
    }

    func testRangeAndFinitenessChecksNameTheElement() throws {
        let array = try NPYArray(NPYEncoder.int64([0, 7, 99]), displayName: "z.npz/adj_indices.npy")
        assertImportError(.idOutOfRange, file: "adj_indices.npy", "column index at flat index 2", "99", "0...9") {
            try array.integers(Int32.self, in: 0...9, meaning: "column index")
        }
        let floats = try NPYArray(NPYEncoder.float64([1, .nan]), displayName: "attr.npy")
        assertImportError(.nonFinite, file: "attr.npy", "flat index 1", "nan") { try floats.finiteFloats(meaning: "feature") }
        let huge = try NPYArray(NPYEncoder.float64([1e300]), displayName: "huge.npy")
        assertImportError(.nonFinite, file: "huge.npy", "32-bit") { try huge.finiteFloats(meaning: "feature") }
    }
}
