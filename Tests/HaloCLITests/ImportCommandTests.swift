import Foundation
import HaloGraph
import HaloImportTesting
import XCTest

/// `halo import`: an OGB tree (CSV and binary layouts) and an .npz written from a dataset convert back to it, and train exactly as the same
/// dataset written directly; a bad --out or a malformed input is refused with the file named.
final class ImportCommandTests: CommandTestCase {
    private let spec = "synthetic:nodes=600,classes=4,features=12,degree=6,seed=11"

    /// Epoch losses and accuracies of a 2-epoch run on `dataset`.
    private func train(_ dataset: URL) throws -> [[String: Double]] {
        let json = scratch.appendingPathComponent("report-\(UUID().uuidString).json")
        let outcome = try run(try halo(), ["train", "--dataset", dataset.path, "--epochs", "2", "--threads", "1", "--seed", "5",
                                           "--quiet", "--json-out", json.path], timeout: 120)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        let epochs = try XCTUnwrap(report["epochs"] as? [[String: Any]])
        XCTAssertEqual(epochs.count, 2)
        return epochs.map { epoch in
            epoch.compactMapValues { $0 as? Double }.filter { ["loss", "train_acc", "val_acc", "test_acc"].contains($0.key) }
        }
    }

    func testImportedOGBTreesAndNPZTrainLikeTheDatasetWrittenDirectly() throws {
        let halo = try halo()
        let original = try SyntheticGraphSpec(parsing: spec).generate()
        let direct = scratch.appendingPathComponent("direct")
        try DatasetFormat.write(original, to: direct)

        let tree = scratch.appendingPathComponent("ogbn_synthetic")
        try OGBFixture.write(original, to: tree, gzip: true)
        let fromOGB = scratch.appendingPathComponent("out/from-ogb")
        let ogb = try run(halo, ["import", "ogb", tree.path, "--out", fromOGB.path], timeout: 120)
        XCTAssertEqual(ogb.status, 0, "\(ogb)")
        XCTAssertTrue(ogb.stdout.contains("made undirected"), "\(ogb)")
        XCTAssertTrue(ogb.stdout.contains("wrote \(fromOGB.path): ogbn_synthetic: 600 nodes"), "\(ogb)")

        // The same data in OGB's binary layout (raw/data.npz, raw/node-label.npz, as ogbn-papers100M ships).
        let binaryTree = scratch.appendingPathComponent("ogbn_binary")
        try OGBBinaryFixture.write(original, to: binaryTree)
        let fromBinary = scratch.appendingPathComponent("from-binary")
        let binary = try run(halo, ["import", "ogb", binaryTree.path, "--out", fromBinary.path], timeout: 120)
        XCTAssertEqual(binary.status, 0, "\(binary)")
        XCTAssertTrue(binary.stdout.contains("wrote \(fromBinary.path): ogbn_binary: 600 nodes"), "\(binary)")

        let npz = scratch.appendingPathComponent("synthetic.npz")
        try NPZFixture.archive(NPZFixture.members(of: original, masks: true), method: .deflated).write(to: npz)
        let fromNPZ = scratch.appendingPathComponent("from-npz")
        try FileManager.default.createDirectory(at: fromNPZ, withIntermediateDirectories: true)  // empty: accepted
        let converted = try run(halo, ["import", "npz", npz.path, "--out", fromNPZ.path], timeout: 120)
        XCTAssertEqual(converted.status, 0, "\(converted)")

        // Same graph, features, labels and split: the reader sees the dataset that was written directly.
        for imported in [fromOGB, fromBinary, fromNPZ] {
            let read = try DatasetFormat.read(directory: imported)
            XCTAssertEqual(read.graph, original.graph)
            XCTAssertEqual(read.features, original.features)
            XCTAssertEqual(read.labels, original.labels)
            XCTAssertEqual(read.split, original.split)
        }
        let reference = try train(direct)
        XCTAssertEqual(try train(fromOGB), reference)
        XCTAssertEqual(try train(fromNPZ), reference)
        XCTAssertEqual(try train(fromBinary), reference)
        // No staging folder is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fromOGB.deletingLastPathComponent().path), ["from-ogb"])
    }

