import Foundation
import XCTest

/// Issue 12, defect 9: byte flips in a dataset's files that stayed in range were accepted silently. `halo generate`
/// records an XXH64 per file in meta.json and `halo train` refuses a file that no longer matches, before training.
final class DatasetChecksumCommandTests: CommandTestCase {
    static let spec = "synthetic:nodes=300,classes=3,features=8,degree=6,seed=3"
    static let common = ["--epochs", "1", "--hidden", "8", "--threads", "1", "--quiet"]

    private func generated(_ name: String) throws -> URL {
        let dir = scratch.appendingPathComponent(name)
        let outcome = try run(try halo(), ["generate", "--dataset", Self.spec, "--out", dir.path], timeout: 30)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        return dir
    }

    private func meta(_ dir: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("meta.json"))) as? [String: Any])
    }

    /// Flips the low bit of a byte in the middle of the first feature file meta.json lists; returns its name.
    private func flipAFeatureByte(_ dir: URL) throws -> String {
        let files = try XCTUnwrap(try meta(dir)["files"] as? [String])
        let file = try XCTUnwrap(files.first { $0.hasPrefix("feat") }, "\(files)")
        let url = dir.appendingPathComponent(file)
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[bytes.count / 2] ^= 1
        try Data(bytes).write(to: url)
        return file
    }

    func testGeneratedDatasetTrainsAndAFlippedByteIsRefusedBeforeTraining() throws {
        let dir = try generated("synth")
        XCTAssertNotNil(try meta(dir)["xxh64"] as? [String: String], "generate must record checksums")
        let trained = try run(try halo(), ["train", "--dataset", dir.path] + Self.common, timeout: 60)
        XCTAssertEqual(trained.status, 0, "\(trained)")
        XCTAssertTrue(trained.stdout.contains("best val"), "\(trained)")
        XCTAssertFalse(trained.stderr.contains("checksum"), "\(trained)")

        let file = try flipAFeatureByte(dir)
        for parts in [[], ["--parts", "2"]] {
            let refused = try run(try halo(), ["train", "--dataset", dir.path] + parts + Self.common, timeout: 30)
            XCTAssertNotEqual(refused.status, 0, "\(parts): \(refused)")
            XCTAssertLessThan(refused.seconds, 10, "\(parts): \(refused)")
            XCTAssertTrue(refused.stderr.contains("synth/\(file): checksum (xxh64) is "), "\(parts): \(refused)")
            XCTAssertTrue(refused.stderr.contains("as meta.json records"), "\(parts): \(refused)")
            XCTAssertFalse(refused.stdout.contains("best val"), "\(parts): \(refused)")
        }
    }

    func testFlippedByteIsRefusedUnderMPI() throws {
        let mpirun = try mpirun()
        let dir = try generated("synth")
        let file = try flipAFeatureByte(dir)
        let refused = try run(mpirun, launcherArguments(ranks: 2) + [try halo().path, "train", "--dataset", dir.path, "--transport", "mpi"] + Self.common,
                              timeout: 60)
        XCTAssertNotEqual(refused.status, 0, "\(refused)")
        XCTAssertTrue(refused.stderr.contains("synth/\(file): checksum (xxh64) is "), "\(refused)")
        XCTAssertFalse(refused.stdout.contains("best val"), "\(refused)")
    }

    /// A directory written before checksums trains, saying once (not once per rank) that it is unverified.
    func testDirectoryWithoutChecksumsTrainsWithOneNote() throws {
        let dir = try generated("old")
        var json = try meta(dir)
        json["xxh64"] = nil
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("meta.json"))
        let note = "records no `xxh64` checksums"

        let local = try run(try halo(), ["train", "--dataset", dir.path, "--parts", "2", "--epochs", "1", "--hidden", "8", "--threads", "1"], timeout: 60)
        XCTAssertEqual(local.status, 0, "\(local)")
        XCTAssertEqual((local.stdout + local.stderr).components(separatedBy: note).count - 1, 1, "\(local)")

        guard let mpirun = try? mpirun() else { return }
        let distributed = try run(mpirun, launcherArguments(ranks: 2) + [try halo().path, "train", "--dataset", dir.path, "--transport", "mpi",
                                                                         "--epochs", "1", "--hidden", "8", "--threads", "1"], timeout: 60)
        XCTAssertEqual(distributed.status, 0, "\(distributed)")
        XCTAssertEqual((distributed.stdout + distributed.stderr).components(separatedBy: note).count - 1, 1, "\(distributed)")
    }
}
