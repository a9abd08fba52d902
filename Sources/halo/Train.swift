import ArgumentParser
import Foundation
import HaloGraph
import HaloMPI
import HaloNN
import HaloPartition
import HaloQuantization
import HaloTensor
import HaloTensorBoard
import HaloTraining
import HaloTransport
import Logging

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a GCN or GraphSAGE model on a whole graph, on one rank or many.",
        discussion: """
            Prints one line per epoch (loss, scores, epoch time) and, with --json-out, writes every epoch and the \
            summary as JSON. Scores are the task's metric (--metric). Model selection uses the validation set only: \
            the reported test score is the one at the epoch of best validation score.

            With --parts P the graph is split into P parts (METIS by default) and each rank trains on its part, \
            exchanging boundary rows every layer; with --method vanilla or adaqp-p the model is the one a single \
            process would train (quantized and pipelined methods trade exactness for speed). Ranks are \
            threads of this process (--transport local) or MPI processes:
              mpirun -np 4 --bind-to none halo train --transport mpi --dataset DIR

            Kipf & Welling's GCN on Cora (or: halo train --recipe kipf-gcn --dataset …):
              halo train --dataset ../shared/datasets/cora --model gcn \\
                --hidden 16 --dropout 0.5 --input-dropout 0.5 --norm none \\
                --normalize-features --lr 0.01 --weight-decay 5e-4 --epochs 200
            """)

    @Option(help: ArgumentHelp(
        "Read options from a YAML (or JSON) file: flag names without the dashes, e.g. `hidden: 256`.",
        discussion: """
        A report written by --json-out works too: its settings repeat the run. Flags on the command line override \
        the file; the file overrides --recipe.
        """,
        valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp(
        "Start from a named configuration: \(TrainRecipe.all.map(\.name).joined(separator: ", ")).",
        discussion: TrainRecipe.all.map { "\($0.name): \($0.summary)." }.joined(separator: " "),
        valueName: "name"))
    var recipe: String?

    @Option(name: .customLong("dataset"), help: ArgumentHelp(
        "A dataset directory (halo-dataset format) or a synthetic spec (default: \(DatasetSource.defaultSynthetic)). With --partitions, checked against the parts' dataset fingerprint.",
        valueName: "dir|synthetic:…"))
    var datasetOption: String?

    /// The dataset to load when no parts are given.
    var dataset: String { datasetOption ?? DatasetSource.defaultSynthetic }

    @Option(help: "Model: gcn (symmetric-normalised) or sage (GraphSAGE mean).")
    var model: ModelConfiguration.Kind = .gcn

    // Numeric options parse their value unconditionally, so that `--epochs -1` reaches `validate()` and is refused
    // for being negative, instead of the parser taking `-1` for a flag and reporting a missing value.

    @Option(parsing: .unconditional, help: "Number of graph layers (1 to \(Self.maximumLayers)).")
    var layers: Int = 2

    @Option(parsing: .unconditional, help: "Width of hidden layers (1 to \(Self.maximumHidden)).")
    var hidden: Int = 256

    /// Deeper GCNs than this over-smooth without residual tricks this model lacks (the deepest published GCN
    /// variants stop at 64); far deeper stacks only ever ran here as a way to exhaust memory.
    static let maximumLayers = 64
    /// 2^16: one 65536 × 65536 float weight with its gradient and Adam moments is already 64 GiB, beyond any single
    /// machine this runs on; wider layers can only be a typo. The memory estimate judges sizes below the bound.
    static let maximumHidden = 65536

    @Option(parsing: .unconditional, help: "Dropout rate after each hidden layer.")
    var dropout: Float = 0.5

    @Option(parsing: .unconditional, help: "Dropout rate on the input features.")
    var inputDropout: Float = 0

    @Option(help: ArgumentHelp(
        "Normalisation after hidden convolutions: none or layernorm.",
        discussion: """
        Default none: measured with bench/defaults.sh (GCN-2, hidden 256, 3 seeds), LayerNorm cost 4.1 points of \
        test accuracy on Cora and 3.2 on CiteSeer and changed Amazon-Photo and Coauthor-Physics by under 0.3. The \
        AdaQP and PipeQS sources use LayerNorm: --recipe adaqp|pipegcn|pipeqs sets it.
        """))
    var norm: ModelConfiguration.Normalization = .none

    @Flag(help: "Divide each node's features by their sum (Kipf & Welling's preprocessing).")
    var normalizeFeatures = false

    @Option(parsing: .unconditional, help: "Adam learning rate.")
    var lr: Float = 0.01

    @Option(parsing: .unconditional, help: "L2 weight decay added to the gradient (as torch.optim.Adam).")
    var weightDecay: Float = 0

    @Option(parsing: .unconditional, help: "Training epochs.")
    var epochs: Int = 200

    @Option(parsing: .unconditional, help: "Seed of every random draw (initialisation, dropout, synthetic data).")
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "Evaluate every N epochs (and after the last).")
    var evalEvery: Int = 1

    @Option(help: ArgumentHelp(
        "The score reported and maximised by model selection: accuracy, roc-auc or micro-f1.",
        discussion: """
        Default: the task's standard, ROC-AUC for binary tasks (where one class may dominate, so accuracy says \
        little), micro-F1 for multi-label ones, accuracy otherwise. The JSON's `metric` names it; its `*_acc` fields \
        hold it whatever it is.
        """,
        valueName: "metric"))
    var metric: EvaluationMetric?

    @Option(help: ArgumentHelp(
        "How halo messages travel: vanilla, adaqp, adaqp-q, adaqp-p, pipegcn or pipeqs.",
        discussion: """
        vanilla: fp32, synchronous. adaqp: quantized (--assign) and central work overlapped with marginal \
        traffic; adaqp-q and adaqp-p are its halves alone. pipegcn: every layer uses the halo rows and gradients \
        its peers sent one epoch earlier, while this epoch's travel (staleness exactly 1). pipeqs: the newest block \
        that has arrived, at most --max-staleness epochs old; a late link is bypassed with its cached block; each \
        link's bit width falls when the link is congested (its transfers late, or over MPI the last epoch bound by \
        communication) and otherwise rises when its rows drift (--drift-threshold). With ranks, both pipelined \
        methods aggregate layer 0 once by default (see --precompute-layer0), so layer 0 is never stale. \
        Evaluation always exchanges synchronously at full precision.
        """))
    var method: TrainingMethod = .vanilla

    @Option(help: ArgumentHelp(
        "How weight gradients travel in the all-reduce between ranks: none (float32), bf16 or int8.",
        discussion: """
        bf16 halves the all-reduce's bytes, int8 (8-bit stochastic rounding in rows of 256 values) cuts them to \
        about a quarter. Both use error feedback: what a rank's rounding loses in one step is added to its gradient \
        in the next, and the owner of each shard of the sum does the same for the sum, so the error does not pile \
        up; the residuals are saved in checkpoints. The sum travels as a reduce-scatter then an all-gather over \
        the transport's channels, and every rank decodes the same bytes, so the ranks' models stay identical. \
        For every method; halo messages are not affected (docs/gradient-compression.md has the measured accuracy and speed).
        """,
        valueName: "none|bf16|int8"))
    var gradCompression: GradientCompression = .none

    @Flag(inversion: .prefixedNo, help: ArgumentHelp(
        "Start each layer's gradient all-reduce as soon as backward has finished the layer (default), or with --no-overlap-allreduce all of them after backward.",
        discussion: "The sums are the same either way; --no-overlap-allreduce is the un-overlapped baseline the report's blocked all-reduce time (allreduce_s) can be compared with."))
    var overlapAllreduce = true

    @Option(help: ArgumentHelp(
        "Form the first layer's weight gradient in this many pieces of rows (at most \(WeightGradientPieces.maximumPieces)), each summed over the ranks as soon as it is formed.",
        discussion: "Default, with float32 sums started during backward, a host calibration and no column blocks, on ranks as threads or two MPI ranks: a cut chosen from the calibrated product and the sum's time measured before training, and chosen again after the second epoch (when epochs are left) from the products as they ran; pieces shrink towards the end where the link is fast and grow where it is slow (the report's first_layer_plan.weight_gradient_schedule). Otherwise the equal count the host's calibration makes pay (first_layer_plan.weight_gradient_pieces; one without a calibration). Each piece after the first costs a pass over the layer's output gradient and hides more of the layer's all-reduce behind the next piece's product. This option cuts into equal pieces. With float32 sums (no --grad-compression) every cut trains the same model; every piece but the last holds at least 32768 values, so small layers get fewer.",
        valueName: "count"))
    var weightGradientPieces: Int?

    @Option(help: ArgumentHelp("AdaQP bit widths: adaptive (solved every --assign-cycle epochs), uniform:2|4|8, or random.",
                               valueName: "scheme"))
    var assign: AssignmentScheme = .adaptive

    @Option(parsing: .unconditional, help: "Epochs between AdaQP re-assignments (the first cycle runs at 8 bits while variance is traced).")
    var assignCycle: Int = 50

    @Option(parsing: .unconditional, help: "Rows per group in AdaQP's assignment problem.")
    var groupSize: Int = 100

    @Option(parsing: .unconditional, help: "AdaQP's trade-off: weight of quantization variance against communication time, in [0, 1].")
    var lambda: Double = 0.5

    @Option(help: ArgumentHelp(
        "pipegcn's first epoch: sync (waits for its own messages) or zeros (PipeGCN's published behaviour).",
        valueName: "sync|zeros"))
    var pipelineWarmup: PipelineSettings.Warmup = .sync

    @Option(parsing: .unconditional, help: ArgumentHelp("Smoothing of stale blocks, avg = m·avg + (1−m)·received, 0 = off (default: 0.95 for pipegcn, as PipeGCN-GF; 0 for pipeqs).",
                               valueName: "m"))
    var smoothing: Double?

    @Option(parsing: .unconditional, help: "pipeqs: a cached block older than this many epochs is never used; the rank waits instead.")
    var maxStaleness: Int = 2

    @Option(parsing: .unconditional, help: ArgumentHelp("pipeqs: drift (1 − cos)/2 between successive blocks above which a link's bits step up and bypass is off.",
                               discussion: "The published value is 0.1; with dropout 0.5, blocks drift 0.07–0.20 per epoch from the dropout masks alone (at most 0.03 without), so the default is 0.3.",
                               valueName: "E"))
    var driftThreshold: Double = 0.3

    @Flag(inversion: .prefixedNo, help: "pipeqs: let a late link be bypassed with its cached block (ablation: --no-bypass).")
    var bypass = true

    @Flag(inversion: .prefixedNo, help: "pipeqs: move bit widths with drift and congestion (ablation: --no-adaptive-bits keeps --initial-bits).")
    var adaptiveBits = true

    @Option(parsing: .unconditional, help: ArgumentHelp("pipeqs: the bit width every link starts at: 2, 4, 8 or 32.", valueName: "bits"))
    var initialBits: Int = 8

    @Option(help: ArgumentHelp("pipeqs: gradients of a bypassed backward link: cached (default) or dropped (published PipeQS).",
                               valueName: "cached|dropped"))
    var bypassedGradients: PipelineSettings.BypassedGradients = .cached

    @Flag(name: .customLong("precompute-layer0"), inversion: .prefixedNo,
          help: ArgumentHelp(
            "Aggregate the input features once before training (Â·X), so layer 0 never aggregates or communicates again.",
            discussion: """
            Exact when there is no input dropout: Â·(X·W) = (Â·X)·W. Costs a dense copy of the aggregated features. \
            Default: when one process trains the whole graph (no --parts, --partitions or MPI) without input \
            dropout, on where the host calibration's cost model finds it cheaper than aggregating every epoch \
            (with --calibration off: on for dense features, or indicator features dense enough for table lookup); \
            with sparse features the model may keep the aggregate for the weight gradient only and form the forward \
            product from the features, Â·(X·W) (the hybrid path, docs/calibration.md). \
            With ranks: on for pipegcn and pipeqs under the same condition on the features and \
            without input dropout (layer 0's inputs never change, so a pipeline need not make layer 0 stale; \
            PipeGCN fetches boundary features once), otherwise off, and ranks exchange layer 0 every epoch as the \
            AdaQP paper does.
            """))
    var precomputeLayer0: Bool?

    @Option(parsing: .unconditional, help: "Ranks (graph partitions) to train on. With --transport local they are threads of this process.")
    var parts: Int?

    @Option(help: "How ranks communicate: local (threads of one process) or mpi (processes started by mpirun).")
    var transport: TransportKind = .local

    /// Used when --dataset is partitioned on the fly (as `halo partition` does).
    @OptionGroup var partitioner: PartitionerOptions

    @Option(help: ArgumentHelp("Load ready-made parts written by `halo partition` instead of partitioning --dataset.",
                               valueName: "dir"))
    var partitions: String?

    @Option(parsing: .unconditional, help: "Compute threads per rank (default: the cores divided among the ranks on this host).")
    var threads: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "GiB this run may hold on this host (default: what the machine has available now).",
        discussion: """
        The run's peak is estimated before loading and again once its parts and their halos exist, before the first \
        epoch; a run whose estimate exceeds this is refused with the estimate's terms (docs/scale.md). Leave room \
        for other work on a shared machine with it.
        """,
        valueName: "GiB"))
    var memoryBudget: Double?

    @Option(help: ArgumentHelp(
        "Evaluate wide layers in this many column blocks, or auto: only as many as the run needs to fit in memory.",
        discussion: """
        A layer's largest transient matrices are the rows it aggregates (its own rows and every halo row) and the \
        messages that fill them. In N column blocks it multiplies, exchanges and aggregates one block of columns at \
        a time, so those hold 1/N of their columns, at the price of N exchanges and N passes over the graph per \
        layer; what it computes changes only in the order of floating-point sums. auto tries 1, 2, 4 and 8 against \
        the memory estimate and takes the fewest that fit (1 whenever the run fits whole). For methods that send \
        full-precision rows within the layer (vanilla, adaqp-p): quantized and pipelined messages are kept whole. \
        Blocks are at least 32 columns wide, so narrow layers stay whole (docs/scale.md).
        """,
        valueName: "auto|N"))
    var columnBlocks: ColumnBlockChoice = .automatic

    @Option(help: ArgumentHelp(
        "Write the run's configuration, every epoch and the summary as JSON.",
        discussion: """
        Checked before any work. Rewritten atomically after every evaluated epoch, so a run that is killed or \
        stops early leaves a valid report of the epochs done; "complete" says whether the run finished.
        """,
        valueName: "file"))
    var jsonOut: String?

    @OptionGroup(title: "Checkpoints")
    var checkpointOptions: CheckpointOptions

    @OptionGroup var tensorBoard: TensorBoardOption

    @OptionGroup(title: "First layer: host calibration")
    var calibration: CalibrationOptions

    @Flag(help: "Print only the summary, not one line per epoch.")
    var quiet = false

    func validate() throws {
        // NaN fails every range check below, but infinity passes "positive" and "non-negative", and a run with an
        // infinite rate computes NaN from its first update on.
        let floatingOptions: [(name: String, value: Double?)] = [
            ("--dropout", Double(dropout)), ("--input-dropout", Double(inputDropout)), ("--lr", Double(lr)),
            ("--weight-decay", Double(weightDecay)), ("--lambda", lambda), ("--smoothing", smoothing),
            ("--drift-threshold", driftThreshold), ("--memory-budget", memoryBudget),
        ]
        for option in floatingOptions {
            if let value = option.value, !value.isFinite {
                throw ValidationError("\(option.name) must be a finite number, got \(value)")
            }
        }
        guard (1...Self.maximumLayers).contains(layers) else {
            throw ValidationError("--layers must be in 1...\(Self.maximumLayers), got \(layers)")
        }
        guard (1...Self.maximumHidden).contains(hidden) else {
            throw ValidationError("--hidden must be in 1...\(Self.maximumHidden), got \(hidden)")
        }
        guard (0..<1).contains(dropout) else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        guard (0..<1).contains(inputDropout) else { throw ValidationError("--input-dropout must be in [0, 1), got \(inputDropout)") }
        guard lr > 0 else { throw ValidationError("--lr must be positive, got \(lr)") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must be non-negative, got \(weightDecay)") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard evalEvery >= 1 else { throw ValidationError("--eval-every must be at least 1, got \(evalEvery)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if let memoryBudget, memoryBudget <= 0 { throw ValidationError("--memory-budget must be positive, got \(memoryBudget)") }
        if let parts, parts < 1 { throw ValidationError("--parts must be at least 1, got \(parts)") }
        if let pieces = weightGradientPieces, !(1...WeightGradientPieces.maximumPieces).contains(pieces) {
            throw ValidationError("--weight-gradient-pieces must be in 1...\(WeightGradientPieces.maximumPieces), got \(pieces)")
        }
        if let blocks = columnBlocks.count, blocks > 1, !method.allowsColumnBlocks {
            throw ValidationError("--column-blocks \(blocks) needs a method that sends full-precision rows within the layer (vanilla, adaqp-p); \(method.rawValue) quantizes or caches whole rows")
        }
        guard assignCycle >= 1 else { throw ValidationError("--assign-cycle must be at least 1, got \(assignCycle)") }
        guard groupSize >= 1 else { throw ValidationError("--group-size must be at least 1, got \(groupSize)") }
        guard (0...1).contains(lambda) else { throw ValidationError("--lambda must be in [0, 1], got \(lambda)") }
        if let smoothing, !(0..<1).contains(smoothing) {
            throw ValidationError("--smoothing must be in [0, 1), got \(smoothing)")
        }
        guard maxStaleness >= 1 else { throw ValidationError("--max-staleness must be at least 1, got \(maxStaleness)") }
        guard driftThreshold.isFinite, driftThreshold >= 0 else {
            throw ValidationError("--drift-threshold must be a non-negative number, got \(driftThreshold)")
        }
        guard BitWidth(rawValue: initialBits) != nil else {
            throw ValidationError("--initial-bits must be 2, 4, 8 or 32, got \(initialBits)")
        }
    }

    var configuration: TrainingConfiguration {
        TrainingConfiguration(
            dataset: partitions ?? dataset,
            model: ModelConfiguration(kind: model, layers: layers, hiddenWidth: hidden, dropout: dropout,
                                      inputDropout: inputDropout, normalization: norm),
            optimizer: Adam.Hyperparameters(learningRate: lr, weightDecay: weightDecay),
            epochs: epochs, seed: seed, evaluateEvery: evalEvery, threads: threads ?? 0, method: method,
            quantization: QuantizationSettings(assignment: assign, assignCycle: assignCycle, groupSize: groupSize,
                                               lambda: lambda, precomputeFirstLayer: precomputeLayer0),
            pipeline: PipelineSettings(warmup: pipelineWarmup, smoothing: smoothing ?? method.defaultSmoothing, maxStaleness: maxStaleness,
                                       driftThreshold: driftThreshold, bypass: bypass, adaptiveBits: adaptiveBits,
                                       initialBits: BitWidth(rawValue: initialBits) ?? .eight,
                                       bypassedGradients: bypassedGradients),
            metric: metric, normalizeFeatures: normalizeFeatures, columnBlocks: columnBlocks.count,
            gradientCompression: gradCompression, overlapsGradientReduction: overlapAllreduce,
            weightGradientPieces: weightGradientPieces)
    }

    func run() throws {
        do {
            switch transport {
            case .local: try runInProcess()
            case .mpi: try runOverMPI()
            }
        } catch let error as TrainingDiverged {
            noteReportKept(after: error)
            throw error
        }
    }

    /// Says where the epochs before a divergence are (the report file written by rank 0).
    private func noteReportKept(after error: TrainingDiverged) {
        guard let jsonOut else { return }
        let kept = error.epoch == 1 ? "the epoch" : "the \(error.epoch) epochs"
        FileHandle.standardError.write(Data("halo: \(jsonOut) keeps \(kept) done before it, with \"complete\": false\n".utf8))
    }

    /// Reads the parts' manifest when --partitions is given, checking --parts and --dataset agree with it.
    private func partitionManifest() throws -> PartitionManifest? {
        guard let partitions else { return nil }
        let manifest = try PartitionStore.readManifest(directory: partitions)
        if manifest.partitioningID == nil {
            // Format version 1: still valid, but a part of another partitioning is caught only by the cross-part sums.
            Logger(label: "halo.train").warning("\(partitions) was written without a partitioning id (format version \(manifest.formatVersion)); parts are not checked to come from one partitioning run. Rewrite it with `halo partition` to add one.")
        }
        if let parts, parts != manifest.parts {
            throw ValidationError("--parts \(parts) disagrees with \(partitions), which holds \(manifest.parts) parts")
        }
        try checkDatasetMatches(manifest, directory: partitions)
        return manifest
    }

    /// The --json-out destination, checked before any work so that a run cannot be lost to an unwritable path.
    private func reportFile() throws -> ReportFile? {
        guard let jsonOut else { return nil }
        do {
            return try ReportFile(path: jsonOut)
        } catch let error as ReportFileError {
            throw ValidationError("--json-out \(error.path): \(error.reason)")
        }
    }

    /// What a refusal for lack of memory tells the user to change.
    var memoryHint: String {
        """
        lower --hidden (\(hidden)) or --layers (\(layers)), use a smaller dataset, or spread the ranks over several \
        machines with mpirun (see README)
        """
    }

    /// The run these options describe, on `ranks`. The job logs through `logger` (nil: silently, as ranks other
    /// than 0 of an MPI group do).
    private func job(ranks: TrainingJob.Ranks, checkpoints: CheckpointPlan?, stopRequest: StopRequest,
                     logger: Logger?) -> TrainingJob {
        var job = TrainingJob(configuration: configuration,
                              source: partitions.map { .parts(directory: $0) } ?? .dataset(dataset), ranks: ranks)
        job.partitionMethod = partitioner.method
        job.threadsPerRank = threads
        job.checkpoints = checkpoints
        job.stopRequest = stopRequest
        job.memoryHint = memoryHint
        job.memoryBudget = memoryBudget.map { $0 * 1_073_741_824 }
        job.calibration = calibration.choice
        job.featureRepresentation = calibration.featureRepresentation
        if let logger {
            job.log = { logger.info("\($0)") }
            job.note = { logger.notice("\($0)") }
        }
        return job
    }

    private func runInProcess() throws {
        let logger = Logger(label: "halo.train")
        let interrupts = try InterruptHandling(announce: true)
        let reportFile = try reportFile()
        let eventLog = try tensorBoard.openLog()
        let report: TrainingReport
        do {
            let manifest = try partitionManifest()
            let ranks = manifest?.parts ?? parts ?? 1
            let checkpoints = try checkpointOptions.plan(configuration: configuration, ranks: ranks, managesFolder: true)
            // One rank with no parts given is the single-process reference: the whole graph, no exchange.
            let job = job(ranks: manifest == nil && ranks == 1 ? .single : .threads(ranks), checkpoints: checkpoints,
                          stopRequest: interrupts.stopRequest, logger: logger)
            let progress = ProgressPrinter(totalEpochs: epochs, enabled: !quiet)
            report = try job.run(onEpoch: { progress.show($0); eventLog?.record($0) },
                                 onProgress: { try reportFile?.keep($0); try eventLog?.record($0) })
            progress.finish()
        } catch {
            eventLog?.abandon()
            throw error
        }
        try eventLog?.finish(report)
        try finish(report, to: reportFile, logger: logger)
        try exitIfStopped(report, interrupts)
    }

    private func runOverMPI() throws {
        let logger = Logger(label: "halo.train")
        let mpi: MPIEnvironment
        do {
            mpi = try MPIEnvironment()
        } catch MPIEnvironmentError.notLaunchedByMPI {
            throw ValidationError("--transport mpi needs a launcher: mpirun -np P halo train --transport mpi … (see README)")
        }
        defer { mpi.finalize() }
        // After MPI's initialisation, which must not replace these handlers; every rank is signalled by mpirun.
        let interrupts = try InterruptHandling(announce: mpi.rank == 0)
        let transport = try mpi.makeTransport()
        var stopped: TrainingReport?
        // The event log, for the failure path: a run that fails before its first epoch leaves no empty file.
        var openedLog: TrainingEventLog?
        do {
            // Rank 0 alone writes the report, on its host: the path need not exist on the others'.
            let reportFile = mpi.rank == 0 ? try reportFile() : nil
            let eventLog = mpi.rank == 0 ? try tensorBoard.openLog() : nil
            openedLog = eventLog
            let ranks = mpi.worldSize
            if let parts, parts != ranks {
                throw ValidationError("--parts \(parts) but mpirun started \(ranks) ranks; they must be equal")
            }
            // The job refuses parts that do not number the ranks.
            _ = try partitionManifest()
            let checkpoints = try checkpointOptions.plan(configuration: configuration, ranks: ranks, managesFolder: mpi.rank == 0)
            let onHost = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? ranks
            let job = job(ranks: .member(transport, onHost: onHost), checkpoints: checkpoints,
                          stopRequest: interrupts.stopRequest, logger: mpi.rank == 0 ? logger : nil)
            let progress = ProgressPrinter(totalEpochs: epochs, enabled: !quiet && mpi.rank == 0)
            let report = try job.run(onEpoch: { progress.show($0); eventLog?.record($0) },
                                     onProgress: { try eventLog?.record($0); try reportFile?.keep($0) })
            progress.finish()
            try eventLog?.finish(report)
            if mpi.rank == 0 { try finish(report, to: reportFile, logger: logger) }
            try transport.barrier()
            if report.stopReason != nil { stopped = report }
        } catch {
            openedLog?.abandon()
            if mpi.rank == 0, let diverged = error as? TrainingDiverged { noteReportKept(after: diverged) }
            // Ends every rank of the job (MPI_Abort) with this rank's reason, instead of leaving peers waiting.
            transport.fail(reason: String(describing: UserFacingError.readable(error)))
            throw error
        }
        // Outside the `do`: a stop is not a failure, and must not abort the job.
        if let stopped { try exitIfStopped(stopped, interrupts) }
    }

    private func finish(_ report: TrainingReport, to reportFile: ReportFile?, logger: Logger) throws {
        print(report.summaryLine)
        if let line = report.memoryLine { logger.info("\(line)") }
        if let reportFile {
            try reportFile.write(report)
            logger.info("wrote \(reportFile.path)")
        }
        let epochs = report.epochs.count == 1 ? "1 epoch" : "\(report.epochs.count) epochs"
        // The trainer saves a checkpoint after the last epoch it trains, stopped or not.
        let checkpoint = (checkpointOptions.resume ?? checkpointOptions.checkpoint).map { "checkpoint of \(epochs) in \($0)" }
        if let reason = report.stopReason {
            // Said after the write, so it names only what is really on disk.
            var saved = reportFile.map { ["wrote \($0.path) with \(epochs) and \"complete\": false"] } ?? []
            if let checkpoint { saved.append("saved the \(checkpoint) (continue with --resume)") }
            let said = saved.isEmpty ? "nothing saved (no --json-out, no --checkpoint) after \(epochs)" : saved.joined(separator: "; ")
            FileHandle.standardError.write(Data("halo: \(reason): \(said)\n".utf8))
        } else if let checkpoint {
            logger.info("saved the \(checkpoint)")
        }
    }

    /// Ends a run that stopped on a signal with the status a shell gives a process killed by it (130, 143), once
    /// its report is saved. A checkpoint, when there is one, belongs before this, beside the report.
    private func exitIfStopped(_ report: TrainingReport, _ interrupts: InterruptHandling) throws {
        guard report.stopReason != nil else { return }
        throw ExitCode(interrupts.exitStatus)
    }
}

