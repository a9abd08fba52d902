import Foundation
import XCTest

/// `halo train` with values no Float run survives: non-finite options are refused up front, and a run whose loss
/// stops being finite ends with a non-zero status naming the epoch, keeping a valid report of the epochs before
/// it (one process, ranks as threads, MPI ranks: none may hang).
final class TrainDivergenceCommandTests: CommandTestCase {
    static let dataset = "synthetic:nodes=400,classes=3,features=8,degree=6,seed=3"
    static let model = ["--model", "gcn", "--hidden", "16", "--epochs", "4", "--threads", "1", "--quiet"]

    func testNonFiniteOptionsAreRefused() throws {
        let cases = [("--lr", "inf"), ("--lr", "1e39"), ("--lr", "nan"), ("--weight-decay", "inf"), ("--dropout", "nan"),
                     ("--input-dropout", "nan"), ("--lambda", "inf"), ("--smoothing", "inf"),
                     ("--drift-threshold", "inf")]
        for (option, value) in cases {
            let outcome = try run(try halo(), ["train", "--dataset", Self.dataset, option, value] + Self.model, timeout: 30)
            XCTAssertNotEqual(outcome.status, 0, "\(option) \(value): \(outcome)")
            XCTAssertTrue(outcome.stderr.contains("\(option) must be a finite number"), "\(option) \(value): \(outcome)")
            XCTAssertFalse(outcome.stdout.contains("best val"), "\(option) \(value) trained: \(outcome)")
        }
    }

    /// A learning rate of 1e30 is finite but overflows after Adam's first update: epoch 2 (of 4) computes a NaN loss.
    private func assertStopsAtEpochTwo(_ outcome: Outcome, json: URL, _ label: String) throws {
        XCTAssertFalse(outcome.timedOut, "\(label): \(outcome)")
        XCTAssertNotEqual(outcome.status, 0, "\(label): \(outcome)")
        XCTAssertLessThan(outcome.seconds, 30, "\(label): \(outcome)")
        XCTAssertTrue(outcome.stderr.contains("training diverged at epoch 2/4: the training loss is"), "\(label): \(outcome)")
        XCTAssertFalse(outcome.stdout.contains("best val"), "\(label): no summary of a diverged run\n\(outcome)")
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any], label)
        XCTAssertEqual(report["complete"] as? Bool, false, label)
        XCTAssertTrue((report["stop_reason"] as? String)?.hasPrefix("training diverged at epoch 2/4") == true, label)
        let epochs = try XCTUnwrap(report["epochs"] as? [[String: Any]], label)
        XCTAssertEqual(epochs.map { $0["epoch"] as? Int }, [0], "\(label): the finite epoch before it is kept")
        XCTAssertNotNil(epochs.first?["loss"] as? Double, label)
    }

    func testDivergingRunStopsNamingTheEpochAndKeepsTheEpochsBefore() throws {
        for extra in [[], ["--parts", "2"], ["--parts", "2", "--method", "pipeqs"]] {
            let json = scratch.appendingPathComponent("diverged.json")
            let outcome = try run(try halo(), ["train", "--dataset", Self.dataset, "--lr", "1e30", "--json-out", json.path]
                                  + Self.model + extra, timeout: 60)
            try assertStopsAtEpochTwo(outcome, json: json, "\(extra)")
            XCTAssertTrue(outcome.stderr.contains("keeps the epoch done before it"), "\(extra): \(outcome)")
        }
    }

    func testDivergingMPIRanksAllStop() throws {
        guard let mpirun = Self.findOnPath("mpirun") else { throw XCTSkip("mpirun is not on PATH") }
        for method in ["vanilla", "pipeqs"] {
            let json = scratch.appendingPathComponent("diverged-mpi.json")
            let outcome = try run(mpirun, launcherArguments(ranks: 2) + [
                try halo().path, "train", "--transport", "mpi", "--dataset", Self.dataset, "--lr", "1e30",
                "--method", method, "--json-out", json.path] + Self.model, timeout: 60)
            try assertStopsAtEpochTwo(outcome, json: json, "MPI \(method)")
        }
    }
}
