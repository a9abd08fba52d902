import Foundation
import XCTest

/// Many ranks as threads of one process: `--parts 256` on Cora (about 10 nodes a part) trains in seconds. It did
/// not finish an epoch in two minutes while every rank summed all 256 ranks' gradients itself (P² work per
/// all-reduce; 128 parts took 29 s for 2 epochs, now 2 s).
final class ManyPartsCommandTests: CommandTestCase {
    func testCoraOn256LocalRanksTrains() throws {
        let cora = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/datasets/cora")
        guard FileManager.default.fileExists(atPath: cora.path) else { throw XCTSkip("no ../shared/datasets/cora") }
        let outcome = try run(try halo(), ["train", "--dataset", cora.path, "--parts", "256", "--epochs", "1", "--quiet"], timeout: 60)
        XCTAssertFalse(outcome.timedOut, "\(outcome)")
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue(outcome.stdout.contains("best val"), "\(outcome)")
        XCTAssertLessThan(outcome.seconds, 30, "\(outcome)")
    }
}
