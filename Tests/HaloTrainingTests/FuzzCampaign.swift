import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor
import HaloTestSupport
import HaloTraining
import HaloTransport

/// Runs fuzz cases and judges each: the mutated directory must be refused with a clean error (the format's own
/// error type, naming a file inside the directory), or accepted as data `FuzzValidity` finds valid, on which a short
/// training run ends with finite losses (or with the trainer's own clean refusal, e.g. an empty training split).
///
/// Case `k` of seed `s` draws everything from its own generator, seeded from `s` and `k`, so any case can be
/// replayed alone (`HALO_FUZZ_SEED=s HALO_FUZZ_CASE=k`).
struct FuzzCampaign {
    struct Tally: CustomStringConvertible {
        var refused = 0
        var accepted = 0
        var trained = 0
        /// Accepted, valid data the trainer declined cleanly (no training nodes, too large to fit, diverged).
        var trainingDeclined = 0
        var failures: [String] = []

        var description: String {
            "\(refused) refused cleanly, \(accepted) accepted as valid (\(trained) trained to a finite loss, "
                + "\(trainingDeclined) declined by the trainer), \(failures.count) defects"
        }
    }

    let seed: UInt64
    let targets: [FuzzTarget]
    let scratch: URL
    /// Prints every case and its verdict (a replayed case, or `HALO_FUZZ_VERBOSE=1`).
    var verbose = false

    func run(cases: some Sequence<Int>) -> Tally {
        var tally = Tally()
        for index in cases { runCase(index, into: &tally) }
        FuzzCrashReporter.begin(nil)
        return tally
    }