    /// A killed import's staging folder is deleted by the next import to the same destination; the staging folder
    /// of a process that is alive is left alone.
    func testTheStagingFolderOfADeadImportIsRemoved() throws {
        let original = try SyntheticGraphSpec(parsing: spec).generate()
        let npz = scratch.appendingPathComponent("data.npz")
        try NPZFixture.archive(NPZFixture.members(of: original, masks: true), method: .stored).write(to: npz)
        // A pid that has exited: a short child's.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let host = ProcessInfo.processInfo.hostName
        let dead = scratch.appendingPathComponent(".out.tmp-\(host)-\(child.processIdentifier)")
        let live = scratch.appendingPathComponent(".out.tmp-\(host)-\(ProcessInfo.processInfo.processIdentifier)")
        // Another machine's import on a shared file system: its pid means nothing here.
        let elsewhere = scratch.appendingPathComponent(".out.tmp-another-host-\(child.processIdentifier)")
        for folder in [dead, live, elsewhere] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(count: 1024).write(to: folder.appendingPathComponent("edges.bin"))
        }
        let out = scratch.appendingPathComponent("out")
        let outcome = try run(try halo(), ["import", "npz", npz.path, "--out", out.path], timeout: 120)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue(outcome.stdout.contains("removed \(dead.lastPathComponent), the staging folder of an import that did not finish"),
                      "\(outcome)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead.path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: live.path), "a live process's staging folder is kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: elsewhere.path), "another host's staging folder is kept")
        XCTAssertEqual(try DatasetFormat.read(directory: out).graph, original.graph)
    }

    func testNPZWithoutMasksGetsASeededSplitAndTrains() throws {
        let original = try SyntheticGraphSpec(parsing: spec).generate()
        let npz = scratch.appendingPathComponent("nomasks.npz")
        try NPZFixture.archive(NPZFixture.members(of: original, masks: false), method: .stored).write(to: npz)
        var splits: [[Bool]] = []
        for name in ["a", "b"] {
            let out = scratch.appendingPathComponent(name)
            let outcome = try run(try halo(), ["import", "npz", npz.path, "--out", out.path, "--split", "0.5,0.25,0.25", "--seed", "3"], timeout: 120)
            XCTAssertEqual(outcome.status, 0, "\(outcome)")
            XCTAssertTrue(outcome.stdout.contains("no masks in the file: split stratified by class"), "\(outcome)")
            let split = try DatasetFormat.read(directory: out).split
            // Half of each class, rounded per class: within a node per class of 300.
            XCTAssertEqual(split.trainCount, 300, accuracy: 4)
            XCTAssertEqual(split.trainCount + split.validationCount + split.testCount, 600)
            splits.append(split.train)
        }
        XCTAssertEqual(splits[0], splits[1])
        XCTAssertEqual(try train(scratch.appendingPathComponent("a")).count, 2)
    }

    func testBadOutputAndMalformedInputAreRefusedWithTheFileNamed() throws {
        let halo = try halo()
        let original = try SyntheticGraphSpec(parsing: spec).generate()
        let tree = scratch.appendingPathComponent("tree")
        try OGBFixture.write(original, to: tree, gzip: false)

        let occupied = scratch.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: occupied, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: occupied.appendingPathComponent("notes.txt"))
        let refused = try run(halo, ["import", "ogb", tree.path, "--out", occupied.path], timeout: 60)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("--out \(occupied.path): holds 1 entry"), "\(refused)")
        XCTAssertEqual(try String(contentsOf: occupied.appendingPathComponent("notes.txt"), encoding: .utf8), "keep")

        let badSplit = try run(halo, ["import", "ogb", tree.path, "--out", scratch.appendingPathComponent("x").path, "--split", "0.9,0.2,0.2"], timeout: 60)
        XCTAssertNotEqual(badSplit.status, 0)
        XCTAssertTrue(badSplit.stderr.contains("--split 0.9,0.2,0.2"), "\(badSplit)")

        try Data("0,1\n1,zz\n".utf8).write(to: tree.appendingPathComponent("raw/edge.csv"))
        let out = scratch.appendingPathComponent("never")
        let malformed = try run(halo, ["import", "ogb", tree.path, "--out", out.path], timeout: 60)
        XCTAssertNotEqual(malformed.status, 0)
        XCTAssertTrue(malformed.stderr.contains("tree/raw/edge.csv: line 2, field 2 is \"zz\", expected an integer"), "\(malformed)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix(".") }, [])

        let notZip = scratch.appendingPathComponent("broken.npz")
        try Data("definitely not a zip archive".utf8).write(to: notZip)
        let badNPZ = try run(halo, ["import", "npz", notZip.path, "--out", out.path], timeout: 60)
        XCTAssertNotEqual(badNPZ.status, 0)
        XCTAssertTrue(badNPZ.stderr.contains("broken.npz: end of central directory is missing"), "\(badNPZ)")
    }
}
