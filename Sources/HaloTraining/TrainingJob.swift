import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import HaloTransport

/// A whole training run, resolved: what it trains on, where its ranks run, and its settings. `run` loads the data
/// (or each rank its part), partitions it when there are ranks, builds every rank's trainer and trains, calling
/// back after each epoch. `halo train` is option parsing around one of these; a Swift program can use it the same
/// way:
///
/// ```swift
/// var job = TrainingJob(configuration: config, source: .dataset("../shared/datasets/cora"), ranks: .threads(4))
/// let report = try job.run(onEpoch: { print($0.epoch, $0.loss) })
/// ```
public struct TrainingJob: Sendable {
    /// What the run trains on.
    public enum Source: Sendable {
        /// A dataset directory or synthetic spec (`DatasetSource`), loaded here and partitioned when there are ranks.
        case dataset(String)
        /// Parts written by `halo partition` (the folder holding `manifest.json`): each rank reads only its own.
        case parts(directory: String)
    }

    /// Where the ranks run.
    public enum Ranks: Sendable {
        /// One process trains the whole graph: nothing is partitioned or exchanged.
        case single
        /// This many ranks as threads of this process, on the in-process transport.
        case threads(Int)
        /// This process is one rank of the group `transport` connects (MPI); `onHost` ranks share this host's cores.
        case member(any Transport, onHost: Int)
    }

    public var configuration: TrainingConfiguration
    public var source: Source
    public var ranks: Ranks
    /// How `.dataset` sources are partitioned for ranks.
    public var partitionMethod: PartitionMethod = .metis
    /// Compute threads per rank; nil: this host's cores divided among the ranks on it.
    public var threadsPerRank: Int?
    public var checkpoints: CheckpointPlan?
    /// Set (e.g. by a signal handler) to stop every rank after the epoch it is in.
    public var stopRequest: StopRequest?
    /// Lines saying what the job does (loading, partitioning).
    public var log: @Sendable (String) -> Void = { _ in }
    /// The data readers' notes (e.g. a dataset written before checksums existed).
    public var note: @Sendable (String) -> Void = { _ in }
    /// The bytes the run may hold on this host; nil: what this process can have (`MemAvailable` plus its own
    /// resident set). A run whose estimated peak (`MemoryEstimate`) exceeds it is refused before its first epoch.
    public var memoryBudget: Double?
    /// Where the kernel rates that choose the first layer's path come from (`FirstLayerPlan`); off by default, which
    /// keeps `FeatureStatistics`'s constants.
    public var calibration: CalibrationChoice = .off
    /// The first layer's feature representation, as the caller wants it instead of as the plan chooses (the same on
    /// every rank; dense features stay dense). For measuring the alternatives to a choice.
    public var featureRepresentation: FeatureRepresentation?
    /// Appended to a refusal for lack of memory: what the caller can change (e.g. its options' names).
    public var memoryHint = "use a smaller model or dataset, or spread the ranks over several machines"

    public init(configuration: TrainingConfiguration, source: Source, ranks: Ranks) {
        self.configuration = configuration
        self.source = source
        self.ranks = ranks
    }

    /// How many ranks the run has (for `.member`, the group's size).
    public var rankCount: Int {
        switch ranks {
        case .single: 1
        case .threads(let count): count
        case .member(let transport, _): transport.worldSize
        }
    }

