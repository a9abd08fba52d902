import Foundation
import HaloGraph
@testable import HaloPartition
import HaloTensor
import XCTest

/// `PartitionOutput`: a partition directory is replaced in one step, never while another writer holds it, and
/// never by mixing new parts into old ones.
final class PartitionOutputTests: XCTestCase {
    private struct Injected: Error {}

    private struct Fixture {
        var parts: [Part]
        var partitioning: GraphPartitioning
        var quality: PartitionQuality
        var fingerprint: DatasetFingerprint
    }

    /// The hand-made dataset in 3 contiguous parts, or in 2 (so two partitions are told apart by their part count).
    private func fixture(parts count: Int) -> Fixture {
        let data = handMadeDataset()
        let owner: [Int32] = count == 3 ? handMadeOwner : [0, 0, 0, 0, 1, 1, 1]
        let partitioning = GraphPartitioning(partCount: count, owner: owner, method: .contiguous, seed: 0)
        return Fixture(parts: Part.build(dataset: data, partitioning: partitioning), partitioning: partitioning,
                       quality: partitioning.quality(of: data.graph), fingerprint: DatasetFingerprint(data))
    }

    @discardableResult
    private func write(_ f: Fixture, to output: PartitionOutput, afterPart: (Int) throws -> Void = { _ in }) throws -> PartitionManifest {
        try output.write(parts: f.parts, partitioning: f.partitioning, quality: f.quality, fingerprint: f.fingerprint, afterPart: afterPart)
    }

