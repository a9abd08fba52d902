import Foundation
import HaloTensor
import XCTest

@testable import HaloGraph

/// meta.json's `xxh64` checksums: written for every data file, verified at load, optional for old directories.
final class DatasetChecksumTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("halo-checksum-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(at: scratch)
    }

    // MARK: Fixtures

    /// Six nodes on a path, 3 classes; sparse features of width 4 where node 0 has columns 0 and 2 (entries 0, 1).
    private func tinyDataset(dense: Bool = false) -> Dataset {
        let graph = Graph(nodeCount: 6, sources: [0, 1, 2, 3, 4, 1, 2, 3, 4, 5], destinations: [1, 2, 3, 4, 5, 0, 1, 2, 3, 4])
        let features: NodeFeatures = dense
            ? .dense(Matrix(rows: 6, cols: 3) { i, j in Float(i * 3 + j) * 0.25 - 1 })
            : .sparse(SparseMatrix(rows: 6, cols: 4, triplets: [(0, 0, 1), (0, 2, 0.5), (1, 1, 1), (2, 3, -2), (4, 0, 1), (4, 1, 3), (5, 2, 1)]))
        let labels: NodeLabels = dense
            ? .multiLabel(targets: [1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0], classCount: 3)
            : .singleLabel(classes: [0, 1, 2, 0, 1, -1], classCount: 3)
        return Dataset(
            name: "tiny", graph: graph, features: features, labels: labels,
            split: NodeSplit(
                train: [true, true, false, false, false, false],
                validation: [false, false, true, true, false, false],
                test: [false, false, false, false, true, false]))
    }

    private func written(_ dataset: Dataset) throws -> URL {
        let dir = scratch.appendingPathComponent(UUID().uuidString).appendingPathComponent("tiny")
        try DatasetFormat.write(dataset, to: dir)
        return dir
    }

    private func meta(_ dir: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("meta.json"))) as? [String: Any])
    }

    private func editMeta(_ dir: URL, _ change: (inout [String: Any]) -> Void) throws {
        var json = try meta(dir)
        change(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("meta.json"))
    }

    private func editChecksums(_ dir: URL, _ change: (inout [String: String]) -> Void) throws {
        try editMeta(dir) { json in
            var sums = json["xxh64"] as? [String: String] ?? [:]
            change(&sums)
            json["xxh64"] = sums
        }
    }

    private func flipLowBit(_ dir: URL, _ file: String, atByte index: Int) throws {
        let url = dir.appendingPathComponent(file)
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[index] ^= 1
        try Data(bytes).write(to: url)
    }

    private func readError(_ dir: URL, line: UInt = #line) -> DatasetError? {
        do {
            _ = try DatasetFormat.read(directory: dir)
            XCTFail("expected the read to fail", line: line)
        } catch let error as DatasetError {
            return error
        } catch {
            XCTFail("expected a DatasetError, got \(error)", line: line)
        }
        return nil
    }

    // MARK: Written and verified

    func testWriterRecordsTheXXH64OfEveryListedFileAndTheReadVerifiesThemSilently() throws {
        for dense in [false, true] {
            let dataset = tinyDataset(dense: dense)
            let dir = try written(dataset)
            let json = try meta(dir)
            let files = try XCTUnwrap(json["files"] as? [String])
            let sums = try XCTUnwrap(json["xxh64"] as? [String: String])
            XCTAssertEqual(Set(sums.keys), Set(files))
            for file in files {
                let data = try Data(contentsOf: dir.appendingPathComponent(file))
                XCTAssertEqual(sums[file], XXHash64.hex(data.withUnsafeBytes { XXHash64.hash($0) }), file)
            }
            var notes: [String] = []
            XCTAssertEqual(try DatasetFormat.read(directory: dir, note: { notes.append($0) }), dataset)
            XCTAssertEqual(notes, [], "a verified directory needs no note")
        }
    }

    /// The defect: a column index moved to another valid column passes every range and order check.
    func testInRangeEditOfFeatureIndicesIsRefusedNamingFileAndBothChecksums() throws {
        let dir = try written(tinyDataset())
        let url = dir.appendingPathComponent("feat_indices.i32")
        let original = try Data(contentsOf: url)
        let expected = XXHash64.hex(original.withUnsafeBytes { XXHash64.hash($0) })
        var columns = original.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        XCTAssertEqual(columns[1], 2)
        columns[1] = 3  // node 0: columns 0, 3: still in 0..<4 and increasing
        let edited = columns.withUnsafeBytes { Data($0) }
        try edited.write(to: url)
        let found = XXHash64.hex(edited.withUnsafeBytes { XXHash64.hash($0) })

        let error = try XCTUnwrap(readError(dir))
        XCTAssertEqual(error.kind, .checksumMismatch)
        XCTAssertTrue(error.description.hasPrefix("tiny/feat_indices.i32: checksum (xxh64) is \(found), expected \(expected)"), error.description)

        // Only the checksum stood between this edit and a silently different dataset.
        try editMeta(dir) { $0["xxh64"] = nil }
        XCTAssertNoThrow(try DatasetFormat.read(directory: dir))
    }

    func testAByteFlipInAnyDataFileIsRefusedNamingThatFile() throws {
        for dense in [false, true] {
            let files = try XCTUnwrap(try meta(written(tinyDataset(dense: dense)))["files"] as? [String])
            for file in files {
                let dir = try written(tinyDataset(dense: dense))
                let size = try Data(contentsOf: dir.appendingPathComponent(file)).count
                guard size > 0 else { continue }
                try flipLowBit(dir, file, atByte: size - 1)
                let error = try XCTUnwrap(readError(dir), file)
                XCTAssertEqual(error.kind, .checksumMismatch, "\(file): \(error)")
                XCTAssertEqual(error.file, "tiny/\(file)")
            }
        }
    }

    // MARK: meta.json's record

    func testAWrongRecordedChecksumIsRefusedNamingTheFile() throws {
        let dir = try written(tinyDataset())
        let actual = try XCTUnwrap(try meta(dir)["xxh64"] as? [String: String])["labels.i32"]!
        try editChecksums(dir) { $0["labels.i32"] = "0123456789abcdef" }
        let error = try XCTUnwrap(readError(dir))
        XCTAssertEqual(error.kind, .checksumMismatch)
        XCTAssertEqual(error.description,
                       "tiny/labels.i32: checksum (xxh64) is \(actual), expected 0123456789abcdef as meta.json records: "
                       + "the file is corrupted or was changed after it was written")
    }

    func testAMalformedChecksumIsRefusedNamingTheField() throws {
        for bad in ["123", "+123456789abcdef", "0123456789abcdeg"] {
            let dir = try written(tinyDataset())
            try editChecksums(dir) { $0["edges.i32"] = bad }
            let error = try XCTUnwrap(readError(dir))
            XCTAssertEqual(error.kind, .badField, bad)
            XCTAssertEqual(error.file, "tiny/meta.json")
            XCTAssertEqual(error.field, "`xxh64.edges.i32`")
        }
    }

    func testChecksumsMustCoverExactlyTheListedFiles() throws {
        let lacking = try written(tinyDataset())
        try editChecksums(lacking) { $0["val_mask.u8"] = nil }
        let missing = try XCTUnwrap(readError(lacking))
        XCTAssertEqual(missing.kind, .fileListMismatch)
        XCTAssertEqual(missing.description, "tiny/meta.json: `xxh64` is lacking val_mask.u8, expected one checksum for each file in `files`")

        let extra = try written(tinyDataset())
        try editChecksums(extra) { $0["features.f32"] = "0123456789abcdef" }
        XCTAssertEqual(try XCTUnwrap(readError(extra)).kind, .fileListMismatch)
    }

    // MARK: Directories written before checksums

    func testADirectoryWithoutChecksumsLoadsWithOneNote() throws {
        let dataset = tinyDataset()
        let dir = try written(dataset)
        try editMeta(dir) { $0["xxh64"] = nil }
        var notes: [String] = []
        XCTAssertEqual(try DatasetFormat.read(directory: dir, note: { notes.append($0) }), dataset)
        XCTAssertEqual(notes.count, 1)
        XCTAssertTrue(notes[0].contains("tiny/meta.json records no `xxh64` checksums"), notes[0])
        XCTAssertFalse(notes[0].contains("\n"))
    }

    func testSharedCoraHasNoChecksumsAndStillLoadsWithTheNote() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("../shared/datasets/cora").standardizedFileURL
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("meta.json").path) else {
            throw XCTSkip("shared dataset cora not found at \(dir.path)")
        }
        var notes: [String] = []
        let cora = try DatasetFormat.read(directory: dir, note: { notes.append($0) })
        XCTAssertEqual(cora.nodeCount, 2708)
        XCTAssertEqual(notes.count, 1)

        // Rewriting it (what `halo generate --dataset cora --out DIR` does) adds them.
        let copy = scratch.appendingPathComponent("cora")
        try DatasetFormat.write(cora, to: copy)
        notes = []
        XCTAssertEqual(try DatasetFormat.read(directory: copy, note: { notes.append($0) }), cora)
        XCTAssertEqual(notes, [])
    }
}