    /// Trains every epoch and returns the report: rank 0's for `.single` and `.threads`, this rank's for `.member`
    /// (every rank's report holds the same global numbers). `onEpoch` and `onProgress` are called by rank 0 only,
    /// after each epoch and after each evaluated epoch but the last (`Trainer.train`); the report they and the
    /// return value carry includes the partitioning.
    public func run(onEpoch: @escaping @Sendable (EpochRecord) -> Void = { _ in },
                    onProgress: @escaping @Sendable (TrainingReport) throws -> Void = { _ in }) throws -> TrainingReport {
        let cores = ComputePool.availableCores
        // GEMMs take their threads from the rank's pool (see `gemm`); OpenBLAS's own would compete with it.
        BLASRuntime.threads = 1
        switch ranks {
        case .single:
            guard case .dataset(let name) = source else {
                throw TrainingSetupError(message: "parts are trained by one rank each: give as many ranks as the folder holds parts")
            }
            let threads = threadsPerRank ?? cores
            let calibrated = DeferredCalibration(calibration, threads: threads, warn: note, log: log)
            return try Self.recording(calibrated, onProgress: onProgress) { onProgress in
                try trainWholeGraph(name, pool: ComputePool(threads: threads), threads: threads, calibrated: calibrated,
                                    onEpoch: onEpoch, onProgress: onProgress)
            }
        case .threads(let count):
            let threads = threadsPerRank ?? max(1, cores / count)
            let calibrated = DeferredCalibration(calibration, threads: threads, warn: note, log: log)
            return try Self.recording(calibrated, onProgress: onProgress) { onProgress in
                try trainThreads(count, threads: threads, cores: cores, calibrated: calibrated,
                                 onEpoch: onEpoch, onProgress: onProgress)
            }
        case .member(let transport, let onHost):
            let threads = threadsPerRank ?? max(1, cores / max(onHost, 1))
            // Rank 0 alone calibrates; its rates reach the other ranks with the features' statistics.
            let calibrated = DeferredCalibration(transport.rank == 0 ? calibration : .off, threads: threads,
                                                 warn: note, log: log)
            return try Self.recording(calibrated, onProgress: onProgress) { onProgress in
                try trainMember(transport, threads: threads, onHost: onHost, calibrated: calibrated, onEpoch: onEpoch,
                                onProgress: onProgress)
            }
        }
    }

    /// Runs `train` with the calibration written into every report it passes on and into the one it returns.
    private static func recording(
        _ calibrated: DeferredCalibration, onProgress: @escaping @Sendable (TrainingReport) throws -> Void,
        _ train: (@escaping @Sendable (TrainingReport) throws -> Void) throws -> TrainingReport
    ) throws -> TrainingReport {
        var report = try train { progress in
            var progress = progress
            progress.calibration = calibrated.record
            try onProgress(progress)
        }
        report.calibration = calibrated.record
        return report
    }

    /// The job's calibration, resolved when first asked for: after the data is loaded and checked, so that a run
    /// refused for its data or its memory is refused before a second of measuring.
    private final class DeferredCalibration: @unchecked Sendable {
        private let choice: CalibrationChoice
        private let threads: Int
        private let warn: @Sendable (String) -> Void
        private let log: @Sendable (String) -> Void
        private let lock = NSLock()
        /// Guarded by `lock`; nil until resolved (and after, for `off`).
        private var resolved: CalibrationRecord??

        init(_ choice: CalibrationChoice, threads: Int, warn: @escaping @Sendable (String) -> Void,
             log: @escaping @Sendable (String) -> Void) {
            self.choice = choice
            self.threads = threads
            self.warn = warn
            self.log = log
        }

        var record: CalibrationRecord? {
            lock.withLock {
                if let resolved { return resolved }
                let record = choice.resolve(threads: threads, warn: warn)
                resolved = .some(record)
                if let record {
                    let source = record.origin == .cached
                        ? "read from \(record.cacheFile ?? "the cache")"
                        : String(format: "measured in %.1f s", record.measurementSeconds)
                    log("host calibration (\(record.key.host.summary), \(record.key.threads) threads) \(source)")
                }
                return record
            }
        }
    }

    // MARK: The three ways to run

