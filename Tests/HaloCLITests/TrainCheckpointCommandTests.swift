import Foundation
@testable import HaloTraining
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `halo train --checkpoint` killed with SIGKILL at a random epoch and continued with `--resume`: the same
/// per-epoch losses and final parameters as the run that was never interrupted, on one rank, four ranks in
/// process and four MPI ranks. And what a user gets wrong on resuming is refused before any work.
final class TrainCheckpointCommandTests: CommandTestCase {
    /// About 12 ms per epoch on one rank and 60 ms with four (AVX-512 host, 2 cores): a kill lands mid-run.
    static let dataset = "synthetic:nodes=12000,classes=5,features=32,degree=10,seed=8"
    static let epochs = 40

    private func arguments(_ extra: [String]) -> [String] {
        ["train", "--dataset", Self.dataset, "--epochs", String(Self.epochs), "--hidden", "64", "--threads", "1",
         "--quiet", "--checkpoint-every", "3"] + extra
    }

    private func losses(_ json: URL) throws -> [Double] {
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        XCTAssertEqual(report["complete"] as? Bool, true, json.lastPathComponent)
        let epochs = try XCTUnwrap(report["epochs"] as? [[String: Any]])
        return try epochs.map { try XCTUnwrap($0["loss"] as? Double) }
    }

    /// Every rank's parameters in the checkpoint of `folder`, which must hold every epoch.
    private func finalParameters(_ folder: URL) throws -> [[RankCheckpoint.SavedParameter]] {
        let directory = try CheckpointDirectory(path: folder.path, resuming: true)
        let manifest = try directory.readManifest()
        XCTAssertEqual(manifest.epochsDone, Self.epochs)
        return try (0..<manifest.worldSize).map { try directory.readState(epochsDone: Self.epochs, rank: $0).parameters }
    }

    private func assertKilledRunResumesExactly(_ label: String, launcher: [String], extra: [String]) throws {
        let halo = try halo()
        let command = launcher.isEmpty ? halo : try mpirun()
        let prefix = launcher.isEmpty ? [] : launcher + [halo.path]
        let reference = scratch.appendingPathComponent("\(label)-reference")
        let referenceJSON = scratch.appendingPathComponent("\(label)-reference.json")
        let uninterrupted = try RunningCommand(command, prefix + arguments(extra + [
            "--checkpoint", reference.path, "--json-out", referenceJSON.path]), in: scratch)
        let done = uninterrupted.finish(timeout: 300)
        XCTAssertEqual(done.status, 0, "\(label): reference run\n\(uninterrupted.output)")

        let folder = scratch.appendingPathComponent("\(label)-killed")
        let killedJSON = scratch.appendingPathComponent("\(label)-killed.json")
        let killAfter = Int.random(in: 4...20)
        let running = try RunningCommand(command, prefix + arguments(extra + [
            "--checkpoint", folder.path, "--json-out", killedJSON.path]), in: scratch)
        let manifest = folder.appendingPathComponent("checkpoint.json")
        let reached = running.wait(for: 300) {
            epochsWritten(killedJSON) >= killAfter && FileManager.default.fileExists(atPath: manifest.path)
        }
        let stillRunning = running.process.isRunning
        running.killTree()
        XCTAssertTrue(reached && stillRunning, "\(label): killed mid-run after \(killAfter) epochs\n\(running.output)")
        let saved = try CheckpointDirectory(path: folder.path, resuming: true).readManifest().epochsDone
        XCTAssertLessThan(saved, Self.epochs, "\(label): the run was killed before its end")

        let resumedJSON = scratch.appendingPathComponent("\(label)-resumed.json")
        let resumed = try RunningCommand(command, prefix + arguments(extra + [
            "--resume", folder.path, "--json-out", resumedJSON.path]), in: scratch)
        let outcome = resumed.finish(timeout: 300)
        XCTAssertEqual(outcome.status, 0, "\(label): resumed after \(saved) epochs\n\(resumed.output)")
        let expected = try losses(referenceJSON)
        XCTAssertEqual(expected.count, Self.epochs)
        XCTAssertEqual(try losses(resumedJSON), expected, "\(label): killed after \(killAfter), resumed from \(saved)")
        let (a, b) = (try finalParameters(folder), try finalParameters(reference))
        XCTAssertTrue(a == b, "\(label): final parameters differ (resumed from \(saved))")
    }