    private func runCase(_ index: Int, into tally: inout Tally) {
        var rng = TestRNG(seed: seed &+ UInt64(index) &* 0xD1B5_4A32_D192_ED03)
        let target = targets[rng.int(0..<targets.count)]
        let mutator = FuzzMutator(donors: target.donors)
        var image = target.image
        let steps = mutator.mutateCase(&image, rng: &rng)
        let label = "case \(index) of seed \(seed) on the \(target.name): \(steps.joined(separator: "; ")) "
            + "(replay: HALO_FUZZ_SEED=\(seed) HALO_FUZZ_CASE=\(index))"
        FuzzCrashReporter.begin(label)
        let directory = scratch.appendingPathComponent("case-\(index)")
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            try image.write(to: directory)
        } catch {
            tally.failures.append("\(label): could not write the case: \(error)")
            return
        }
        let before = (tally.refused, tally.trained, tally.trainingDeclined)
        let problem = image.isPartitionDirectory
            ? judgePartitions(directory, rng: &rng, tally: &tally)
            : judgeDataset(directory, rng: &rng, tally: &tally)
        if let problem { tally.failures.append("\(label): \(problem)") }
        if verbose {
            let verdict = problem.map { "DEFECT: \($0)" } ?? (tally.refused > before.0 ? "refused"
                : tally.trained > before.1 ? "accepted, trained" : tally.trainingDeclined > before.2 ? "accepted, declined by the trainer" : "?")
            print("\(label)\n  → \(verdict)")
        }
    }

    /// nil if `error` is a clean refusal of the directory `name`: the format's error, naming one of its files.
    private func uncleanRefusal<Kind>(_ error: FileFormatError<Kind>, directory name: String) -> String? {
        if error.description.isEmpty || error.found.isEmpty || error.expected.isEmpty { return "refused with an empty message: \(error)" }
        if !error.file.hasPrefix(name + "/") { return "refused naming \(error.file), not a file of \(name): \(error)" }
        return nil
    }

    // MARK: Datasets

    private func judgeDataset(_ directory: URL, rng: inout TestRNG, tally: inout Tally) -> String? {
        let dataset: Dataset
        do {
            dataset = try DatasetFormat.read(directory: directory)
        } catch let error as DatasetError {
            tally.refused += 1
            return uncleanRefusal(error, directory: directory.lastPathComponent)
        } catch {
            return "refused with \(type(of: error)), not a DatasetError: \(error)"
        }
        if let problem = FuzzValidity.problem(in: dataset) { return "accepted invalid data: \(problem)" }
        tally.accepted += 1
        let environment = RunEnvironment(
            ranks: 1, threadsPerRank: 1, blasCore: BLASRuntime.coreName, hostCores: 1, nodes: dataset.nodeCount,
            edges: dataset.graph.edgeCount, featureWidth: dataset.featureWidth, classes: dataset.classCount)
        let configuration = trainingConfiguration(rng: &rng)
        let estimate = MemoryEstimate(model: configuration.model, rows: dataset.nodeCount, inputWidth: dataset.featureWidth,
                                      classes: dataset.classCount, featureBytes: 0)
        return judgeTraining(&tally, estimate: estimate) {
            let trainer = try Trainer(configuration: configuration,
                                  shard: .wholeGraph(dataset, aggregation: configuration.model.kind.aggregation),
                                  classCount: dataset.classCount, pool: .serial)
            return [try trainer.train(environment: environment)]
        }
    }

    // MARK: Partitions

    private func judgePartitions(_ directory: URL, rng: inout TestRNG, tally: inout Tally) -> String? {
        let name = directory.lastPathComponent
        // Two ways in: `readAll` (one process, `halo train --partitions` with one rank per part in-process) and what
        // each rank of a distributed run does (manifest, own part, tallies gathered from all). They must agree.
        let all: Result<[Part], any Error> = Result { try PartitionStore.readAll(directory: directory) }
        let byRank: Result<(PartitionManifest, [Part]), any Error> = Result {
            let manifest = try PartitionStore.readManifest(directory: directory)
            // What `halo train --partitions` computes from the manifest alone, before it reads a part: the summary it
            // prints and the rows of its memory estimate (an overflow here trapped the command once).
            _ = PartitionSummary(manifest: manifest)
            _ = manifest.partList.reduce(0) { $0 + $1.inner + $1.halo }
            let parts = try (0..<manifest.parts).map { try PartitionStore.read(directory: directory, rank: $0) }
            // Through the bytes ranks exchange, as `PartSetAgreement` sends them (encoding them trapped once).
            let gathered = parts.compactMap { PartSetTally(bytes: PartSetTally($0).bytes) }
            guard gathered == parts.map(PartSetTally.init) else { throw FuzzCampaignError.tallyRoundTrip }
            try PartSetTally.verify(gathered, manifest: manifest, directory: name)
            return (manifest, parts)
        }
        switch (all, byRank) {
        case (.failure(let error), .failure):
            tally.refused += 1
            guard let error = error as? PartitionError else { return "refused with \(type(of: error)), not a PartitionError: \(error)" }
            return uncleanRefusal(error, directory: name)
        case (.success, .failure(let error)):
            return "readAll accepted what the per-rank reads refused: \(error)"
        case (.failure(let error), .success):
            return "the per-rank reads accepted what readAll refused: \(error)"
        case (.success(let parts), .success(let (manifest, rankParts))):
            if parts != rankParts { return "readAll and the per-rank reads loaded different parts" }
            if let problem = FuzzValidity.problem(in: parts) { return "accepted invalid parts: \(problem)" }
            tally.accepted += 1
            let configuration = trainingConfiguration(rng: &rng)
            let environment = RunEnvironment(
                ranks: parts.count, threadsPerRank: 1, blasCore: BLASRuntime.coreName, hostCores: 1,
                nodes: manifest.dataset.nodes, edges: manifest.dataset.directedEdges,
                featureWidth: manifest.dataset.featureWidth, classes: manifest.dataset.classes)
            let estimate = MemoryEstimate(
                model: configuration.model, rows: parts.reduce(0) { $0 + $1.innerCount + $1.haloCount },
                inputWidth: manifest.dataset.featureWidth, classes: manifest.dataset.classes, featureBytes: 0, replicas: parts.count)
            return judgeTraining(&tally, estimate: estimate) {
                try LocalTransport.run(worldSize: parts.count) { transport in
                    let part = parts[transport.rank]
                    try PartSetAgreement.check(part: part, manifest: manifest, directory: name, transport: transport)
                    return try RankTraining.run(part: part, transport: transport, configuration: configuration,
                                                environment: environment, pool: .serial)
                }
            }
        }
    }

    // MARK: Training

    private func trainingConfiguration(rng: inout TestRNG) -> TrainingConfiguration {
        let kind = ModelConfiguration.Kind.allCases[rng.int(0..<ModelConfiguration.Kind.allCases.count)]
        return TrainingConfiguration(
            dataset: "fuzz", model: ModelConfiguration(kind: kind, layers: 2, hiddenWidth: 8, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 2, seed: rng.next())
    }

    /// What a run may need before the fuzzer declines it as `halo train` declines a run larger than the machine:
    /// valid files can declare a class count or feature width of 2^31−1, which no trainer could allocate. About
    /// 230 MiB of counted memory (the estimate adds 20 % and as much again, up to 1 GiB, for the allocator).
    static let memoryBudget = 512.0 * 1_048_576

    /// Valid data must train to finite losses; the trainer may decline it only with its own clean errors.
    private func judgeTraining(_ tally: inout Tally, estimate: MemoryEstimate, _ train: () throws -> [TrainingReport]) -> String? {
        do {
            try estimate.check(availableBytes: Self.memoryBudget, hint: "the fuzzer trains small runs only")
            let reports = try train()
            for report in reports {
                if report.epochs.isEmpty { return "training on accepted data ran no epoch" }
                if let epoch = report.epochs.first(where: { !$0.loss.isFinite }) {
                    return "training on accepted data reported loss \(epoch.loss) at epoch \(epoch.epoch)"
                }
            }
            tally.trained += 1
            return nil
        } catch let error as TrainingSetupError {
            tally.trainingDeclined += 1
            return error.message.isEmpty ? "the trainer declined with an empty message" : nil
        } catch let error as TrainingDiverged {
            tally.trainingDeclined += 1
            return error.description.isEmpty ? "the trainer declined with an empty message" : nil
        } catch {
            return "training on accepted data failed with \(type(of: error)): \(error)"
        }
    }
}

enum FuzzCampaignError: Error {
    /// A part's tally did not survive its encoding for the other ranks.
    case tallyRoundTrip
}