    private func trainWholeGraph(
        _ name: String, pool: ComputePool, threads: Int, calibrated: DeferredCalibration,
        onEpoch: @escaping @Sendable (EpochRecord) -> Void,
        onProgress: @escaping @Sendable (TrainingReport) throws -> Void
    ) throws -> TrainingReport {
        let model = configuration.model
        // The dataset as loaded lives only in this closure: once the shard holds its rows in locality order, the
        // loaded copy (features and edges) is freed before training allocates anything.
        let (shard, classCount, environment, plan, blocks) = try { () throws -> (RankShard, Int, RunEnvironment, FirstLayerPlan, Int) in
            let data = try loadDataset(name, pool: pool, replicas: 1)
            let plan = FirstLayerPlan.choosing(
                for: FirstLayerWorkload(features: FeatureStatistics(data.features), featureWidth: data.featureWidth,
                                        aggregationNonZeros: data.graph.edgeCount + data.nodeCount, model: model),
                rates: calibrated.record?.rates).forcing(featureRepresentation)
            log("first-layer plan: \(plan.summary)")
            // Checked again with the plan (a precomputed aggregate, the features as held): the run's column blocks.
            let sparse = plan.representation != .dense
            let blocks = try checkMemory(
                rows: data.nodeCount, inputWidth: data.featureWidth, classes: data.classCount,
                featureBytes: sparse ? Self.featureBytes(data.features)
                    : Double(data.nodeCount) * Double(data.featureWidth) * Double(MemoryLayout<Float>.size),
                replicas: 1, storedEdges: data.graph.edgeCount + data.nodeCount, wholeGraph: true,
                precomputedFirstLayer: configuration.quantization.precomputeFirstLayer ?? plan.precompute,
                sparseFeatures: sparse,
                // A near tie may be settled for the hybrid path, which holds X·W beside the output.
                forwardThroughFeatures: plan.forwardThroughFeatures || (plan.precompute && FirstLayerForwardTrial.applies(to: plan)))
            let ordering = Stopwatch()
            let shard = RankShard.wholeGraph(data, aggregation: model.kind.aggregation, representation: plan.representation)
            log("rows stored in locality order (reverse Cuthill–McKee) in \(String(format: "%.2f", ordering.elapsed)) s")
            return (shard, data.classCount, RunEnvironment(ranks: 1, threadsPerRank: threads, dataset: data), plan, blocks)
        }()
        var config = configuration
        config.columnBlocks = blocks
        logColumnBlocks(blocks)
        config.quantization.precomputeFirstLayer = config.quantization.precomputeFirstLayer ?? plan.precompute
        let trials = calibrated.record.flatMap { record in
            record.cacheFile.map { FirstLayerTrialCache(directory: ($0 as NSString).deletingLastPathComponent,
                                                        calibrationStem: record.key.fileStem) }
        }
        return try Trainer(configuration: config, shard: shard, classCount: classCount, pool: pool).train(
            firstLayerPlan: plan, onRefinedPlan: { [log] in log("first-layer plan: \($0.summary)") }, trials: trials,
            environment: environment, stopRequest: stopRequest, checkpoints: checkpoints,
            onEpoch: onEpoch, onProgress: onProgress)
    }

    private func trainThreads(
        _ count: Int, threads: Int, cores: Int, calibrated: DeferredCalibration,
        onEpoch: @escaping @Sendable (EpochRecord) -> Void,
        onProgress: @escaping @Sendable (TrainingReport) throws -> Void
    ) throws -> TrainingReport {
        let pool = ComputePool(threads: threads)
        let inMemoryParts: [Part]?
        let summary: PartitionSummary
        let environment: RunEnvironment
        var manifest: PartitionManifest?
        let blocks: Int
        switch source {
        case .parts(let directory):
            let m = try PartitionStore.readManifest(directory: directory)
            try checkPartCount(m, directory: directory, ranks: count)
            blocks = try checkMemory(for: m, ranks: Array(0..<count), inProcess: true)
            manifest = m
            inMemoryParts = nil
            summary = PartitionSummary(manifest: m)
            environment = RunEnvironment(ranks: count, threadsPerRank: threads, manifest: m)
            log("training on the \(count) parts in \(directory)")
        case .dataset(let name):
            // Every rank's part copies its rows' features beside the dataset's.
            let data = try loadDataset(name, pool: ComputePool(threads: cores), replicas: count, featureCopies: 2)
            let (built, s) = try partition(data, parts: count)
            blocks = try checkMemory(parts: built, inProcess: true)
            inMemoryParts = built
            summary = s
            environment = RunEnvironment(ranks: count, threadsPerRank: threads, dataset: data)
        }
        let job = { var job = self; job.configuration.columnBlocks = blocks; return job }()
        logColumnBlocks(blocks)
        let partsManifest = manifest, rates = calibrated.record?.rates
        let reports = try LocalTransport.run(worldSize: count) { transport -> TrainingReport? in
            try Self.attributingFailures(rank: transport.rank) {
                let part = try inMemoryParts?[transport.rank] ?? job.readPart(transport: transport, manifest: partsManifest!)
                let report = try job.trainRank(part, transport: transport, pool: pool, environment: environment,
                                               summary: summary, rates: rates, onEpoch: onEpoch, onProgress: onProgress)
                return transport.rank == 0 ? report : nil
            }
        }
        return reports[0]!
    }