    /// Every part of the partition in `dir` loads, and there are `parts` of them.
    private func assertValidPartition(_ dir: URL, parts: Int, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try PartitionStore.readManifest(directory: dir).parts, parts, label, file: file, line: line)
        for r in 0..<parts {
            XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: r), "\(label): part \(r)", file: file, line: line)
        }
    }

    private func siblings(of dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.deletingLastPathComponent().path)
            .filter { $0.hasPrefix(".\(dir.lastPathComponent).") && !$0.hasSuffix(".lock") }
    }

    func testFailureMidwayLeavesThePreviousPartitionAtEveryStep() throws {
        let dir = try temporaryDirectory(self).appendingPathComponent("parts")
        try PartitionStore.write(parts: fixture(parts: 3).parts, partitioning: fixture(parts: 3).partitioning,
                                 quality: fixture(parts: 3).quality, fingerprint: fixture(parts: 3).fingerprint, to: dir)
        let replacement = fixture(parts: 2)
        for failing in 0..<2 {
            let output = try PartitionOutput(dir)
            XCTAssertEqual(output.existing, .partition)
            XCTAssertThrowsError(try write(replacement, to: output) { rank in
                // Observed from outside while the writer is midway: the old partition is still in place.
                self.assertValidPartition(dir, parts: 3, "while part \(rank) of the new one is written")
                XCTAssertTrue(FileManager.default.fileExists(atPath: output.staging.appendingPathComponent("part-\(rank)").path))
                if rank == failing { throw Injected() }
            }) { XCTAssertTrue($0 is Injected, "\($0)") }
            output.release()
            assertValidPartition(dir, parts: 3, "after a failure at part \(failing)")
            XCTAssertEqual(try siblings(of: dir), [], "the staging folder is removed after a failure")
        }
        // Completed, the new partition replaces the old one whole.
        let output = try PartitionOutput(dir)
        try write(replacement, to: output)
        output.release()
        assertValidPartition(dir, parts: 2, "after the replacement")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("part-2").path), "no old part is mixed in")
        XCTAssertEqual(try siblings(of: dir), [])
    }

    func testKilledWriterLeavesAStagingFolderTheNextWriterRemoves() throws {
        let dir = try temporaryDirectory(self).appendingPathComponent("parts")
        let old = fixture(parts: 3)
        try PartitionStore.write(parts: old.parts, partitioning: old.partitioning, quality: old.quality, fingerprint: old.fingerprint, to: dir)
        // What a run killed while writing leaves: a half-filled staging folder of another (dead) pid.
        let stale = dir.deletingLastPathComponent().appendingPathComponent(".parts.tmp-999999999")
        try FileManager.default.createDirectory(at: stale.appendingPathComponent("part-0"), withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: stale.appendingPathComponent("part-0/inner_ids.i32"))
        assertValidPartition(dir, parts: 3, "the killed run did not touch the output")

        // The staging folder of another output, "parts.tmp-1", only starts like ours: not ours to delete.
        let other = dir.deletingLastPathComponent().appendingPathComponent(".parts.tmp-1.tmp-999999999")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)

        let output = try PartitionOutput(dir)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path), "the stale staging folder is removed under the lock")
        XCTAssertTrue(FileManager.default.fileExists(atPath: other.path), "another output's staging folder is kept")
        try write(fixture(parts: 2), to: output)
        output.release()
        assertValidPartition(dir, parts: 2, "rewritten")
    }

    func testSecondWriterIsRefusedWhileTheLockIsHeld() throws {
        let dir = try temporaryDirectory(self).appendingPathComponent("parts")
        let first = try PartitionOutput(dir)
        XCTAssertThrowsError(try PartitionOutput(dir)) { error in
            let e = error as? PartitionError
            XCTAssertEqual(e?.kind, .outputLocked, "\(error)")
            XCTAssertTrue("\(error)".contains(dir.path), "names the output: \(error)")
            XCTAssertTrue("\(error)".contains("pid \(ProcessInfo.processInfo.processIdentifier)"), "names the holder: \(error)")
        }
        // Also with force: the lock is about concurrent writers, not about what the directory holds.
        XCTAssertThrowsError(try PartitionOutput(dir, force: true)) { XCTAssertEqual(($0 as? PartitionError)?.kind, .outputLocked) }
        try write(fixture(parts: 3), to: first)
        first.release()
        let second = try PartitionOutput(dir)
        XCTAssertEqual(second.existing, .partition)
        second.release()
    }

    func testHalfWrittenDirectoryIsReplacedOnlyWithForce() throws {
        let dir = try temporaryDirectory(self).appendingPathComponent("parts")
        // What an older Halo left when killed: part folders, no manifest.
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("part-0"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("part-1"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try PartitionOutput(dir)) { error in
            XCTAssertEqual((error as? PartitionError)?.kind, .halfWrittenOutput, "\(error)")
            XCTAssertTrue("\(error)".contains(dir.path) && "\(error)".contains("--force"), "\(error)")
        }
        let output = try PartitionOutput(dir, force: true)
        XCTAssertEqual(output.existing, .halfWrittenPartition)
        try write(fixture(parts: 3), to: output)
        output.release()
        assertValidPartition(dir, parts: 3, "replaced with force")
    }

    func testForeignContentIsRefusedEvenWithForce() throws {
        let dir = try temporaryDirectory(self).appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("part-0"), withIntermediateDirectories: true)
        try "keep me".write(to: dir.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        for force in [false, true] {
            XCTAssertThrowsError(try PartitionOutput(dir, force: force)) { error in
                XCTAssertEqual((error as? PartitionError)?.kind, .notAPartitionDirectory, "\(error)")
                XCTAssertTrue("\(error)".contains(dir.path) && "\(error)".contains("notes.txt"), "\(error)")
            }
        }
        let file = dir.appendingPathComponent("notes.txt")
        XCTAssertThrowsError(try PartitionOutput(file, force: true)) { XCTAssertTrue("\($0)".contains("a file"), "\($0)") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: file.path))
    }

    func testSetAsideFolderOfARunKilledBetweenItsRenamesIsKeptUnlessForced() throws {
        let dir = try temporaryDirectory(self).appendingPathComponent("parts")
        let aside = dir.deletingLastPathComponent().appendingPathComponent(".parts.old-999999999")
        let old = fixture(parts: 3)
        try PartitionStore.write(parts: old.parts, partitioning: old.partitioning, quality: old.quality, fingerprint: old.fingerprint, to: aside)
        XCTAssertThrowsError(try PartitionOutput(dir)) { error in
            XCTAssertEqual((error as? PartitionError)?.kind, .halfWrittenOutput, "\(error)")
            XCTAssertTrue("\(error)".contains(aside.path), "names where the previous partition is: \(error)")
        }
        assertValidPartition(aside, parts: 3, "kept")
        let output = try PartitionOutput(dir, force: true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: aside.path))
        output.release()
    }
}
