import Foundation
import HaloGraph
import XCTest

/// The Python recipe of docs/importing.md (docs/gnn_benchmark_npz.py) writes an .npz with numpy's own
/// savez_compressed that `halo import npz` converts and `halo train` trains on. Skipped where python3 with numpy
/// is not installed (CI installs neither; the fixtures of the other import tests need no Python).
final class ImportRecipeCommandTests: CommandTestCase {
    func testNumpyWrittenFileFromTheRecipeImportsAndTrains() throws {
        guard let python = Self.findOnPath("python3") else { throw XCTSkip("python3 is not on PATH") }
        let probe = try run(python, ["-c", "import numpy"], timeout: 60)
        guard probe.status == 0 else { throw XCTSkip("numpy is not installed") }
        let recipe = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/gnn_benchmark_npz.py")
        let npz = scratch.appendingPathComponent("recipe.npz"), out = scratch.appendingPathComponent("recipe")
        let written = try run(python, [recipe.path, npz.path], timeout: 120)
        XCTAssertEqual(written.status, 0, "\(written)")

        let imported = try run(try halo(), ["import", "npz", npz.path, "--out", out.path], timeout: 120)
        XCTAssertEqual(imported.status, 0, "\(imported)")
        let dataset = try DatasetFormat.read(directory: out)
        XCTAssertEqual(dataset.nodeCount, 200)
        XCTAssertEqual(dataset.featureWidth, 5)
        XCTAssertEqual(dataset.classCount, 3)
        XCTAssertEqual([dataset.split.trainCount, dataset.split.validationCount, dataset.split.testCount], [50, 50, 50])
        XCTAssertTrue(dataset.graph.isSymmetric)

        let trained = try run(try halo(), ["train", "--dataset", out.path, "--epochs", "2", "--threads", "1", "--quiet"], timeout: 120)
        XCTAssertEqual(trained.status, 0, "\(trained)")
    }
}