    private func trainMember(
        _ transport: any Transport, threads: Int, onHost: Int, calibrated: DeferredCalibration,
        onEpoch: @escaping @Sendable (EpochRecord) -> Void,
        onProgress: @escaping @Sendable (TrainingReport) throws -> Void
    ) throws -> TrainingReport {
        let pool = ComputePool(threads: threads)
        let ranks = transport.worldSize
        let part: Part
        let summary: PartitionSummary
        let environment: RunEnvironment
        let blocks: Int
        switch source {
        case .parts(let directory):
            let manifest = try PartitionStore.readManifest(directory: directory)
            try checkPartCount(manifest, directory: directory, ranks: ranks)
            blocks = try checkMemory(for: manifest, ranks: [transport.rank], inProcess: false, ranksOnHost: onHost)
            part = try readPart(transport: transport, manifest: manifest)
            summary = PartitionSummary(manifest: manifest)
            environment = RunEnvironment(ranks: ranks, threadsPerRank: threads, manifest: manifest)
        case .dataset(let name):
            // Every rank partitions the same data with the same seed; a checksum comparison guards against ranks
            // that somehow see different inputs.
            let data = try loadDataset(name, pool: pool, replicas: 1, rowsShare: 1 / Double(ranks))
            let (built, s) = try partition(data, parts: ranks)
            try Self.confirmSamePartitioning(built, transport: transport)
            part = built[transport.rank]
            blocks = try checkMemory(parts: [part], inProcess: false, ranksOnHost: onHost)
            summary = s
            environment = RunEnvironment(ranks: ranks, threadsPerRank: threads, dataset: data)
        }
        // Each block is one exchange, so every rank takes the most any rank needs.
        var job = self
        job.configuration.columnBlocks = try Self.agreedColumnBlocks(blocks, transport: transport)
        if transport.rank == 0 { logColumnBlocks(job.configuration.columnBlocks!) }
        return try job.trainRank(part, transport: transport, pool: pool, environment: environment, summary: summary,
                                 rates: calibrated.record?.rates, onEpoch: onEpoch, onProgress: onProgress)
    }

    /// The largest of the ranks' column block counts (collective).
    private static func agreedColumnBlocks(_ blocks: Int, transport: any Transport) throws -> Int {
        Int(try TransportCollectives(transport).valuesOfEveryRank([Double(blocks)]).map { $0[0] }.max() ?? Double(blocks))
    }

    private func logColumnBlocks(_ blocks: Int) {
        guard blocks > 1 else { return }
        log("layers evaluated in \(blocks) column blocks\(configuration.columnBlocks == nil ? " to fit in memory" : "") (one exchange and one pass over the graph per block)")
    }

    /// One rank's training; rank 0 calls back, with the partitioning in its reports.
    private func trainRank(
        _ part: Part, transport: any Transport, pool: ComputePool, environment: RunEnvironment,
        summary: PartitionSummary, rates: KernelRates?, onEpoch: @escaping @Sendable (EpochRecord) -> Void,
        onProgress: @escaping @Sendable (TrainingReport) throws -> Void
    ) throws -> TrainingReport {
        let reporting = transport.rank == 0
        var report = try RankTraining.run(
            part: part, transport: transport, configuration: configuration, environment: environment, pool: pool,
            stopRequest: stopRequest, checkpoints: checkpoints, calibratedRates: rates,
            forcedRepresentation: featureRepresentation,
            onPlan: { plan in if reporting { log("first-layer plan: \(plan.summary)") } },
            onEpoch: { if reporting { onEpoch($0) } },
            onProgress: { progress in
                guard reporting else { return }
                var progress = progress
                progress.partitioning = summary
                try onProgress(progress)
            })
        report.partitioning = summary
        return report
    }

    // MARK: Data

