import Foundation
import HaloGraph
import XCTest

/// Dataset directories the directory fuzzer (`DirectoryFuzzTests`) found crashing, hanging or accepted before the
/// reader was fixed, rebuilt by hand on a small synthetic dataset so they do not depend on the fuzzer's corpus (a
/// case number replays with the fuzzer as of the commit that added the test).
final class FuzzFoundDatasetDefectTests: XCTestCase {
    private func written() throws -> URL {
        let dataset = try SyntheticGraphSpec(parsing: "synthetic:nodes=50,classes=3,features=4,degree=4,seed=1").generate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("halo-fuzz-found-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d")
        try DatasetFormat.write(dataset, to: data)
        return data
    }

    private func editMeta(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("meta.json")
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url)
    }

    /// Seed 2, case 825 (the synthetic dataset; the watchdog reported a hang): meta.json claiming 2^31−1 nodes beside
    /// files of 50. The edges (whose count is right) were checked and the graph built, allocating 2^31 row pointers
    /// twice (32 GB), before any file sized by the node count was read.
    func testNodeCountOfTwoToTheThirtyOneMinusOneBesideSmallFiles() throws {
        let dir = try written()
        try editMeta(dir) { $0["num_nodes"] = Int(Int32.max) }
        XCTAssertThrowsError(try DatasetFormat.read(directory: dir)) { error in
            guard let e = error as? DatasetError else { return XCTFail("expected a DatasetError, got \(error)") }
            XCTAssertEqual(e.kind, .sizeMismatch, "\(e)")
            XCTAssertEqual(e.file, "d/labels.i32", "\(e)")
        }
    }

    /// Found in review of the fuzzer's zero-count edits: a multi-label dataset whose meta.json says 0 classes, with
    /// labels.u8 emptied to match (`num_nodes × 0` bytes). Every size agreed, and building the dataset trapped:
    /// targets of 0 classes cover no node.
    func testMultiLabelDatasetWithZeroClasses() throws {
        let dir = try written()
        let dataset = try DatasetFormat.read(directory: dir)
        guard case .singleLabel(let classes, let count) = dataset.labels else { return XCTFail("expected single-label data") }
        var multi = dataset
        multi.labels = .multiLabel(targets: classes.flatMap { c in (0..<count).map { UInt8(Int($0) == Int(c) ? 1 : 0) } }, classCount: count)
        try DatasetFormat.write(multi, to: dir)
        try Data().write(to: dir.appendingPathComponent("labels.u8"))
        try editMeta(dir) { meta in
            meta["num_classes"] = 0
            var sums = meta["xxh64"] as! [String: Any]
            sums["labels.u8"] = XXHash64.hex(XXHash64.hash([UInt8]()))
            meta["xxh64"] = sums
        }
        XCTAssertThrowsError(try DatasetFormat.read(directory: dir)) { error in
            guard let e = error as? DatasetError else { return XCTFail("expected a DatasetError, got \(error)") }
            XCTAssertEqual(e.kind, .badField, "\(e)")
            XCTAssertEqual(e.file, "d/meta.json", "\(e)")
            XCTAssertEqual(e.field, "`num_classes`", "\(e)")
        }
    }
}
