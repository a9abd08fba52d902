import Foundation
import HaloGraph
import HaloImportTesting
import HaloTensor
import XCTest

@testable import HaloImport

final class OGBImporterTests: ImportTestCase {
    private func importTree(_ name: String = "ogbn_test", _ configure: (inout OGBImporter.Options) -> Void = { _ in }) throws -> ImportedDataset {
        var options = OGBImporter.Options()
        configure(&options)
        return try OGBImporter.importDataset(directory: scratch.appendingPathComponent(name), options: options)
    }

    private func writeTree(_ files: [String: String], gzip: Bool = false) throws {
        try OGBFixture.write(files, to: scratch.appendingPathComponent("ogbn_test"), gzip: gzip)
    }

    func testGzipAndPlainTreesImportToTheDatasetTheyWereWrittenFrom() throws {
        let original = try syntheticDataset()
        for gzip in [true, false] {
            let name = gzip ? "gz" : "plain"
            try OGBFixture.write(original, to: scratch.appendingPathComponent(name), gzip: gzip)
            let imported = try importTree(name) { $0.name = original.name }
            XCTAssertEqual(imported.dataset, original, "gzip: \(gzip)")
            XCTAssertEqual(imported.splitDescription, "OGB split/time")
            // And what the writer makes of it reads back the same.
            let out = scratch.appendingPathComponent("out-\(name)")
            try DatasetFormat.write(imported.dataset, to: out, splitDescription: imported.splitDescription)
            XCTAssertEqual(try DatasetFormat.read(directory: out), original)
        }
    }

