import Foundation
import XCTest

/// `halo train` on a dataset whose training split is empty is refused, naming the dataset, instead of reporting
/// the untrained model's accuracy with exit status 0: from a dataset directory, from parts on disk, on one
/// process, ranks as threads and MPI ranks.
final class TrainEmptySplitCommandTests: CommandTestCase {
    static let spec = "synthetic:nodes=400,classes=3,features=8,degree=6,train=0,val=0.3,test=0.3,seed=3"

    private func assertRefused(_ outcome: Outcome, naming dataset: String, _ label: String) {
        XCTAssertFalse(outcome.timedOut, "\(label): \(outcome)")
        XCTAssertNotEqual(outcome.status, 0, "\(label): \(outcome)")
        let output = outcome.stderr + outcome.stdout
        XCTAssertTrue(output.contains(dataset) && output.contains("empty"), "\(label): \(outcome)")
        XCTAssertTrue(output.contains("no node is marked for training"), "\(label): \(outcome)")
        XCTAssertFalse(outcome.stdout.contains("best val"), "\(label): trained anyway\n\(outcome)")
    }

    func testEmptyTrainingSplitIsRefused() throws {
        let directory = scratch.appendingPathComponent("no-train").path
        let generated = try run(try halo(), ["generate", "--dataset", Self.spec, "--out", directory], timeout: 60)
        XCTAssertEqual(generated.status, 0, "\(generated)")
        let parts = scratch.appendingPathComponent("parts").path
        let partitioned = try run(try halo(), ["partition", "--dataset", directory, "--parts", "2", "--out", parts], timeout: 60)
        XCTAssertEqual(partitioned.status, 0, "\(partitioned)")

        let train = ["train", "--epochs", "2", "--threads", "1", "--quiet"]
        assertRefused(try run(try halo(), train + ["--dataset", directory], timeout: 60), naming: directory, "one process")
        assertRefused(try run(try halo(), train + ["--dataset", directory, "--parts", "2"], timeout: 60),
                      naming: directory, "ranks as threads")
        assertRefused(try run(try halo(), train + ["--partitions", parts], timeout: 60), naming: parts, "parts from disk")

        guard let mpirun = Self.findOnPath("mpirun") else { throw XCTSkip("mpirun is not on PATH") }
        for source in [["--dataset", directory], ["--partitions", parts]] {
            let outcome = try run(mpirun, launcherArguments(ranks: 2) + [try halo().path] + train
                                  + ["--transport", "mpi"] + source, timeout: 60)
            assertRefused(outcome, naming: source[1], "MPI \(source[0])")
            XCTAssertLessThan(outcome.seconds, 30, "\(outcome)")
        }
    }
}