    func testKilledSingleRankRunResumesExactly() throws {
        try assertKilledRunResumesExactly("one-rank", launcher: [], extra: [])
    }

    func testKilledInProcessRanksResumeExactly() throws {
        try assertKilledRunResumesExactly("local-ranks", launcher: [], extra: ["--parts", "4"])
    }

    func testKilledMPIRanksResumeExactly() throws {
        _ = try mpirun()
        try assertKilledRunResumesExactly("mpi-ranks", launcher: launcherArguments(ranks: 4),
                                          extra: ["--transport", "mpi"])
    }

    /// SIGINT saves a checkpoint of the epochs done, says so, and the run goes on from it.
    func testSIGINTSavesACheckpointToResumeFrom() throws {
        let folder = scratch.appendingPathComponent("interrupted")
        let json = scratch.appendingPathComponent("interrupted.json")
        let running = try RunningCommand(try halo(), arguments(["--parts", "2", "--epochs", "10000", "--checkpoint-every", "1000",
                                                                "--checkpoint", folder.path, "--json-out", json.path]), in: scratch)
        XCTAssertTrue(running.wait(for: 120) { epochsWritten(json) >= 3 }, running.output)
        kill(running.process.processIdentifier, SIGINT)
        let outcome = running.finish(timeout: 60)
        XCTAssertEqual(outcome.status, 130, running.output)
        let saved = try CheckpointDirectory(path: folder.path, resuming: true).readManifest().epochsDone
        XCTAssertGreaterThanOrEqual(saved, 3)
        XCTAssertTrue(running.errorText.contains("saved the checkpoint of \(saved) epochs in \(folder.path) (continue with --resume)"),
                      running.output)
        let resumed = try RunningCommand(try halo(), arguments(["--parts", "2", "--epochs", String(saved + 2),
                                                                "--resume", folder.path]), in: scratch)
        XCTAssertEqual(resumed.finish(timeout: 120).status, 0, resumed.output)
        XCTAssertEqual(try CheckpointDirectory(path: folder.path, resuming: true).readManifest().epochsDone, saved + 2)
    }

    /// Mistakes on resuming are refused before the data is loaded, naming the folder and what differs.
    func testMismatchedResumeIsRefusedBeforeWork() throws {
        let folder = scratch.appendingPathComponent("saved")
        let first = try run(try halo(), arguments(["--epochs", "3", "--parts", "2", "--checkpoint", folder.path]), timeout: 120)
        XCTAssertEqual(first.status, 0, "\(first)")
        let cases: [([String], String)] = [
            (["--parts", "3", "--resume", folder.path], "it was saved by 2 rank(s); this run has 3"),
            (["--parts", "2", "--model", "sage", "--resume", folder.path], "model: saved gcn, given sage"),
            (["--parts", "2", "--epochs", "3", "--resume", folder.path], "nothing is left to train"),
            (["--parts", "2", "--checkpoint", folder.path], "already holds a checkpoint of 3 epochs"),
            (["--parts", "2", "--resume", scratch.appendingPathComponent("none").path], "there is no such folder"),
            (["--checkpoint", "a", "--resume", "b"], "goes on saving into the folder it resumes from"),
            (["--checkpoint-every", "0", "--checkpoint", "c"], "--checkpoint-every must be at least 1"),
        ]
        for (extra, message) in cases {
            let outcome = try run(try halo(), arguments(extra), timeout: 60)
            XCTAssertNotEqual(outcome.status, 0, "\(extra)")
            XCTAssertTrue(outcome.stderr.contains(message), "\(extra): expected \"\(message)\"\n\(outcome)")
            XCTAssertFalse(outcome.stderr.contains("loaded"), "\(extra): refused before loading\n\(outcome)")
        }
    }
}