    func testDirectedTreeKeepsOrSymmetrisesItsEdges() throws {
        let tiny = tinyDataset(sparse: false)
        try OGBFixture.write(tiny, to: scratch.appendingPathComponent("ogbn_test"), gzip: true)
        let asStored = try importTree { $0.direction = .asStored; $0.name = "tiny" }
        XCTAssertEqual(asStored.dataset, tiny)
        // 7 directed edges over 5 node pairs (0-1 both ways), as meta.json counts them.
        let out = scratch.appendingPathComponent("written")
        try DatasetFormat.write(asStored.dataset, to: out)
        let meta = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("meta.json"))) as? [String: Any])
        XCTAssertEqual(meta["num_edges_undirected"] as? Int, 5)
        XCTAssertEqual(meta["num_edges_directed"] as? Int, 7)
        XCTAssertEqual(try DatasetFormat.read(directory: out), asStored.dataset)
        let undirected = try importTree().dataset
        XCTAssertTrue(undirected.graph.isSymmetric)
        // 0-1 appears both ways in the source: the pair is merged, not doubled.
        XCTAssertEqual(undirected.graph.edgeCount, 10)
        XCTAssertEqual(undirected.labels, tiny.labels, "nan reads as unlabelled")
    }

    func testSelfLoopsAreDroppedAndCounted() throws {
        var files = OGBFixture.files(of: tinyDataset(sparse: false))
        files["raw/edge.csv"]! += "3,3\n"
        files["raw/num-edge-list.csv"] = "8\n"
        try writeTree(files)
        let imported = try importTree { $0.direction = .asStored }
        XCTAssertEqual(imported.dataset.graph.edgeCount, 7)
        XCTAssertTrue(imported.notes[0].contains("8 edges read, 1 self loop dropped"), imported.notes[0])
    }

    func testWithoutSplitFolderASeededStratifiedSplitIsGenerated() throws {
        let original = try syntheticDataset()
        try OGBFixture.write(original, to: scratch.appendingPathComponent("ogbn_test"), gzip: false, splitScheme: nil)
        let first = try importTree { $0.seed = 9; $0.generatedSplit = SplitFractions(train: 0.5, validation: 0.25, test: 0.25)! }
        let again = try importTree { $0.seed = 9; $0.generatedSplit = SplitFractions(train: 0.5, validation: 0.25, test: 0.25)! }
        XCTAssertEqual(first.dataset.split, again.dataset.split)
        XCTAssertEqual(first.dataset.split.trainCount, 150, accuracy: 4)
        XCTAssertTrue(first.splitDescription.contains("stratified by class"))
        XCTAssertTrue(first.splitDescription.contains("seed 9"))
        let other = try importTree { $0.seed = 10 }
        XCTAssertNotEqual(other.dataset.split, first.dataset.split)
    }

    func testMultiLabelTargetsAndSchemeChoice() throws {
        let targets: [UInt8] = [1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0]
        let multi = tinyDataset(labels: .multiLabel(targets: targets, classCount: 3), sparse: false)
        var files = OGBFixture.files(of: multi)
        files["split/other/train.csv"] = "0\n"
        files["split/other/valid.csv"] = "1\n"
        files["split/other/test.csv"] = "2\n"
        try writeTree(files, gzip: true)
        assertImportError(.missingFile, file: "ogbn_test/split", "2 schemes (other, time)", "--split-scheme") { try importTree() }
        let imported = try importTree { $0.splitScheme = "time"; $0.direction = .asStored; $0.name = "tiny" }
        XCTAssertEqual(imported.dataset, multi)
        XCTAssertEqual(try importTree { $0.splitScheme = "other" }.dataset.split.trainCount, 1)
        assertImportError(.missingFile, file: "ogbn_test/split/nope", "one of: other, time") { try importTree { $0.splitScheme = "nope" } }
    }

    func testMalformedTreesAreRefusedNamingFileLineAndField() throws {
        let good = OGBFixture.files(of: tinyDataset(sparse: false))
        func check(_ kind: ImportErrorKind, _ file: String, _ fragments: String..., gzip: Bool = false, line: UInt = #line,
                   edit: (inout [String: String]) -> Void) throws {
            try? FileManager.default.removeItem(at: scratch.appendingPathComponent("ogbn_test"))
            var files = good
            edit(&files)
            try writeTree(files, gzip: gzip)
            do {
                _ = try importTree()
                XCTFail("expected \(kind) about \(file)", line: line)
            } catch let error as ImportError {
                XCTAssertEqual(error.kind, kind, "\(error)", line: line)
                XCTAssertEqual(error.file, "ogbn_test/\(file)", "\(error)", line: line)
                for fragment in fragments { XCTAssertTrue(error.description.contains(fragment), "\"\(error)\" lacks \"\(fragment)\"", line: line) }
            }
        }
        try check(.columnCount, "raw/edge.csv.gz", "line 2", gzip: true) { $0["raw/edge.csv"] = "0,1\n1\n" }
        try check(.columnCount, "raw/edge.csv", "line 1", "3 fields") { $0["raw/edge.csv"] = "0,1,2\n" }
        try check(.badNumber, "raw/edge.csv", "line 3, field 2", "\"two\"") { $0["raw/edge.csv"] = "0,1\n1,2\n2,two\n" }
        try check(.idOutOfRange, "raw/edge.csv", "line 2", "(1, 6)", "0..<6") { $0["raw/edge.csv"] = "0,1\n1,6\n" }
        try check(.idOutOfRange, "raw/edge.csv", "(-1, 2)") { $0["raw/edge.csv"] = "-1,2\n" }
        try check(.rowCount, "raw/edge.csv", "number of edges", "7, as num-edge-list says") { $0["raw/edge.csv"] = "0,1\n" }
        try check(.columnCount, "raw/node-feat.csv", "line 3", "5 fields", "4 fields, as many as line 1 has") {
            var rows = $0["raw/node-feat.csv"]!.split(separator: "\n").map(String.init)
            rows[2] += ",1"
            $0["raw/node-feat.csv"] = rows.joined(separator: "\n") + "\n"
        }
        try check(.rowCount, "raw/node-feat.csv", "number of lines", "5", "6, one per node") {
            $0["raw/node-feat.csv"] = $0["raw/node-feat.csv"]!.split(separator: "\n").dropLast().joined(separator: "\n") + "\n"
        }
        try check(.nonFinite, "raw/node-feat.csv", "line 1, field 1") { $0["raw/node-feat.csv"] = "nan" + $0["raw/node-feat.csv"]!.drop { $0 != "," } }
        try check(.labelOutOfRange, "raw/node-label.csv", "line 2", "1.5") { $0["raw/node-label.csv"] = "0\n1.5\n2\n0\n1\nnan\n" }
        try check(.labelOutOfRange, "raw/node-label.csv", "-3.0") { $0["raw/node-label.csv"] = "0\n-3\n2\n0\n1\nnan\n" }
        try check(.badNumber, "raw/num-node-list.csv", "a node count in 1...") { $0["raw/num-node-list.csv"] = "0\n" }
        try check(.rowCount, "raw/num-node-list.csv", "one line") { $0["raw/num-node-list.csv"] = "6\n6\n" }
        try check(.missingFile, "raw/node-feat.csv.gz", "no node-feat.csv either") { $0["raw/node-feat.csv"] = nil }
        try check(.badArchive, "raw/data.npz", "end of central directory") {
            // Without raw/edge.csv, raw/data.npz means OGB's binary layout.
            $0 = ["raw/data.npz": "not a zip archive", "raw/node-label.npz": "not read"]
        }
        try check(.badSplit, "split/time/valid.csv", "node 1, already listed in train") { $0["split/time/valid.csv"] = "1\n" }
        try check(.badSplit, "split/time/test.csv", "node 5, which is unlabelled") { $0["split/time/test.csv"] = "5\n" }
        try check(.idOutOfRange, "split/time/train.csv", "node 60") { $0["split/time/train.csv"] = "60\n" }

        // A gzip file cut short, and one whose bytes were damaged.
        try? FileManager.default.removeItem(at: scratch.appendingPathComponent("ogbn_test"))
        try writeTree(good, gzip: true)
        let edges = scratch.appendingPathComponent("ogbn_test/raw/edge.csv.gz")
        let packed = try Data(contentsOf: edges)
        try packed.prefix(packed.count - 4).write(to: edges)
        assertImportError(.badCompression, file: "ogbn_test/raw/edge.csv.gz", "cut short") { try importTree() }
        var damaged = packed
        damaged[damaged.count - 6] ^= 0x40
        try damaged.write(to: edges)
        assertImportError(.badCompression, file: "ogbn_test/raw/edge.csv.gz", "corrupt") { try importTree() }
        try Data("0,1\n".utf8).write(to: edges)
        assertImportError(.badCompression, file: "ogbn_test/raw/edge.csv.gz", "not gzip") { try importTree() }
    }
}
