import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `halo train --json-out`: a destination that cannot be written is refused before any work, on both transports;
/// the report is valid JSON after a run, and while a run goes on, so a killed run leaves the epochs it finished.
final class TrainReportFileCommandTests: CommandTestCase {
    static let small = "synthetic:nodes=400,classes=3,features=8,degree=6,seed=3"
    /// Takes several seconds to generate: a refusal that comes before it is quick.
    static let large = "synthetic:nodes=3000000,classes=4,features=32,degree=16,seed=3"

    private func assertRefusedBeforeWork(_ outcome: Outcome, naming path: String, reason: String,
                                         file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(outcome.timedOut, "\(outcome)", file: file, line: line)
        XCTAssertNotEqual(outcome.status, 0, "\(outcome)", file: file, line: line)
        XCTAssertTrue(outcome.stderr.contains("--json-out \(path): \(reason)"), "\(outcome)", file: file, line: line)
        XCTAssertFalse(outcome.stderr.contains("loaded "), "the dataset was loaded first\n\(outcome)", file: file, line: line)
        XCTAssertFalse(outcome.stderr.contains("NSCocoaErrorDomain"), "\(outcome)", file: file, line: line)
        XCTAssertLessThan(outcome.seconds, 5, "\(outcome)", file: file, line: line)
    }

    func testUnwritableJSONOutIsRefusedBeforeLoading() throws {
        let missing = scratch.appendingPathComponent("missing/report.json").path
        for extra in [[], ["--parts", "2"]] {
            let arguments = ["train", "--dataset", Self.large, "--epochs", "1", "--quiet"] + extra
            assertRefusedBeforeWork(try run(try halo(), arguments + ["--json-out", missing], timeout: 60),
                                    naming: missing, reason: "folder \(scratch.path)/missing does not exist")
            assertRefusedBeforeWork(try run(try halo(), arguments + ["--json-out", scratch.path], timeout: 60),
                                    naming: scratch.path, reason: "it is a directory")
        }
    }

    func testUnwritableJSONOutIsRefusedBeforeLoadingOverMPI() throws {
        guard let mpirun = Self.findOnPath("mpirun") else { throw XCTSkip("mpirun is not on PATH") }
        let missing = scratch.appendingPathComponent("missing/report.json").path
        let outcome = try run(mpirun, launcherArguments(ranks: 2) + [
            try halo().path, "train", "--transport", "mpi", "--dataset", Self.large, "--epochs", "1", "--quiet",
            "--json-out", missing], timeout: 60)
        XCTAssertFalse(outcome.timedOut, "\(outcome)")
        XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue((outcome.stderr + outcome.stdout).contains("--json-out \(missing): folder \(scratch.path)/missing does not exist"),
                      "\(outcome)")
        XCTAssertLessThan(outcome.seconds, 30, "\(outcome)")
    }

    func testReportAfterARunIsCompleteAndKeepsItsFields() throws {
        for extra in [[], ["--parts", "2"]] {
            let json = scratch.appendingPathComponent("report.json")
            let outcome = try run(try halo(), ["train", "--dataset", Self.small, "--epochs", "4", "--threads", "1",
                                               "--quiet", "--json-out", json.path] + extra, timeout: 120)
            XCTAssertEqual(outcome.status, 0, "\(outcome)")
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
            XCTAssertEqual(report["complete"] as? Bool, true)
            XCTAssertNil(report["stop_reason"])
            XCTAssertEqual((report["epochs"] as? [Any])?.count, 4)
            for field in ["config", "environment", "best_val_accuracy", "test_accuracy_at_best_val", "best_val_epoch",
                          "final_test_accuracy", "epoch_time_median_s", "peak_rss_bytes", "peak_rss_bytes_per_rank",
                          "total_training_time_s", "bytes_sent_per_epoch", "halo_bytes_per_epoch",
                          "feature_representation"] {
                XCTAssertNotNil(report[field], "\(field) missing from \(extra)")
            }
            XCTAssertEqual(report["partitioning"] != nil, !extra.isEmpty)
            // The BLAS kernel family, how it was chosen and the library's build: a timing is never read without them.
            let environment = try XCTUnwrap(report["environment"] as? [String: Any])
            for field in ["blas_core", "blas_core_choice", "blas_config"] {
                XCTAssertNotNil(environment[field] as? String, "environment.\(field) missing from \(extra)")
            }
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["report.json"],
                           "no temporary file is left")
        }
    }

    /// A run killed with SIGKILL (no chance to clean up) leaves the report of the epochs written so far.
    func testKilledRunLeavesAValidReportOfTheEpochsDone() throws {
        for extra in [[], ["--parts", "2"]] {
            let json = scratch.appendingPathComponent("killed.json")
            try? FileManager.default.removeItem(at: json)
            let process = Process()
            process.executableURL = try halo()
            process.arguments = ["train", "--dataset", Self.small, "--epochs", "1000000", "--threads", "1", "--quiet",
                                 "--json-out", json.path] + extra
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            var epochsSeen = 0
            let deadline = Date().addingTimeInterval(60)
            while epochsSeen < 3 && Date() < deadline && process.isRunning {
                Thread.sleep(forTimeInterval: 0.05)
                if let data = FileManager.default.contents(atPath: json.path),
                   let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                    epochsSeen = (report["epochs"] as? [Any])?.count ?? 0
                }
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTAssertGreaterThanOrEqual(epochsSeen, 3, "the report grew while the run went on (\(extra))")
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
            XCTAssertEqual(report["complete"] as? Bool, false)
            let epochs = try XCTUnwrap(report["epochs"] as? [[String: Any]])
            XCTAssertEqual(epochs.map { $0["epoch"] as? Int }, Array(0..<epochs.count), "the epochs done, in order")
            XCTAssertNotNil(report["best_val_accuracy"] as? Double)
        }
    }
}
