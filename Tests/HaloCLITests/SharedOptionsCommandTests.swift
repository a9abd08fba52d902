import Foundation
import XCTest

/// Options several subcommands take are one option: the partitioner is `--partition-method` in `partition` and
/// `train` (`partition --method`, its former name, still works), `--threads` is checked alike everywhere, and
/// `--transport` takes the same values wherever it appears.
final class SharedOptionsCommandTests: CommandTestCase {
    static let small = "synthetic:nodes=300,classes=3,features=6,degree=4,seed=2"

    func testThePartitionerHasOneNameInPartitionAndTrain() throws {
        for command in ["partition", "train"] {
            let help = try run(try halo(), [command, "--help"], timeout: 60)
            XCTAssertTrue(help.stdout.contains("--partition-method <method>"), "\(command)\n\(help)")
        }
        for name in ["--partition-method", "--method"] {
            let outcome = try run(try halo(), ["partition", "--dataset", Self.small, "--parts", "2", name, "random"], timeout: 60)
            XCTAssertEqual(outcome.status, 0, "\(name)\n\(outcome)")
            XCTAssertTrue(outcome.stdout.contains("random into 2 parts"), "\(name)\n\(outcome)")
        }
        let trained = try run(try halo(), ["train", "--dataset", Self.small, "--parts", "2", "--partition-method", "contiguous",
                                           "--epochs", "1", "--quiet"], timeout: 60)
        XCTAssertTrue(trained.stderr.contains("partitioned into 2 parts with contiguous"), "\(trained)")
    }

    func testThreadsAndTransportAreCheckedAlike() throws {
        for command in [["generate", "--dataset", Self.small, "--out", scratch.appendingPathComponent("g").path],
                        ["partition", "--dataset", Self.small, "--parts", "2"], ["microbench"], ["quantbench"]] {
            let outcome = try run(try halo(), command + ["--threads", "0"], timeout: 60)
            XCTAssertNotEqual(outcome.status, 0, "\(command)")
            XCTAssertTrue(outcome.stderr.contains("--threads must be at least 1, got 0"), "\(command)\n\(outcome)")
        }
        for command in [["train", "--dataset", Self.small], ["transport-selftest"]] {
            let outcome = try run(try halo(), command + ["--transport", "carrier-pigeon"], timeout: 60)
            XCTAssertNotEqual(outcome.status, 0)
            XCTAssertTrue(outcome.stderr.contains("'carrier-pigeon'") && outcome.stderr.contains("local")
                          && outcome.stderr.contains("mpi"), "\(command)\n\(outcome)")
        }
    }
}
