import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import HaloTestSupport
import XCTest

/// The directory fuzzer's mutations through the command line, as a user, or a fuzzer that has not seen this code,
/// meets them: `halo train` on a mutated dataset or partition directory exits 0 having trained to finite losses, or
/// with an error; never dies of a signal, never hangs. A sample only, since each case costs a process: the bulk of
/// the cases run in process (`DirectoryFuzzTests`), where the same readers and trainer are judged more closely.
final class FuzzedDirectoryCommandTests: CommandTestCase {
    static let defaultSeed: UInt64 = 20_261_207
    static let defaultCases = 60
    static let defaultMPICases = 8

    /// A valid directory to mutate, and how `halo train` is pointed at it.
    private struct Base {
        var option: String
        var extra: [String] = []
        var image: FuzzDirectoryImage
    }

    private var seed: UInt64 {
        ProcessInfo.processInfo.environment["HALO_FUZZ_SEED"].flatMap { UInt64($0) } ?? Self.defaultSeed
    }

    private func count(_ variable: String, default value: Int) -> Int {
        ProcessInfo.processInfo.environment[variable].flatMap { Int($0) } ?? value
    }

    /// A synthetic dataset, two parts of it, and two parts of a sparse-feature copy (the command line sums the
    /// sizes of a part's three feature files before it reads the part).
    private func bases() throws -> (dataset: Base, parts: [Base]) {
        let dataset = try SyntheticGraphSpec(parsing: "synthetic:nodes=120,classes=4,features=6,degree=5,seed=1").generate()
        let datasetDirectory = scratch.appendingPathComponent("base-dataset")
        try DatasetFormat.write(dataset, to: datasetDirectory)
        let partitioning = try Partitioner.partition(graph: dataset.graph, parts: 2, method: .metis, seed: 1)
        let partsDirectory = scratch.appendingPathComponent("base-parts")
        try PartitionStore.write(dataset: dataset, partitioning: partitioning, to: partsDirectory)
        var sparse = dataset
        let dense = dataset.features.denseMatrix()
        var triplets: [(row: Int, col: Int, value: Float)] = []
        for r in 0..<dense.rows {
            for c in 0..<dense.cols where dense[r, c] > 0.3 { triplets.append((r, c, dense[r, c])) }
        }
        sparse.features = .sparse(SparseMatrix(rows: dense.rows, cols: dense.cols, triplets: triplets))
        let sparsePartsDirectory = scratch.appendingPathComponent("base-sparse-parts")
        try PartitionStore.write(dataset: sparse, partitioning: partitioning, to: sparsePartsDirectory)
        let parts = try FuzzDirectoryImage(reading: partsDirectory)
        // Partitions alone, and with the dataset they were cut from (which halo train then matches against them).
        return (Base(option: "--dataset", image: try FuzzDirectoryImage(reading: datasetDirectory)),
                [Base(option: "--partitions", image: parts),
                 Base(option: "--partitions", extra: ["--dataset", datasetDirectory.path], image: parts),
                 Base(option: "--partitions", image: try FuzzDirectoryImage(reading: sparsePartsDirectory))])
    }

    /// Mutates `base` as case `index` does, writes it, and runs `command` on it (the directory's path appended to
    /// the base's option); judges the outcome.
    private func runCase(
        _ index: Int, base: Base, salt: UInt64, replay: String, _ command: (URL) throws -> (String, Outcome)
    ) throws -> Bool {
        var rng = TestRNG(seed: (seed ^ salt) &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        var image = base.image
        let steps = FuzzMutator(donors: []).mutateCase(&image, rng: &rng)
        let directory = scratch.appendingPathComponent("case-\(index)")
        try image.write(to: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (name, outcome) = try command(directory)
        let label = "case \(index) of seed \(seed) (\(name)): \(steps.joined(separator: "; ")) (replay: HALO_FUZZ_SEED=\(seed) \(replay)=\(index + 1))"
        XCTAssertFalse(outcome.timedOut, "\(label): hung\n\(outcome)")
        let died = ["Program crashed", "runtime failure", "exited on signal", "Signal "].first { (outcome.stdout + outcome.stderr).contains($0) }
        XCTAssertNil(died, "\(label): a process died\n\(outcome)")
        guard outcome.status == 0 else {
            // `Error: …` from one process; `halo: rank 1 failed: …` from a rank of an MPI job.
            XCTAssertTrue(["Error:", "failed:"].contains { outcome.stderr.contains($0) }, "\(label): failed without an error message\n\(outcome)")
            if name.hasPrefix("halo") {
                XCTAssertEqual(outcome.status, 1, "\(label): exit status \(outcome.status), a crash or a signal\n\(outcome)")
            }
            return false
        }
        let losses = Self.losses(in: outcome.stdout)
        XCTAssertEqual(losses.count, 2, "\(label): trained, but printed \(losses.count) epoch losses\n\(outcome)")
        XCTAssertTrue(losses.allSatisfy(\.isFinite), "\(label): trained to losses \(losses)\n\(outcome)")
        return true
    }

    func testMutatedDirectoriesThroughHaloTrain() throws {
        let halo = try halo()
        let (dataset, parts) = try bases()
        let bases = [dataset] + parts
        let count = count("HALO_FUZZ_CLI_CASES", default: Self.defaultCases)
        var trained = 0
        for index in 0..<count {
            let base = bases[index % bases.count]
            let arguments = ["train", base.option] + ["DIR"] + base.extra + ["--epochs", "2", "--hidden", "8"]
            if try runCase(index, base: base, salt: 0, replay: "HALO_FUZZ_CLI_CASES", { directory in
                let name = "halo train \(([base.option] + base.extra.prefix(1)).joined(separator: " "))"
                return (name, try run(halo, arguments.map { $0 == "DIR" ? directory.path : $0 }, timeout: 60))
            }) { trained += 1 }
        }
        print("halo fuzz through the command line: seed \(seed), \(count) cases: \(count - trained) refused, \(trained) trained")
    }

    /// Ranks of an MPI job each read the manifest and their own part and exchange tallies: a rank that refuses its
    /// part must end the job (not leave the others waiting in a broadcast), and no rank may die.
    func testMutatedPartitionsThroughMPI() throws {
        let (mpirun, halo) = try tools()
        let parts = try bases().parts
        let count = count("HALO_FUZZ_MPI_CASES", default: Self.defaultMPICases)
        var trained = 0
        for index in 0..<count {
            let base = parts[index % parts.count]
            if try runCase(index, base: base, salt: 0x4D50_49, replay: "HALO_FUZZ_MPI_CASES", { directory in
                let arguments = launcherArguments(ranks: 2) + [halo.path, "train", "--transport", "mpi", base.option, directory.path]
                    + base.extra + ["--epochs", "2", "--hidden", "8"]
                return ("mpirun -np 2 halo train \(([base.option] + base.extra.prefix(1)).joined(separator: " "))",
                        try run(mpirun, arguments, timeout: 60))
            }) { trained += 1 }
        }
        print("halo fuzz through mpirun: seed \(seed), \(count) cases: \(count - trained) refused, \(trained) trained")
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
