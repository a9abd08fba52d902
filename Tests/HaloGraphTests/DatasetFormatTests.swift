import Foundation
import HaloTensor
import XCTest

@testable import HaloGraph

final class DatasetFormatTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("halo-dataset-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(at: scratch)
    }

    // MARK: Fixtures

    /// Six nodes on a path 0–1–2–3–4–5 (both directions), 3 classes, node 5 unlabelled and in no mask.
    /// Edge file: (0,1) (1,0) (1,2) (2,1) (2,3) (3,2) (3,4) (4,3) (4,5) (5,4).
    /// Sparse features, width 4: node 0 has columns 0 and 2, node 3 has none.
    private func tinyDataset(_ features: NodeFeatures? = nil, labels: NodeLabels? = nil) -> Dataset {
        let graph = Graph(nodeCount: 6, sources: [0, 1, 2, 3, 4, 1, 2, 3, 4, 5], destinations: [1, 2, 3, 4, 5, 0, 1, 2, 3, 4])
        let sparse = SparseMatrix(rows: 6, cols: 4, triplets: [
            (0, 0, 1), (0, 2, 0.5), (1, 1, 1), (2, 3, -2), (4, 0, 1), (4, 1, 3), (5, 2, 1),
        ])
        return Dataset(
            name: "tiny", graph: graph, features: features ?? .sparse(sparse),
            labels: labels ?? .singleLabel(classes: [0, 1, 2, 0, 1, -1], classCount: 3),
            split: NodeSplit(
                train: [true, true, false, false, false, false],
                validation: [false, false, true, true, false, false],
                test: [false, false, false, false, true, false]))
    }

    private var denseFeatures: NodeFeatures {
        .dense(Matrix(rows: 6, cols: 3) { i, j in Float(i * 3 + j) * 0.25 - 1 })
    }

    private var multiLabels: NodeLabels {
        .multiLabel(targets: [1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0], classCount: 3)
    }

    /// Writes `dataset` into a fresh `tiny` directory under the scratch folder.
    private func written(_ dataset: Dataset) throws -> URL {
        let dir = scratch.appendingPathComponent(UUID().uuidString).appendingPathComponent("tiny")
        try DatasetFormat.write(dataset, to: dir, source: "unit test", license: "CC0")
        return dir
    }

    /// Rewrites a binary file as an array of `T` and records its new checksum in meta.json, as a forger would: the
    /// checksum would otherwise refuse the file first, and these tests are about the content checks behind it.
    private func edit<T: BitwiseCopyable>(_ dir: URL, _ file: String, as _: T.Type, _ change: (inout [T]) -> Void) throws {
        let url = dir.appendingPathComponent(file)
        let data = try Data(contentsOf: url)
        var values = data.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
        change(&values)
        let edited = values.withUnsafeBytes { Data($0) }
        try edited.write(to: url)
        try editMeta(dir) { json in
            guard var sums = json["xxh64"] as? [String: String], sums[file] != nil else { return }
            sums[file] = XXHash64.hex(edited.withUnsafeBytes { XXHash64.hash($0) })
            json["xxh64"] = sums
        }
    }

    private func editMeta(_ dir: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("meta.json")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        change(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    /// Reading must fail with `kind`, and the message must name `dir/file`.
    private func assertReadFails(
        _ dir: URL, _ kind: DatasetError.Kind, naming file: String, file path: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try DatasetFormat.read(directory: dir), file: path, line: line) { error in
            guard let error = error as? DatasetError else {
                return XCTFail("expected a DatasetError, got \(error)", file: path, line: line)
            }
            XCTAssertEqual(error.kind, kind, "\(error)", file: path, line: line)
            XCTAssertTrue(error.description.hasPrefix("tiny/\(file): "), "\(error)", file: path, line: line)
        }
    }

    /// Writes the tiny dataset, applies one corruption, and expects reading to fail with `kind` naming `file`.
    private func assertCorruption(
        _ kind: DatasetError.Kind, in file: String, of dataset: Dataset? = nil,
        line: UInt = #line, _ corrupt: (URL) throws -> Void
    ) throws {
        let dir = try written(dataset ?? tinyDataset())
        XCTAssertNoThrow(try DatasetFormat.read(directory: dir), "fixture must be valid", line: line)
        try corrupt(dir)
        assertReadFails(dir, kind, naming: file, line: line)
    }

    // MARK: Round trips

    func testRoundTripSparseFeatures() throws {
        let dataset = tinyDataset()
        let dir = try written(dataset)
        XCTAssertEqual(try DatasetFormat.read(directory: dir), dataset)
        XCTAssertEqual(try DatasetFormat.read(directory: dir.path), dataset)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertEqual(files, ["edges.i32", "feat_indices.i32", "feat_indptr.i64", "feat_values.f32", "labels.i32",
                               "meta.json", "test_mask.u8", "train_mask.u8", "val_mask.u8"])
    }

    func testRoundTripDenseFeatures() throws {
        let dataset = tinyDataset(denseFeatures)
        XCTAssertEqual(try DatasetFormat.read(directory: written(dataset)), dataset)
    }

    func testRoundTripMultiLabel() throws {
        let dataset = tinyDataset(labels: multiLabels)
        XCTAssertEqual(try DatasetFormat.read(directory: written(dataset)), dataset)
    }

    func testRoundTripWithoutEdgesOrFeatures() throws {
        let empty = Dataset(
            name: "tiny", graph: Graph(nodeCount: 2, sources: [], destinations: []),
            features: .sparse(SparseMatrix(rows: 2, cols: 5, triplets: [])),
            labels: .singleLabel(classes: [1, 0], classCount: 2),
            split: NodeSplit(train: [true, false], validation: [false, true], test: [false, false]))
        let dir = try written(empty)
        XCTAssertEqual(try DatasetFormat.read(directory: dir), empty)
        XCTAssertEqual(try DatasetFormat.read(directory: dir).summary.description,
                       "tiny: 2 nodes, 0 directed edges, 5 sparse features (0 non-zeros), 2 classes, train/val/test 1/1/0")
    }

    func testMetaHasTheSharedKeysAndCounts() throws {
        let dir = try written(tinyDataset())
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("meta.json"))) as? [String: Any])
        XCTAssertEqual(Set(json.keys), [
            "format", "format_version", "name", "num_nodes", "num_edges_directed", "num_edges_undirected", "num_features",
            "feature_nnz", "features_binary", "num_classes", "multilabel", "num_unlabeled_nodes", "isolated_nodes",
            "split", "split_sizes", "files", "xxh64", "source", "license",
        ])
        XCTAssertEqual(json["num_edges_directed"] as? Int, 10)
        XCTAssertEqual(json["num_edges_undirected"] as? Int, 5)
        XCTAssertEqual(json["feature_nnz"] as? Int, 7)
        XCTAssertEqual(json["num_unlabeled_nodes"] as? Int, 1)
        XCTAssertEqual(json["split_sizes"] as? [String: Int], ["train": 2, "val": 2, "test": 1])
    }

    func testRewritingWithAnotherLayoutRemovesStaleFiles() throws {
        let dir = try written(tinyDataset())
        let dense = tinyDataset(denseFeatures, labels: multiLabels)
        try DatasetFormat.write(dense, to: dir)
        XCTAssertEqual(try DatasetFormat.read(directory: dir), dense)
    }

    func testWriterRefusesWhatTheReaderWouldReject() throws {
        let bad = tinyDataset(labels: .singleLabel(classes: [0, 1, 7, 0, 1, -1], classCount: 3))
        XCTAssertThrowsError(try written(bad)) { XCTAssertEqual(($0 as? DatasetError)?.kind, .labelOutOfRange) }
    }

    func testErrorDescriptionIsOneClearLine() {
        let error = DatasetError(.labelOutOfRange, file: "cora/labels.i32", field: "label of node 17", found: "9", expected: "-1 or 0..<7")
        XCTAssertEqual(error.description, "cora/labels.i32: label of node 17 is 9, expected -1 or 0..<7")
    }

    // MARK: Shared real datasets

    private static let sharedDatasets = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../shared/datasets").standardizedFileURL

    private func readShared(_ name: String) throws -> Dataset {
        let dir = Self.sharedDatasets.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("meta.json").path) else {
            throw XCTSkip("shared dataset \(name) not found at \(dir.path)")
        }
        let start = ContinuousClock.now
        let dataset = try DatasetFormat.read(directory: dir)
        print("read \(dataset.summary) in \(ContinuousClock.now - start)")
        return dataset
    }

    /// The README's table: nodes, directed edges, features, classes, train/val/test.
    private func assertCounts(
        _ d: Dataset, _ nodes: Int, _ edges: Int, _ features: Int, _ classes: Int, _ split: [Int], line: UInt = #line
    ) {
        XCTAssertEqual(d.nodeCount, nodes, line: line)
        XCTAssertEqual(d.graph.edgeCount, edges, line: line)
        XCTAssertEqual(d.featureWidth, features, line: line)
        XCTAssertEqual(d.classCount, classes, line: line)
        XCTAssertEqual([d.split.trainCount, d.split.validationCount, d.split.testCount], split, line: line)
        XCTAssertTrue(d.graph.isSymmetric, line: line)
    }

    func testSharedCora() throws {
        let d = try readShared("cora")
        XCTAssertEqual(d.name, "cora")
        assertCounts(d, 2708, 10556, 1433, 7, [140, 500, 1000])
        guard case .sparse(let s) = d.features else { return XCTFail("cora features should be sparse") }
        XCTAssertEqual(s.nonZeroCount, 49216)
    }

    func testSharedCiteSeer() throws {
        let d = try readShared("citeseer")
        assertCounts(d, 3327, 9104, 3703, 6, [120, 500, 1000])
        guard case .singleLabel(let classes, _) = d.labels else { return XCTFail("citeseer is single-label") }
        XCTAssertEqual(classes.filter { $0 == -1 }.count, 15)
    }

    func testSharedAmazonPhoto() throws {
        assertCounts(try readShared("amazon_photo"), 7650, 2 * 119_081, 745, 8, [4590, 1530, 1530])
    }

    func testSharedCoauthorPhysics() throws {
        assertCounts(try readShared("coauthor_physics"), 34493, 2 * 247_962, 8415, 5, [20696, 6899, 6898])
    }

    func testSharedTolokers() throws {
        assertCounts(try readShared("tolokers"), 11758, 2 * 519_000, 10, 2, [5879, 2939, 2940])
    }

    // MARK: Malformed directories: one corruption each

    func testTruncatedFile() throws {
        try assertCorruption(.sizeMismatch, in: "edges.i32") { dir in
            try self.edit(dir, "edges.i32", as: Int32.self) { $0.removeLast() }
        }
    }

    func testExtraBytes() throws {
        try assertCorruption(.sizeMismatch, in: "feat_values.f32") { dir in
            let handle = try FileHandle(forWritingTo: dir.appendingPathComponent("feat_values.f32"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data([0, 0]))
            try handle.close()
        }
    }

    func testMissingFile() throws {
        try assertCorruption(.missingFile, in: "val_mask.u8") { dir in
            try FileManager.default.removeItem(at: dir.appendingPathComponent("val_mask.u8"))
        }
    }

    func testMissingMeta() throws {
        try assertCorruption(.missingFile, in: "meta.json") { dir in
            try FileManager.default.removeItem(at: dir.appendingPathComponent("meta.json"))
        }
    }

    func testBadJSON() throws {
        try assertCorruption(.badJSON, in: "meta.json") { dir in
            try Data("{ \"format\": ".utf8).write(to: dir.appendingPathComponent("meta.json"))
        }
    }

    func testWrongFormat() throws {
        try assertCorruption(.wrongFormat, in: "meta.json") { dir in try self.editMeta(dir) { $0["format"] = "npz" } }
    }

    func testWrongVersion() throws {
        try assertCorruption(.unsupportedVersion, in: "meta.json") { dir in try self.editMeta(dir) { $0["format_version"] = 2 } }
    }

    func testMissingField() throws {
        try assertCorruption(.missingField, in: "meta.json") { dir in try self.editMeta(dir) { $0["num_nodes"] = nil } }
    }

    func testFieldOfWrongType() throws {
        try assertCorruption(.badField, in: "meta.json") { dir in try self.editMeta(dir) { $0["num_classes"] = "3" } }
    }

    func testNegativeCount() throws {
        try assertCorruption(.badField, in: "meta.json") { dir in try self.editMeta(dir) { $0["num_features"] = -1 } }
    }

    func testFileListDisagreesWithLayout() throws {
        try assertCorruption(.fileListMismatch, in: "meta.json") { dir in
            try self.editMeta(dir) { $0["files"] = ($0["files"] as! [String]).filter { $0 != "labels.i32" } }
        }
    }

    func testUnlistedFilePresent() throws {
        try assertCorruption(.fileListMismatch, in: "features.f32") { dir in
            try Data(count: 6 * 4 * 4).write(to: dir.appendingPathComponent("features.f32"))
        }
    }

    func testDeclaredCountDisagrees() throws {
        try assertCorruption(.countMismatch, in: "meta.json") { dir in
            try self.editMeta(dir) { $0["split_sizes"] = ["train": 3, "val": 2, "test": 1] }
        }
    }

    func testEdgeIdOutOfRange() throws {
        try assertCorruption(.idOutOfRange, in: "edges.i32") { dir in
            try self.edit(dir, "edges.i32", as: Int32.self) { $0[1] = 6 }  // (0, 6)
        }
    }

    func testSelfLoop() throws {
        try assertCorruption(.selfLoop, in: "edges.i32") { dir in
            try self.edit(dir, "edges.i32", as: Int32.self) { $0[1] = 0 }  // (0, 0)
        }
    }

    func testDuplicateEdge() throws {
        try assertCorruption(.duplicateEdge, in: "edges.i32") { dir in
            try self.edit(dir, "edges.i32", as: Int32.self) { $0[2] = 0; $0[3] = 1 }  // (0, 1) twice
        }
    }

    func testUnsortedEdges() throws {
        try assertCorruption(.unsortedEdges, in: "edges.i32") { dir in
            try self.edit(dir, "edges.i32", as: Int32.self) { $0.swapAt(0, 2); $0.swapAt(1, 3) }  // (1, 0) before (0, 1)
        }
    }

    func testLabelOutOfRange() throws {
        try assertCorruption(.labelOutOfRange, in: "labels.i32") { dir in
            try self.edit(dir, "labels.i32", as: Int32.self) { $0[2] = 3 }
        }
    }

    func testLabelBelowMinusOne() throws {
        try assertCorruption(.labelOutOfRange, in: "labels.i32") { dir in
            try self.edit(dir, "labels.i32", as: Int32.self) { $0[5] = -2 }
        }
    }

    func testMultiLabelValueTwo() throws {
        try assertCorruption(.labelOutOfRange, in: "labels.u8", of: tinyDataset(labels: multiLabels)) { dir in
            try self.edit(dir, "labels.u8", as: UInt8.self) { $0[1] = 2 }
        }
    }

    func testMasksOverlap() throws {
        try assertCorruption(.masksOverlap, in: "val_mask.u8") { dir in
            try self.edit(dir, "val_mask.u8", as: UInt8.self) { $0[0] = 1 }  // node 0 is also in train
        }
    }

    func testMaskValueTwo() throws {
        try assertCorruption(.maskValue, in: "test_mask.u8") { dir in
            try self.edit(dir, "test_mask.u8", as: UInt8.self) { $0[4] = 2 }
        }
    }

    func testMaskedUnlabelledNode() throws {
        try assertCorruption(.maskedUnlabelled, in: "test_mask.u8") { dir in
            try self.edit(dir, "test_mask.u8", as: UInt8.self) { $0[5] = 1 }  // node 5 is labelled -1
        }
    }

    func testNaNSparseFeature() throws {
        try assertCorruption(.nonFinite, in: "feat_values.f32") { dir in
            try self.edit(dir, "feat_values.f32", as: Float.self) { $0[3] = .nan }
        }
    }

    func testInfiniteDenseFeature() throws {
        try assertCorruption(.nonFinite, in: "features.f32", of: tinyDataset(denseFeatures)) { dir in
            try self.edit(dir, "features.f32", as: Float.self) { $0[7] = -.infinity }
        }
    }

    func testFeatureColumnOutOfRange() throws {
        try assertCorruption(.columnOutOfRange, in: "feat_indices.i32") { dir in
            try self.edit(dir, "feat_indices.i32", as: Int32.self) { $0[2] = 4 }  // width is 4
        }
    }

    func testUnsortedFeatureColumns() throws {
        try assertCorruption(.unsortedColumns, in: "feat_indices.i32") { dir in
            try self.edit(dir, "feat_indices.i32", as: Int32.self) { $0.swapAt(0, 1) }  // node 0: columns 2, 0
        }
    }

    func testIndptrNotStartingAtZero() throws {
        try assertCorruption(.indptrStart, in: "feat_indptr.i64") { dir in
            try self.edit(dir, "feat_indptr.i64", as: Int64.self) { $0[0] = 1 }
        }
    }

    func testIndptrDecreasing() throws {
        try assertCorruption(.indptrDecreasing, in: "feat_indptr.i64") { dir in
            try self.edit(dir, "feat_indptr.i64", as: Int64.self) { $0[1] = $0[2] + 1 }
        }
    }

    func testIndptrNotEndingAtNnz() throws {
        try assertCorruption(.indptrEnd, in: "feat_indptr.i64") { dir in
            try self.edit(dir, "feat_indptr.i64", as: Int64.self) { $0[6] += 1 }
        }
    }

    /// Issue 12, defect 2 for the dataset reader: a middle row pointer far past the stored features is refused by the
    /// pointer checks, which run over the whole array before any row is read.
    func testIndptrMiddleEntryPastTheEnd() throws {
        try assertCorruption(.indptrDecreasing, in: "feat_indptr.i64") { dir in
            try self.edit(dir, "feat_indptr.i64", as: Int64.self) { $0[2] = 1_000_000 }
        }
    }

    // MARK: Declared sizes against the files (issue 12, defect 1)

    /// A declared width of 2^31 − 1 used to be believed; now the features file's size contradicts it before anything
    /// of that size is allocated, and the error says what the width implies and what the file holds.
    func testHugeDeclaredFeatureWidthIsRefusedByTheFileSize() throws {
        let dir = try written(tinyDataset(denseFeatures))
        try editMeta(dir) { $0["num_features"] = 2_147_483_647 }
        XCTAssertThrowsError(try DatasetFormat.read(directory: dir)) { error in
            let e = error as? DatasetError
            XCTAssertEqual(e?.kind, .sizeMismatch, "\(error)")
            XCTAssertEqual(e?.file, "tiny/features.f32")
            XCTAssertEqual(e?.found, "72", "the file holds 6 × 3 floats")
            XCTAssertTrue(e?.expected.contains("6 × 2147483647 × f32") == true, "\(error)")
        }
    }

    func testHugeDeclaredClassCountOfMultiLabelsIsRefusedByTheFileSize() throws {
        let dir = try written(tinyDataset(labels: multiLabels))
        try editMeta(dir) { $0["num_classes"] = 2_147_483_647 }
        assertReadFails(dir, .sizeMismatch, naming: "labels.u8")
    }

    func testTruncatedDenseFeatures() throws {
        try assertCorruption(.sizeMismatch, in: "features.f32", of: tinyDataset(denseFeatures)) { dir in
            try self.edit(dir, "features.f32", as: Float.self) { $0.removeLast(3) }
        }
    }
}
