import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `halo train` interrupted by SIGINT or SIGTERM: the run stops after the epoch it is in, on every rank, writes the
/// report of the epochs done with `"complete": false` and the signal as `stop_reason`, says what it saved and
/// exits 130 or 143; a second Ctrl-C ends it at once.
final class TrainSignalCommandTests: CommandTestCase {
    static let small = "synthetic:nodes=400,classes=3,features=8,degree=6,seed=3"
    /// With `slowModel`, epochs of about 3 s here: a second signal lands well inside the epoch of the first.
    static let slow = "synthetic:nodes=40000,classes=4,features=64,degree=16,seed=3"
    static let slowModel = ["--hidden", "512", "--layers", "3"]

    /// Starts a long run, waits until its report holds `after` epochs, sends `signal` to the process started
    /// (halo, or mpirun) and checks the stopped run's status, message and report.
    private func assertStopsCleanly(on signalNumber: Int32, name: String, status: Int32, launcher: URL? = nil,
                                    _ extra: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let json = scratch.appendingPathComponent("stopped-\(name)-\(UUID().uuidString).json")
        let arguments = ["train", "--dataset", Self.small, "--epochs", "10000", "--eval-every", "1", "--threads", "1",
                         "--hidden", "16", "--quiet", "--json-out", json.path] + extra
        let running = launcher == nil
            ? try RunningCommand(try halo(), arguments, in: scratch)
            : try RunningCommand(launcher!, launcherArguments(ranks: 2) + [try halo().path] + arguments, in: scratch)
        let label = "\(name) \(launcher == nil ? "" : "mpirun ")\(extra)"
        guard running.wait(for: 120, until: { epochsWritten(json) >= 3 }) else {
            kill(running.process.processIdentifier, SIGKILL)
            running.process.waitUntilExit()
            return XCTFail("\(label): no progress\n\(running.output)", file: file, line: line)
        }
        kill(running.process.processIdentifier, signalNumber)
        let outcome = running.finish(timeout: 30)
        XCTAssertFalse(outcome.timedOut, "\(label): did not stop\n\(running.output)", file: file, line: line)
        XCTAssertEqual(outcome.status, status, "\(label)\n\(running.output)", file: file, line: line)
        XCTAssertLessThan(outcome.seconds, 10, "\(label): stops after the epoch it is in\n\(running.output)", file: file, line: line)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any],
                                   label, file: file, line: line)
        XCTAssertEqual(report["complete"] as? Bool, false, label, file: file, line: line)
        let epochs = try XCTUnwrap(report["epochs"] as? [[String: Any]], label, file: file, line: line)
        XCTAssertGreaterThanOrEqual(epochs.count, 3, label, file: file, line: line)
        XCTAssertEqual(epochs.map { $0["epoch"] as? Int }, Array(0..<epochs.count), label, file: file, line: line)
        let reason = "interrupted by \(name) after epoch \(epochs.count)/10000"
        XCTAssertEqual(report["stop_reason"] as? String, reason, "\(label)\n\(running.output)", file: file, line: line)
        XCTAssertNotNil(epochs.last?["val_acc"] as? Double, "\(label): the last epoch is evaluated", file: file, line: line)
        let text = running.errorText
        XCTAssertTrue(text.contains("stopping after this epoch; Ctrl-C again to quit now"), "\(label)\n\(running.output)", file: file, line: line)
        XCTAssertTrue(text.contains("halo: \(reason): wrote \(json.path) with \(epochs.count) epochs and \"complete\": false"),
                      "\(label)\n\(running.output)", file: file, line: line)
    }

    func testSIGINTStopsAfterTheEpochAndKeepsTheReport() throws {
        for extra in [[], ["--parts", "2"], ["--parts", "2", "--method", "pipeqs"]] {
            try assertStopsCleanly(on: SIGINT, name: "SIGINT", status: 130, extra)
        }
    }

    func testSIGTERMStopsAfterTheEpochAndKeepsTheReport() throws {
        for extra in [[], ["--parts", "2", "--method", "pipeqs"]] {
            try assertStopsCleanly(on: SIGTERM, name: "SIGTERM", status: 143, extra)
        }
    }

    /// Open MPI 4.1's mpirun does not forward SIGINT or SIGTERM as such: it sends SIGTERM to every rank, then
    /// SIGKILL after `odls_base_sigkill_timeout` (1 s by default), and exits 1 itself about two timeouts later. So
    /// the ranks see SIGTERM whichever was sent, and what is reliable is the report, not mpirun's exit status.
    func testSignalToMPIRunStopsEveryRankAndKeepsTheReport() throws {
        let mpirun = try mpirun()
        for (signalNumber, extra) in [(SIGINT, ["--method", "vanilla"]), (SIGTERM, ["--method", "pipeqs"])] {
            let json = scratch.appendingPathComponent("mpi-\(signalNumber).json")
            let running = try RunningCommand(mpirun, launcherArguments(ranks: 2) + [
                try halo().path, "train", "--transport", "mpi", "--dataset", Self.small, "--epochs", "10000",
                "--threads", "1", "--hidden", "16", "--quiet", "--json-out", json.path] + extra, in: scratch)
            guard running.wait(for: 120, until: { epochsWritten(json) >= 3 }) else {
                kill(running.process.processIdentifier, SIGKILL)
                running.process.waitUntilExit()
                return XCTFail("\(extra): no progress\n\(running.output)")
            }
            kill(running.process.processIdentifier, signalNumber)
            let outcome = running.finish(timeout: 30)
            XCTAssertFalse(outcome.timedOut, "\(extra): did not stop\n\(running.output)")
            XCTAssertNotEqual(outcome.status, 0, "\(extra)\n\(running.output)")
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
            XCTAssertEqual(report["complete"] as? Bool, false, "\(extra)")
            let epochs = try XCTUnwrap(report["epochs"] as? [[String: Any]])
            XCTAssertGreaterThanOrEqual(epochs.count, 3)
            let reason = try XCTUnwrap(report["stop_reason"] as? String, "\(extra): stopped cleanly\n\(running.output)")
            XCTAssertTrue(["SIGINT", "SIGTERM"].contains { reason == "interrupted by \($0) after epoch \(epochs.count)/10000" },
                          "\(extra): \(reason)")
            XCTAssertTrue(running.errorText.contains("halo: \(reason): wrote \(json.path) with \(epochs.count) epochs"),
                          "\(extra)\n\(running.output)")
            XCTAssertFalse(running.errorText.contains("MPI_ABORT"), "a stop is not a failure\n\(running.output)")
        }
    }

    /// The first SIGINT comes while the first epoch runs (after the log line that precedes training), the second as
    /// soon as the first is acknowledged: the process must end long before that epoch could finish.
    func testSecondSIGINTQuitsAtOnce() throws {
        let json = scratch.appendingPathComponent("quit.json")
        let running = try RunningCommand(try halo(), ["train", "--dataset", Self.slow, "--epochs", "10000", "--threads", "1",
                                               "--quiet", "--json-out", json.path] + Self.slowModel, in: scratch)
        guard running.wait(for: 120, until: { running.errorText.contains("rows stored in locality order") }) else {
            kill(running.process.processIdentifier, SIGKILL)
            running.process.waitUntilExit()
            return XCTFail("training did not start\n\(running.output)")
        }
        kill(running.process.processIdentifier, SIGINT)
        XCTAssertTrue(running.wait(for: 10, interval: 0.002) { running.errorText.contains("stopping after this epoch") },
                      running.output)
        let sent = Date()
        kill(running.process.processIdentifier, SIGINT)
        let outcome = running.finish(timeout: 30)
        let seconds = Date().timeIntervalSince(sent)
        XCTAssertEqual(outcome.status, 130, running.output)
        XCTAssertFalse(running.errorText.contains("halo: interrupted by SIGINT"), "nothing more is saved\n\(running.output)")
        XCTAssertLessThan(seconds, 0.5, "quits without finishing the epoch\n\(running.output)")
        XCTAssertEqual(epochsWritten(json), 0, "the first epoch was not finished")
    }
}
