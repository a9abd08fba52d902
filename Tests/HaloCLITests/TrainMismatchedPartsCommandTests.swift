import Foundation
import HaloGraph
import HaloPartition
import XCTest

/// Issue 12, defect 8: parts that pass their own checks but do not fit together (another partitioning's part, or an
/// edit whose checksums were recomputed) are refused by `halo train --partitions` before any epoch, on both
/// transports, with every MPI rank stopping rather than waiting.
final class TrainMismatchedPartsCommandTests: CommandTestCase {
    static let dataset = "synthetic:nodes=300,classes=3,features=8,degree=6,seed=3"
    static let common = ["--epochs", "2", "--hidden", "8", "--threads", "1", "--quiet"]

    private func partition(_ method: String, seed: String, name: String) throws -> URL {
        let out = scratch.appendingPathComponent(name)
        let outcome = try run(try halo(), ["partition", "--dataset", Self.dataset, "--parts", "2", "--method", method,
                                           "--seed", seed, "--out", out.path], timeout: 60)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        return out
    }

    private func manifest(_ dir: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json"))) as? [String: Any])
    }

    private func writeManifest(_ object: [String: Any], to dir: URL) throws {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: dir.appendingPathComponent("manifest.json"))
    }

    /// Runs `halo train --partitions dir` in process and, when mpirun is present, over 2 MPI ranks; asserts both
    /// are refused quickly, before training, with a message containing every one of `words`.
    private func assertRefusedBeforeTraining(_ dir: URL, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        var outcomes = [("in process", try run(try halo(), ["train", "--partitions", dir.path] + Self.common, timeout: 60))]
        if let mpirun = try? mpirun() {
            outcomes.append(("MPI", try run(mpirun, launcherArguments(ranks: 2) + [try halo().path, "train", "--transport", "mpi",
                                                                                    "--partitions", dir.path] + Self.common, timeout: 60)))
        }
        for (label, outcome) in outcomes {
            XCTAssertFalse(outcome.timedOut, "\(label): \(outcome)", file: file, line: line)
            XCTAssertNotEqual(outcome.status, 0, "\(label): \(outcome)", file: file, line: line)
            XCTAssertLessThan(outcome.seconds, 30, "\(label): \(outcome)", file: file, line: line)
            XCTAssertFalse(outcome.stdout.contains("best val"), "\(label) trained: \(outcome)", file: file, line: line)
            let text = outcome.stderr + outcome.stdout
            XCTAssertFalse(text.contains("quantized message"), "\(label): \(outcome)", file: file, line: line)
            for word in words {
                XCTAssertTrue(text.contains(word), "\(label) should mention \(word): \(outcome)", file: file, line: line)
            }
        }
    }

    func testPartsOfTwoPartitioningsAreRefused() throws {
        let a = try partition("metis", seed: "1", name: "a2"), b = try partition("random", seed: "9", name: "b2")
        // b's part 1 with its manifest entry (sizes and checksums right) moved into a.
        try FileManager.default.removeItem(at: a.appendingPathComponent("part-1"))
        try FileManager.default.copyItem(at: b.appendingPathComponent("part-1"), to: a.appendingPathComponent("part-1"))
        var mixed = try manifest(a)
        var list = try XCTUnwrap(mixed["part_list"] as? [[String: Any]])
        list[1] = try XCTUnwrap((try manifest(b)["part_list"] as? [[String: Any]])?[1])
        mixed["part_list"] = list
        try writeManifest(mixed, to: a)
        let idA = try XCTUnwrap(mixed["partitioning_id"] as? String), idB = try XCTUnwrap(try manifest(b)["partitioning_id"] as? String)
        XCTAssertNotEqual(idA, idB)
        try assertRefusedBeforeTraining(a, mentioning: ["a2/part-1/meta.json", "partitioning_id", idA, idB])

        // The untouched directory trains.
        let trained = try run(try halo(), ["train", "--partitions", b.path] + Self.common, timeout: 60)
        XCTAssertEqual(trained.status, 0, "\(trained)")
        XCTAssertTrue(trained.stdout.contains("best val"), "\(trained)")
    }

    func testATrainMaskEditedWithItsChecksumIsRefused() throws {
        let dir = try partition("metis", seed: "1", name: "p2")
        let mask = dir.appendingPathComponent("part-0/train_mask.u8")
        var bytes = try Data(contentsOf: mask)
        // A training node dropped (one added would be in two masks, which the part alone refuses).
        let k = try XCTUnwrap(bytes.firstIndex(of: 1))
        bytes[k] = 0
        try bytes.write(to: mask)
        var object = try manifest(dir)
        var list = try XCTUnwrap(object["part_list"] as? [[String: Any]])
        var files = try XCTUnwrap(list[0]["files"] as? [[String: Any]])
        let i = try XCTUnwrap(files.firstIndex { ($0["name"] as? String) == "train_mask.u8" })
        files[i]["xxh64"] = XXHash64.hex(bytes.withUnsafeBytes { XXHash64.hash($0) })
        list[0]["files"] = files
        object["part_list"] = list
        try writeManifest(object, to: dir)
        try assertRefusedBeforeTraining(dir, mentioning: ["train_mask.u8 over all parts", "global_split_sizes.train"])
    }
}
