import Foundation
import XCTest

/// Issue 12, defect 10: `--dataset citeseer --partitions cora-p4` trained Cora silently. A --dataset given with
/// --partitions must be the dataset the parts were cut from.
final class TrainPartitionsDatasetCommandTests: CommandTestCase {
    static let partitioned = "synthetic:nodes=300,classes=3,features=8,degree=6,seed=3"
    static let other = "synthetic:nodes=300,classes=3,features=8,degree=6,seed=4"

    func testDatasetOtherThanThePartsIsRefused() throws {
        let parts = scratch.appendingPathComponent("p2")
        let partitioned = try run(try halo(), ["partition", "--dataset", Self.partitioned, "--parts", "2", "--out", parts.path], timeout: 30)
        XCTAssertEqual(partitioned.status, 0, "\(partitioned)")
        let common = ["--partitions", parts.path, "--epochs", "1", "--hidden", "8", "--threads", "1", "--quiet"]

        let refused = try run(try halo(), ["train", "--dataset", Self.other] + common, timeout: 30)
        XCTAssertNotEqual(refused.status, 0, "\(refused)")
        XCTAssertTrue(refused.stderr.contains("--dataset \(Self.other) is not the dataset the parts in \(parts.path) were cut from"), "\(refused)")
        XCTAssertFalse(refused.stdout.contains("best val"), "\(refused)")

        // The right dataset, and no dataset at all, train.
        for extra in [["--dataset", Self.partitioned], []] {
            let trained = try run(try halo(), ["train"] + extra + common, timeout: 60)
            XCTAssertEqual(trained.status, 0, "\(extra): \(trained)")
            XCTAssertTrue(trained.stdout.contains("best val"), "\(extra): \(trained)")
        }
    }

    /// Foundation's file errors reach the user as a sentence naming the option and path, never as an NSError dump.
    func testUnwritableBenchmarkOutputIsRefusedBeforeMeasuring() throws {
        let missing = scratch.appendingPathComponent("no-such-folder/out.json").path
        for command in ["microbench", "quantbench"] {
            let outcome = try run(try halo(), [command, "--json-out", missing], timeout: 30)
            XCTAssertNotEqual(outcome.status, 0, "\(command): \(outcome)")
            XCTAssertLessThan(outcome.seconds, 10, "\(command): \(outcome)")
            XCTAssertTrue(outcome.stderr.contains("--json-out \(missing): folder "), "\(command): \(outcome)")
            XCTAssertFalse(outcome.stderr.contains("NSCocoaErrorDomain") || outcome.stderr.contains("Error Domain"), "\(command): \(outcome)")
        }
    }
}
