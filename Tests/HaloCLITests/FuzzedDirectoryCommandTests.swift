import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import HaloTestSupport
import XCTest

/// The directory fuzzer's mutations through the command line, as a user, or a fuzzer that has not seen this code,
/// meets them: `halo train` on a mutated dataset or partition directory exits 0 having trained to finite losses, or
/// 1 with an error; never dies of a signal, never hangs. A sample only, since each case costs a process: the bulk of
/// the cases run in process (`DirectoryFuzzTests`), where the same readers and trainer are judged more closely.
final class FuzzedDirectoryCommandTests: CommandTestCase {
    static let defaultSeed: UInt64 = 20_261_207
    static let defaultCases = 60

    func testMutatedDirectoriesThroughHaloTrain() throws {
        let halo = try halo()
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["HALO_FUZZ_SEED"].flatMap { UInt64($0) } ?? Self.defaultSeed
        let count = environment["HALO_FUZZ_CLI_CASES"].flatMap { Int($0) } ?? Self.defaultCases

        let dataset = try SyntheticGraphSpec(parsing: "synthetic:nodes=120,classes=4,features=6,degree=5,seed=1").generate()
        let datasetDirectory = scratch.appendingPathComponent("base-dataset")
        try DatasetFormat.write(dataset, to: datasetDirectory)
        let partitioning = try Partitioner.partition(graph: dataset.graph, parts: 2, method: .metis, seed: 1)
        let partsDirectory = scratch.appendingPathComponent("base-parts")
        try PartitionStore.write(dataset: dataset, partitioning: partitioning, to: partsDirectory)
        // Sparse features too: the command line sums the sizes of a part's three feature files before reading it.
        var sparse = dataset
        let dense = dataset.features.denseMatrix()
        var triplets: [(row: Int, col: Int, value: Float)] = []
        for r in 0..<dense.rows {
            for c in 0..<dense.cols where dense[r, c] > 0.3 { triplets.append((r, c, dense[r, c])) }
        }
        sparse.features = .sparse(SparseMatrix(rows: dense.rows, cols: dense.cols, triplets: triplets))
        let sparsePartsDirectory = scratch.appendingPathComponent("base-sparse-parts")
        try PartitionStore.write(dataset: sparse, partitioning: partitioning, to: sparsePartsDirectory)
        // Partitions alone, and with the dataset they were cut from (which halo train then matches against them).
        let partsImage = try FuzzDirectoryImage(reading: partsDirectory)
        let bases = [(option: "--dataset", extra: [String](), image: try FuzzDirectoryImage(reading: datasetDirectory)),
                     (option: "--partitions", extra: [], image: partsImage),
                     (option: "--partitions", extra: ["--dataset", datasetDirectory.path], image: partsImage),
                     (option: "--partitions", extra: [], image: try FuzzDirectoryImage(reading: sparsePartsDirectory))]

        var refused = 0, trained = 0
        for index in 0..<count {
            var rng = TestRNG(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
            let base = bases[index % bases.count]
            var image = base.image
            let steps = FuzzMutator(donors: []).mutateCase(&image, rng: &rng)
            let directory = scratch.appendingPathComponent("case-\(index)")
            try image.write(to: directory)
            defer { try? FileManager.default.removeItem(at: directory) }
            let label = "case \(index) of seed \(seed) (halo train \(([base.option] + base.extra.prefix(1)).joined(separator: " "))): "
                + "\(steps.joined(separator: "; ")) "
                + "(replay: HALO_FUZZ_SEED=\(seed) HALO_FUZZ_CLI_CASES=\(index + 1))"

            let outcome = try run(halo, ["train", base.option, directory.path] + base.extra + ["--epochs", "2", "--hidden", "8"], timeout: 60)
            XCTAssertFalse(outcome.timedOut, "\(label): hung\n\(outcome)")
            switch outcome.status {
            case 0:
                let losses = Self.losses(in: outcome.stdout)
                XCTAssertEqual(losses.count, 2, "\(label): trained, but printed \(losses.count) epoch losses\n\(outcome)")
                XCTAssertTrue(losses.allSatisfy(\.isFinite), "\(label): trained to losses \(losses)\n\(outcome)")
                trained += 1
            case 1:
                XCTAssertTrue(outcome.stderr.contains("Error:"), "\(label): exit 1 without an error message\n\(outcome)")
                refused += 1
            default:
                XCTFail("\(label): exit status \(outcome.status), a crash or a signal\n\(outcome)")
            }
        }
        print("halo fuzz through the command line: seed \(seed), \(count) cases: \(refused) refused, \(trained) trained")
    }

    /// The losses of the epoch lines, `epoch    1/2  loss 0.6931  train …`.
    static func losses(in stdout: String) -> [Double] {
        stdout.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard words.first == "epoch", let at = words.firstIndex(of: "loss"), at + 1 < words.endIndex else { return nil }
            return Double(words[at + 1])
        }
    }
}
