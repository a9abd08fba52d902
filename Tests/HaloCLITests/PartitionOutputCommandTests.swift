import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `halo partition --out`: checked before any computing, locked against a second writer, and replaced in one step,
/// so a killed or concurrent run never costs the previous partition.
final class PartitionOutputCommandTests: CommandTestCase {
    static let small = "synthetic:nodes=400,classes=3,features=8,degree=6,seed=3"
    /// Big enough that loading, partitioning and writing take a second or more.
    static let large = "synthetic:nodes=600000,degree=10,seed=1"

    private func partition(_ dataset: String, _ out: URL, _ extra: [String] = [], parts: Int = 2) throws -> Outcome {
        try run(try halo(), ["partition", "--dataset", dataset, "--parts", String(parts), "--out", out.path, "--threads", "1"] + extra,
                timeout: 60)
    }

    /// The partition in `out` trains (every part loads, with all its checks).
    private func assertTrains(_ out: URL, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let outcome = try run(try halo(), ["train", "--partitions", out.path, "--epochs", "1", "--hidden", "8", "--threads", "1", "--quiet"],
                              timeout: 60)
        XCTAssertEqual(outcome.status, 0, "\(label): \(outcome)", file: file, line: line)
    }

    func testBadOutIsRefusedBeforeComputing() throws {
        let file = scratch.appendingPathComponent("file")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        let foreign = scratch.appendingPathComponent("foreign")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
        try "keep".write(to: foreign.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let halfWritten = scratch.appendingPathComponent("half")
        try FileManager.default.createDirectory(at: halfWritten.appendingPathComponent("part-0"), withIntermediateDirectories: true)
        let cases: [(URL, String)] = [
            (file, "a file"), (file.appendingPathComponent("under"), "a file"), (foreign, "notes.txt"), (halfWritten, "--force"),
        ]
        for (out, reason) in cases {
            // The large dataset would take seconds to load: a refusal in well under that was made before it.
            let outcome = try partition(Self.large, out)
            XCTAssertNotEqual(outcome.status, 0, "\(out.path): \(outcome)")
            XCTAssertLessThan(outcome.seconds, 1.5, "refused before loading: \(outcome)")
            XCTAssertFalse(outcome.stdout.contains("loaded"), "\(outcome)")
            XCTAssertTrue(outcome.stderr.contains(out.path.hasSuffix("under") ? file.path : out.path), "names the path: \(outcome)")
            XCTAssertTrue(outcome.stderr.contains(reason), "says why (\(reason)): \(outcome)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: foreign.appendingPathComponent("notes.txt").path))
        // With --force the half-written directory is replaced.
        let forced = try partition(Self.small, halfWritten, ["--force"])
        XCTAssertEqual(forced.status, 0, "\(forced)")
        try assertTrains(halfWritten, "forced")
    }

    func testConcurrentRunsIntoOneOutput() throws {
        let out = scratch.appendingPathComponent("parts")
        let args = ["partition", "--dataset", Self.large, "--parts", "2", "--out", out.path, "--threads", "1"]
        let firstLog = scratch.appendingPathComponent("first.log")
        _ = FileManager.default.createFile(atPath: firstLog.path, contents: nil)
        let first = Process()
        first.executableURL = try halo()
        first.arguments = args
        first.standardOutput = try FileHandle(forWritingTo: firstLog)
        first.standardError = first.standardOutput
        try first.run()
        // The second starts while the first is loading the dataset, holding the lock (taken before loading).
        Thread.sleep(forTimeInterval: 0.3)
        let second = try run(try halo(), args, timeout: 60)
        first.waitUntilExit()
        let firstOutput = (try? String(contentsOf: firstLog, encoding: .utf8)) ?? ""
        XCTAssertEqual(first.terminationStatus, 0, firstOutput)
        XCTAssertTrue(firstOutput.contains("wrote \(out.path)"), firstOutput)
        XCTAssertNotEqual(second.status, 0, "\(second)")
        XCTAssertLessThan(second.seconds, 1.5, "the second writer fails at once: \(second)")
        XCTAssertTrue(second.stderr.contains("held by another `halo partition` (pid \(first.processIdentifier))"), "\(second)")
        XCTAssertTrue(second.stderr.contains(out.path), "\(second)")
        try assertTrains(out, "the winner's partition")
    }

    func testKilledRunLeavesThePreviousPartition() throws {
        let out = scratch.appendingPathComponent("parts")
        let first = try partition(Self.small, out, parts: 3)
        XCTAssertEqual(first.status, 0, "\(first)")
        var killed = 0
        for delay in [0.5, 1.0, 2.0] {
            let manifest = try Data(contentsOf: out.appendingPathComponent("manifest.json"))
            let process = Process()
            process.executableURL = try halo()
            process.arguments = ["partition", "--dataset", Self.large, "--parts", "2", "--out", out.path, "--threads", "1"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // How far a run gets in a given time depends on the machine: a run killed must have left the previous
            // partition untouched; one that finished first must have left its own, whole (both checked by training).
            if process.terminationReason == .uncaughtSignal {
                killed += 1
                XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("manifest.json")), manifest,
                               "killed after \(delay) s")
            } else {
                XCTAssertEqual(process.terminationStatus, 0, "finished within \(delay) s")
            }
            try assertTrains(out, "partition after a kill at \(delay) s")
        }
        XCTAssertGreaterThan(killed, 0, "no run was still going when killed: make the graph larger")
        // The next run replaces it, removing what the killed ones left beside it.
        let again = try partition(Self.small, out)
        XCTAssertEqual(again.status, 0, "\(again)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix(".parts.tmp-") }
        XCTAssertEqual(leftovers, [])
        try assertTrains(out, "rewritten")
    }
}