extension ReportFile {
    /// Writes a report of the epochs done so far: in the background while the run goes on, at once (before the
    /// error ends the process) when it says why the run stopped.
    func keep(_ report: TrainingReport) throws {
        if report.stopReason != nil { try write(report) } else { try writeProgress(report) }
    }
}

extension ModelConfiguration.Kind: ExpressibleByArgument {}
extension TrainingMethod: ExpressibleByArgument {}
extension GradientCompression: ExpressibleByArgument {}
extension PipelineSettings.Warmup: ExpressibleByArgument {}
extension PipelineSettings.BypassedGradients: ExpressibleByArgument {}
extension AssignmentScheme: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}
extension ModelConfiguration.Normalization: ExpressibleByArgument {}
extension EvaluationMetric: ExpressibleByArgument {}
extension FeatureRepresentation: ExpressibleByArgument {}

extension TrainingReport {
    /// The largest rank's peak bytes of each kind the run held, e.g. "memory held (peak, largest of 4 ranks):
    /// graph_structure 1.2 MiB, input_features 40.0 MiB, …".
    var memoryLine: String? {
        guard let byKind = memoryBytesByKind, let ranks = byKind.values.first?.count else { return nil }
        let parts = MemoryTally.Kind.allCases.compactMap { kind -> String? in
            guard let largest = byKind[kind.rawValue]?.max(), largest > 0 else { return nil }
            return String(format: "%@ %.1f MiB", kind.rawValue, Double(largest) / 1_048_576)
        }
        let scope = ranks == 1 ? "" : ", largest of \(ranks) ranks"
        return "memory held by kind (peak\(scope)): " + parts.joined(separator: ", ")
    }

    var summaryLine: String {
        func pct(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "n/a" }
        return "best val \(metric.map { "\($0) " } ?? "")\(pct(bestValidationAccuracy)) at epoch \(bestValidationEpoch.map(String.init) ?? "n/a")"
            + " | test at best val \(pct(testAccuracyAtBestValidation)) | final test \(pct(finalTestAccuracy))"
            + String(format: " | epoch median %.4f s", epochTimeMedian)
            + (evaluatedEpochTimeMedian.map { String(format: " (%.4f s with evaluation)", $0) } ?? "")
            + String(format: " | peak RSS %.1f MiB", Double(peakRSSBytes) / 1_048_576)
    }
}
