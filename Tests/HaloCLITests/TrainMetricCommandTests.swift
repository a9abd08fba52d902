import Foundation
import XCTest

/// `halo train` reports the metric a task is judged by (ROC-AUC on the binary Tolokers, accuracy on Cora), names it
/// in the summary and the JSON, and refuses one that cannot judge the task.
final class TrainMetricCommandTests: CommandTestCase {
    private func sharedDataset(_ name: String) throws -> URL {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/datasets/\(name)")
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("no ../shared/datasets/\(name)") }
        return url
    }

    private func metric(_ json: URL) throws -> String? {
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        return report["metric"] as? String
    }

    func testBinaryTaskIsJudgedByROCAUC() throws {
        let json = scratch.appendingPathComponent("tolokers.json")
        let outcome = try run(try halo(), ["train", "--dataset", try sharedDataset("tolokers").path, "--model", "sage",
                                           "--epochs", "3", "--hidden", "32", "--parts", "2", "--quiet", "--json-out", json.path],
                              timeout: 300)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        XCTAssertEqual(try metric(json), "roc-auc")
        XCTAssertTrue(outcome.stdout.contains("best val roc-auc "), "\(outcome)")
    }

    func testMetricOptionAndItsRefusal() throws {
        let cora = try sharedDataset("cora").path
        let json = scratch.appendingPathComponent("cora.json")
        let trained = try run(try halo(), ["train", "--dataset", cora, "--epochs", "2", "--hidden", "16", "--quiet",
                                           "--json-out", json.path], timeout: 120)
        XCTAssertEqual(trained.status, 0, "\(trained)")
        XCTAssertEqual(try metric(json), "accuracy")
        let refused = try run(try halo(), ["train", "--dataset", cora, "--epochs", "2", "--metric", "roc-auc", "--quiet"], timeout: 120)
        XCTAssertNotEqual(refused.status, 0, "\(refused)")
        XCTAssertTrue(refused.stderr.contains("roc-auc needs a binary task; this one has 7 classes"), "\(refused)")
        XCTAssertFalse(refused.stdout.contains("best val"), "\(refused)")
    }
}
