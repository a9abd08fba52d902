import Foundation
import HaloTensorBoardTesting
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `halo train --tensorboard DIR`: one event file per run that reads back with valid checksums, an epoch's scalars
/// per epoch, written as the run goes (a killed run leaves a readable file), and a folder that cannot take it
/// refused before any work.
final class TrainTensorBoardCommandTests: CommandTestCase {
    static let small = "synthetic:nodes=400,classes=3,features=8,degree=6,seed=3"
    /// Takes several seconds to generate: a refusal that comes before it is quick.
    static let large = "synthetic:nodes=3000000,classes=4,features=32,degree=16,seed=3"

    private func eventFiles(in folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasPrefix("events.out.tfevents.") }
            .map { folder.appendingPathComponent($0).path }
    }

    func testThreeEpochsReadBackWithValidChecksums() throws {
        for extra in [[], ["--parts", "2", "--method", "adaqp", "--assign-cycle", "2"]] {
            let folder = scratch.appendingPathComponent("tb-\(extra.count)")
            let outcome = try run(try halo(), ["train", "--dataset", Self.small, "--epochs", "3", "--threads", "1",
                                               "--quiet", "--tensorboard", folder.path] + extra, timeout: 120)
            XCTAssertEqual(outcome.status, 0, "\(outcome)")
            let files = try eventFiles(in: folder)
            XCTAssertEqual(files.count, 1, "one file per run: \(files)")
            let name = try XCTUnwrap(files.first.map { ($0 as NSString).lastPathComponent })
            XCTAssertNotNil(name.range(of: #"^events\.out\.tfevents\.[0-9]{10}\..+$"#, options: .regularExpression), name)

            let events = try EventFileReader.events(inFile: try XCTUnwrap(files.first))
            XCTAssertEqual(events.first?.fileVersion, "brain.Event:2")
            let epochs = events.dropFirst().filter { $0.scalar("loss/train") != nil }
            XCTAssertEqual(epochs.map(\.step), [1, 2, 3], "\(extra)")
            for event in epochs {
                for tag in ["accuracy/train", "accuracy/validation", "accuracy/test", "time/epoch_s", "time/compute_s",
                            "time/halo_wait_s", "time/allreduce_s", "time/quantize_s", "bytes/sent"] {
                    XCTAssertNotNil(event.scalar(tag), "\(tag) at step \(event.step) (\(extra))")
                }
                XCTAssertGreaterThan(try XCTUnwrap(event.wallTime), 1_600_000_000)
            }
            if extra.isEmpty {
                XCTAssertEqual(epochs.last?.scalar("bytes/sent"), 0, "one rank sends nothing")
            } else {
                XCTAssertGreaterThan(try XCTUnwrap(epochs.last?.scalar("bytes/sent")), 0)
                // AdaQP's re-assignment before epoch 3 (0-based 2): its histogram at the step of that epoch.
                let cycle = try XCTUnwrap(events.first { $0.scalar("adaqp/solve_s") != nil }, "\(events.map(\.scalars))")
                XCTAssertEqual(cycle.step, 3)
                let shares = ["2", "4", "8"].compactMap { cycle.scalar("bit_width/rows_\($0)bit_share") }
                XCTAssertEqual(shares.count, 3)
                XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 1e-5)
            }
        }
    }

    /// Over MPI, rank 0 writes the run's one file, as it writes the JSON report.
    func testOverMPIOneFileForTheRankGroup() throws {
        let mpirun = try mpirun()
        let folder = scratch.appendingPathComponent("mpi")
        let outcome = try run(mpirun, launcherArguments(ranks: 2) + [
            try halo().path, "train", "--transport", "mpi", "--dataset", Self.small, "--epochs", "3", "--threads", "1",
            "--quiet", "--tensorboard", folder.path], timeout: 120)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        let files = try eventFiles(in: folder)
        XCTAssertEqual(files.count, 1, "\(files)")
        let events = try EventFileReader.events(inFile: try XCTUnwrap(files.first))
        XCTAssertEqual(events.dropFirst().map(\.step), [1, 2, 3])
        XCTAssertGreaterThan(try XCTUnwrap(events.last?.scalar("bytes/sent")), 0)
    }

    /// A run killed with SIGKILL leaves an event file whose every record is whole and checksummed.
    func testAKilledRunLeavesAReadableFile() throws {
        let folder = scratch.appendingPathComponent("killed")
        let process = Process()
        process.executableURL = try halo()
        process.arguments = ["train", "--dataset", Self.small, "--epochs", "1000000", "--threads", "1", "--quiet",
                             "--tensorboard", folder.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var epochsSeen = 0
        let deadline = Date().addingTimeInterval(60)
        while epochsSeen < 3 && Date() < deadline && process.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
            if let file = try? eventFiles(in: folder).first, let events = try? EventFileReader.events(inFile: file) {
                epochsSeen = events.count - 1
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertGreaterThanOrEqual(epochsSeen, 3, "the file grew while the run went on")
        let events = try EventFileReader.events(inFile: try XCTUnwrap(try eventFiles(in: folder).first))
        XCTAssertEqual(events.dropFirst().map(\.step), Array(1..<Int64(max(events.count, 1))), "every epoch, in order")
    }

    /// A run refused after its log was opened (here by its memory budget, after loading) leaves no empty event
    /// file for TensorBoard to show as a run.
    func testARunRefusedBeforeItsFirstEpochLeavesNoFile() throws {
        for extra in [[], ["--parts", "2"]] {
            let folder = scratch.appendingPathComponent("refused-\(extra.count)")
            let outcome = try run(try halo(), ["train", "--dataset", Self.small, "--epochs", "1", "--threads", "1", "--quiet",
                                               "--memory-budget", "0.001", "--tensorboard", folder.path] + extra, timeout: 60)
            XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
            XCTAssertTrue(outcome.stderr.contains("the memory budget leaves"), "\(outcome)")
            XCTAssertEqual(try eventFiles(in: folder), [], "\(extra)")
        }
    }

    func testAFolderThatCannotBeUsedIsRefusedBeforeLoading() throws {
        let file = scratch.appendingPathComponent("plain")
        try Data("x".utf8).write(to: file)
        for extra in [[], ["--parts", "2"]] {
            let outcome = try run(try halo(), ["train", "--dataset", Self.large, "--epochs", "1", "--quiet",
                                               "--tensorboard", file.path] + extra, timeout: 60)
            XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
            XCTAssertTrue(outcome.stderr.contains("--tensorboard \(file.path): it exists and is not a folder"), "\(outcome)")
            XCTAssertFalse(outcome.stderr.contains("loaded "), "the dataset was loaded first\n\(outcome)")
            XCTAssertLessThan(outcome.seconds, 5, "\(outcome)")
        }
    }
}