    /// Loads and preprocesses the dataset after checking that the run fits in memory: `replicas` models on this
    /// host, `rowsShare` of the rows and `featureCopies` of the features held here.
    private func loadDataset(_ name: String, pool: ComputePool, replicas: Int, rowsShare: Double = 1,
                             featureCopies: Int = 1) throws -> Dataset {
        let watch = Stopwatch()
        try checkMemoryBeforeLoading(name, replicas: replicas, rowsShare: rowsShare, featureCopies: featureCopies)
        var data = try DatasetSource(name).load(pool: pool, note: note)
        let wholeGraph = replicas == 1 && rowsShare == 1
        try checkMemory(rows: Int(Double(data.nodeCount) * rowsShare), inputWidth: data.featureWidth,
                        classes: data.classCount, featureBytes: Self.featureBytes(data.features) * Double(featureCopies),
                        replicas: replicas, storedEdges: wholeGraph ? data.graph.edgeCount + data.nodeCount : 0,
                        wholeGraph: wholeGraph)
        if configuration.normalizeFeatures == true { data.features = data.features.rowNormalized() }
        // Refused here, before partitioning; the trainer refuses it too (for parts read from disk).
        guard data.split.trainCount > 0 else {
            throw TrainingSetupError(message: "dataset \(name) has an empty training split: no node is marked for training, so there is nothing to train")
        }
        log("loaded \(data.name): \(data.nodeCount) nodes, \(data.graph.edgeCount) edges, \(data.featureWidth) features, \(data.classCount) classes in \(String(format: "%.2f", watch.elapsed)) s")
        return data
    }

    /// Every part of a partitioning computed here, with its summary.
    private func partition(_ data: Dataset, parts count: Int) throws -> ([Part], PartitionSummary) {
        let watch = Stopwatch()
        let memory = ResidentMemorySampler()
        let partitioning = try Partitioner.partition(graph: data.graph, parts: count, method: partitionMethod,
                                                     seed: configuration.seed)
        let quality = partitioning.quality(of: data.graph)
        let built = Part.build(dataset: data, partitioning: partitioning)
        let peak = Double(memory.stop()) / 1_073_741_824
        log("partitioned into \(count) parts with \(partitionMethod) in \(String(format: "%.2f", watch.elapsed)) s (process peak \(String(format: "%.2f", peak)) GiB resident): edge cut \(quality.cutEdges) (\(String(format: "%.1f", 100 * quality.cutFraction))%), balance \(String(format: "%.3f", quality.balance))")
        return (built, PartitionSummary(method: partitionMethod, parts: built, quality: quality))
    }

    /// This rank's part from the folder, checked against the other ranks' (collective).
    private func readPart(transport: any Transport, manifest: PartitionManifest) throws -> Part {
        guard case .parts(let directory) = source else { preconditionFailure("parts are read from a folder") }
        let part = try PartitionStore.read(directory: directory, rank: transport.rank)
        try PartSetAgreement.check(part: part, manifest: manifest, directory: Self.errorName(directory), transport: transport)
        return part
    }

    private func checkPartCount(_ manifest: PartitionManifest, directory: String, ranks: Int) throws {
        guard manifest.parts == ranks else {
            throw TrainingSetupError(message: "\(directory) holds \(manifest.parts) parts but the run has \(ranks) ranks; they must be equal")
        }
    }

    /// How partition errors name the directory: its last path component, as `PartitionStore`'s own errors do.
    public static func errorName(_ directory: String) -> String {
        URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
    }

    /// Checks that every rank computed the same partitioning (same owner of every inner node).
    private static func confirmSamePartitioning(_ parts: [Part], transport: any Transport) throws {
        let local = parts.reduce(UInt64(parts.count)) { XXHash64.hash($1.innerGlobalIDs, seed: $0) }
        var bytes = withUnsafeBytes(of: local.littleEndian) { Array($0) }
        try transport.broadcast(&bytes, root: 0)
        let root = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        guard root == local.littleEndian else {
            throw TrainingSetupError(message: "rank \(transport.rank) partitioned the dataset differently from rank 0; give every rank the same dataset, or partition once with `halo partition` and train on the parts")
        }
    }

    /// Runs one in-process rank's work, wrapping an error that is this rank's own in `RankFailure` (naming it);
    /// errors every rank meets alike (set-up, divergence, the transport's) pass unchanged.
    private static func attributingFailures<T>(rank: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TransportError {
            throw error
        } catch let error as TrainingDiverged {
            // Every rank stops at the same step for the same reason: not one rank's failure.
            throw error
        } catch let error as TrainingSetupError {
            // Decided on settings and global counts every rank shares.
            throw error
        } catch let error as PartitionError where error.kind == .inconsistentParts {
            // Decided on the tallies of all parts, which every rank gathered: a fault of the set, not of a rank.
            throw error
        } catch {
            throw RankFailure(rank: rank, underlying: error)
        }
    }
}

/// A rank's own failure, naming the rank.
public struct RankFailure: Error, CustomStringConvertible {
    public let rank: Int
    public let underlying: any Error
    public var description: String { "rank \(rank) failed: \(underlying)" }
}
