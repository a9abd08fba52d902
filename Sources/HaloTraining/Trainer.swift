import HaloGraph
import HaloNN
import HaloTensor

/// Full-graph training of one rank's shard: forward, loss, backward, gradient all-reduce, Adam, evaluation.
///
/// The trainer is written once for any number of ranks: the exchange moves halo rows, the collectives sum
/// gradients and metric counts. With `NoBoundaryExchange` and `SingleRank` it is the single-process reference.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let shard: RankShard
    public let model: GNNModel
    let optimizer: Adam
    let exchange: any HaloExchange
    let collectives: any Collectives
    /// The compressed gradient all-reduce and its error-feedback residuals (nil: float32, or one rank).
    let gradientReduction: CompressedGradientReduction?
    /// The last step's gradient reduction, first bucket started to last completed (nil when unknown).
    private var lastGradientReductionSpan: Double?
    /// The largest bytes by kind this rank has held, sampled after each forward pass (when the activations kept
    /// for backward are all alive) and after each backward pass (gradients and the exchange's caches).
    public private(set) var peakMemory = MemoryTally()
    /// Called on every rank after each epoch's record is complete, with the epoch and how many epochs this call of
    /// `train` has run: where a run adjusts its plan from what it measured (collective calls are allowed, as every
    /// rank gets here at the same point).
    var afterEpoch: ((_ epoch: Int, _ epochsRun: Int) throws -> Void)?
    private let pool: ComputePool
    private let random: CounterRandom

    /// Throws `TrainingSetupError` when the configuration asks for what the exchange or collectives cannot do:
    /// column blocks with an exchange whose messages are whole rows, a compressed gradient sum without channels.
    public init(configuration: TrainingConfiguration, shard: RankShard, classCount: Int,
                exchange: any HaloExchange = NoBoundaryExchange(), collectives: any Collectives = SingleRank(),
                pool: ComputePool) throws {
        self.configuration = configuration
        self.shard = shard
        self.exchange = exchange
        self.collectives = collectives
        self.pool = pool
        random = CounterRandom(seed: configuration.seed)
        model = GNNModel(configuration: configuration.model, inputWidth: shard.features.width,
                         outputWidth: classCount, random: random)
        optimizer = Adam(parameters: model.parameters, hyperparameters: configuration.optimizer)
        let blocks = configuration.columnBlocks ?? 1
        guard blocks >= 1 else { throw TrainingSetupError(message: "column blocks must be at least 1, got \(blocks)") }
        if let pieces = configuration.weightGradientPieces, !(1...WeightGradientPieces.maximumPieces).contains(pieces) {
            throw TrainingSetupError(message: "weight-gradient pieces must be in 1...\(WeightGradientPieces.maximumPieces), got \(pieces)")
        }
        guard blocks == 1 || exchange.acceptsColumnBlocks else {
            throw TrainingSetupError(message: "\(configuration.method.rawValue) exchanges whole rows: column blocks (\(blocks)) need a full-precision synchronous or overlapped method (vanilla, adaqp-p)")
        }
        model.columnBlockCount = blocks
        if let compression = configuration.gradientCompression, compression != .none, collectives.worldSize > 1 {
            guard let channels = collectives.channels else {
                throw TrainingSetupError(message: "gradient compression \(compression) needs collectives with point-to-point channels; these have none")
            }
            gradientReduction = CompressedGradientReduction(
                compression: compression, channels: channels, rank: collectives.rank, worldSize: collectives.worldSize,
                seed: configuration.seed)
        } else {
            gradientReduction = nil
        }
    }

    /// Aggregates the input features once (one full-precision exchange), so the first layer never communicates.
    public func precomputeFirstAggregation() throws {
        let context = StepContext(epoch: 0, training: false, random: random, pool: pool)
        try model.precomputeFirstAggregation(shard.features, operator: shard.propagation, exchange: exchange, context: context)
    }

    /// The first layer's forward pass timed through the precomputed `aggregate` and through the features, on this
    /// rank's data (`FirstLayerForwardTrial`).
    func timeFirstLayerForwards(aggregate: Matrix) -> [FirstLayerPath: Double] {
        FirstLayerForwardTrial.measure(
            layer: model.convolutions[0], aggregate: aggregate, features: shard.features, operator: shard.propagation,
            context: StepContext(epoch: 0, training: false, random: random, pool: pool))
    }

    /// Communication accounting of the exchange and the collectives since the last call, then reset.
    private func takeStatistics() -> CommunicationStatistics {
        exchange.takeStatistics() + collectives.takeStatistics()
    }

    /// One optimisation step; returns the global training loss.
    ///
    /// Throws `TrainingDiverged`, before updating the parameters, when the global loss or an all-reduced gradient
    /// is not finite: every rank sees the same values, so every rank throws at the same step.
    public func step(epoch: Int) throws -> Double {
        let context = StepContext(epoch: epoch, training: true, random: random, pool: pool)
        model.zeroGradients()
        let logits = try model.forward(shard.features, nodeIDs: shard.nodeIDs, operator: shard.propagation,
                                       exchange: exchange, context: context)
        // Forward's activations are at their most now; backward releases them as it goes.
        peakMemory.keepMaximum(memoryTally())
        let loss: Loss = shard.labels.isMultiLabel ? .sigmoidBinaryCrossEntropy : .softmaxCrossEntropy
        let (localLoss, gradient) = loss.evaluate(
            logits: logits, targets: shard.lossTargets, mask: shard.split.train,
            globalTrainingCount: shard.globalCounts.train, pool: pool)
        // Each layer's gradient sum over ranks starts as soon as backward has finished that layer, and its
        // neighbour weight's in pieces of rows as they are formed (or, with `overlapsGradientReduction` false, all of
        // them after backward, in the same pieces: the same sums). One rank sums nothing, so it forms them whole.
        let buckets = GradientBuckets(collectives: collectives, compression: gradientReduction, epoch: epoch,
                                      overlapping: configuration.overlapsGradientReduction ?? true)
        try model.backward(
            gradient, operator: shard.propagation, exchange: exchange, context: context,
            layerFinished: { layer in try buckets.start(model.parameters(ofLayer: layer)) },
            weightRowsFinished: collectives.worldSize > 1 ? { weight, rows in try buckets.start(rows: rows, of: weight) } : nil)
        lastGradientReductionSpan = try buckets.finish()
        peakMemory.keepMaximum(memoryTally())
        let nonFinite = firstNonFiniteGradient()
        var total = [localLoss]
        try collectives.allReduceSum(&total)
        // The loss first: it is what the user sees; a non-finite gradient with a finite loss is rarer.
        guard total[0].isFinite else {
            throw TrainingDiverged(epoch: epoch, epochCount: configuration.epochs, cause: .loss(total[0]))
        }
        if let nonFinite {
            throw TrainingDiverged(epoch: epoch, epochCount: configuration.epochs,
                                   cause: .gradient(parameter: nonFinite.parameter, value: nonFinite.value))
        }
        optimizer.step(pool: pool)
        return total[0]
    }

    /// What this rank holds now, by kind (input features first: a layer's saved input may be them).
    public func memoryTally() -> MemoryTally {
        var tally = MemoryTally()
        shard.features.tally(into: &tally, as: .inputFeatures)
        shard.propagation.tally(into: &tally)
        model.tally(into: &tally)
        optimizer.tally(into: &tally)
        exchange.tally(into: &tally)
        gradientReduction?.tally(into: &tally)
        return tally
    }

    /// The first parameter whose (all-reduced) gradient holds a value that is not finite, and that value.
    ///
    /// One pass over the gradients, each as long as its parameter: small next to the step that computed them.
    private func firstNonFiniteGradient() -> (parameter: String, value: Float)? {
        for p in model.parameters {
            let found: Float? = p.gradient.storage.withUnsafeBufferPointer { g in
                guard let base = g.baseAddress else { return nil }
                // x − x is 0 for every finite x and NaN otherwise: summing it, eight lanes at a time, needs no
                // branch per element, and the sum is NaN exactly when some element is not finite.
                var lanes = SIMD8<Float>()
                var i = 0
                while i + 8 <= g.count {
                    let v = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD8<Float>.self)
                    lanes += v - v
                    i += 8
                }
                var probe = lanes.sum()
                while i < g.count {
                    probe += g[i] - g[i]
                    i += 1
                }
                return probe.isNaN ? g.first { !$0.isFinite } : nil
            }
            if let found { return (p.name, found) }
        }
        return nil
    }

    /// The metric this run reports and selects by: the configuration's, or the task's standard one.
    public var metric: EvaluationMetric { configuration.metric ?? .standard(for: shard.labels) }

    /// Train / validation / test scores of the current model (no dropout) by `metric`, global over ranks.
    public func evaluate(epoch: Int) throws -> (train: Double?, validation: Double?, test: Double?) {
        let context = StepContext(epoch: epoch, training: false, random: random, pool: pool)
        let logits = try model.forward(shard.features, nodeIDs: shard.nodeIDs, operator: shard.propagation,
                                       exchange: exchange, context: context)
        let masks = [shard.split.train, shard.split.validation, shard.split.test]
        let scores: [Double?]
        switch metric {
        case .accuracy, .microF1:
            // Accuracy and micro-F1 are ratios of counts, which sum over ranks.
            let counts = masks.map { ClassificationCounts.count(logits: logits, labels: shard.labels, mask: $0) }
            var fields = counts.flatMap(\.fields)
            try collectives.allReduceSum(&fields)
            let n = ClassificationCounts.fieldCount
            scores = (0..<3).map {
                ClassificationCounts(fields: fields[($0 * n)..<(($0 + 1) * n)], multiLabel: shard.labels.isMultiLabel).score
            }
        case .rocAUC:
            scores = try rocAUC(logits, masks: masks)
        }
        return (scores[0], scores[1], scores[2])
    }

    /// ROC-AUC on each mask. A rank ranking only its own nodes cannot know the global ranks, so every rank gathers
    /// every rank's (score, truth) pairs: 5 bytes per evaluated node, on the scale of one epoch's halo traffic.
    private func rocAUC(_ logits: Matrix, masks: [[Bool]]) throws -> [Double?] {
        guard case .singleLabel(let classes, _) = shard.labels, logits.cols == 2 else {
            throw TrainingSetupError(message: "--metric roc-auc: \(metric.unsuitability(for: shard.labels) ?? "needs a binary task")")
        }
        var writer = ByteWriter()
        for mask in masks {
            let rows = (0..<logits.rows).filter { mask[$0] }
            // The positive class's log-odds against the other: monotone in its softmax probability.
            writer.append(elements: rows.map { logits[$0, 1] - logits[$0, 0] })
            writer.append(elements: rows.map { UInt8(classes[$0] == 1 ? 1 : 0) })
        }
        let gathered = try collectives.allGather(writer.bytes)
        var scores = [[Float]](repeating: [], count: masks.count), truths = [[Bool]](repeating: [], count: masks.count)
        for bytes in gathered {
            var reader = ByteReader(bytes)
            for m in masks.indices {
                scores[m] += try reader.readElements(of: Float.self)
                truths[m] += try reader.readElements(of: UInt8.self).map { $0 != 0 }
            }
        }
        return masks.indices.map { ROCCurveArea.area(scores: scores[$0], positive: truths[$0]) }
    }

    /// Runs all epochs; `onEpoch` sees each record as it completes (progress display).
    ///
    /// `onProgress` receives a report of the epochs done so far (`complete` false) after every evaluated epoch but
    /// the last, so a caller can keep a valid report on disk while the run goes on; the final report is the return
    /// value. Every rank must pass the same configuration: the reports are built with collectives.
    ///
    /// A step whose loss or gradient is not finite ends the run with `TrainingDiverged`, after `onProgress` has
    /// received the report of the epochs before it, with `stopReason` set. A shard set with no training node at
    /// all is refused with `TrainingSetupError` before the first epoch.
    ///
    /// When `stopRequest` is set on any rank, every rank finishes the epoch it is in (evaluating it), drains the
    /// exchange and returns a report with `complete` false and a `stopReason` naming the request and the epoch.
    /// Every rank must pass a request or none: the decision rides on the per-epoch all-reduce.
    ///
    /// With `checkpoints`, the state is saved every `every` epochs, after the last epoch and after the epoch a
    /// stop was requested in (never after a diverged step: the last good checkpoint stays); with `resume`, the run
    /// first takes back the folder's checkpoint and goes on from the epoch after it, its report holding the epochs
    /// before too. Every rank must pass the same plan.
    public func train(environment: RunEnvironment, stopRequest: StopRequest? = nil, checkpoints: CheckpointPlan? = nil,
                      onEpoch: (EpochRecord) -> Void = { _ in },
                      onProgress: (TrainingReport) throws -> Void = { _ in }) throws -> TrainingReport {
        // With no training node the loss is 0, nothing is learnt, and the "best" validation score would be that of
        // the initial weights. The count is global, so every rank refuses alike.
        guard shard.globalCounts.train > 0 else {
            throw TrainingSetupError(message: "the training split of \(configuration.dataset) is empty: no node is marked for training")
        }
        if let reason = metric.unsuitability(for: shard.labels) {
            throw TrainingSetupError(message: "--metric \(metric) cannot judge \(configuration.dataset): \(reason)")
        }
        var records: [EpochRecord] = []
        var best: BestValidation?
        var firstEpoch = 0
        /// Training time of the epochs a resumed run took back.
        var earlierSeconds = 0.0
        if let checkpoints, checkpoints.resume {
            let resumed = try restoreCheckpoint(checkpoints)
            records = resumed.records
            firstEpoch = resumed.epochsDone
            earlierSeconds = resumed.trainingSeconds
            for record in records { best.consider(record) }
        }
        let total = Stopwatch()
        var trainingTime: Double { earlierSeconds + total.elapsed }
        var stopReason: String?
        for epoch in firstEpoch..<configuration.epochs {
            try exchange.beginEpoch(epoch)
            _ = takeStatistics()
            let watch = Stopwatch()
            let loss: Double
            do {
                loss = try step(epoch: epoch)
            } catch let diverged as TrainingDiverged {
                // Every rank is here (see `step`), so the report's collective is safe; the epochs kept are finite.
                var stopped = try report(environment: environment, records: records, best: best,
                                         trainingTime: trainingTime, complete: false)
                stopped.stopReason = diverged.description
                try onProgress(stopped)
                // Ranks leave together once the writer (rank 0) is done: over MPI the first rank to report its
                // error ends the job, which must not cut rank 0's write short.
                var done = [0.0]
                try collectives.allReduceSum(&done)
                throw diverged
            }
            var record = EpochRecord(epoch: epoch, loss: loss, time: watch.elapsed)
            let communication = takeStatistics()
            record.communicationWaitTime = communication.waitSeconds
            record.allReduceTime = communication.allReduceSeconds
            record.gradientReductionSpan = lastGradientReductionSpan
            record.quantizeTime = communication.quantizeSeconds
            record.computeTime = max(0, record.time - communication.waitSeconds - communication.allReduceSeconds
                                     - communication.quantizeSeconds)
            record.pipeline = try exchange.endEpoch(epoch, timing: EpochTiming(
                computeSeconds: record.computeTime,
                exposedCommunicationSeconds: communication.waitSeconds + communication.allReduceSeconds))
            if communication.transferSeconds > 0 {
                record.hiddenCommunicationFraction = max(0, 1 - communication.waitSeconds / communication.transferSeconds)
            }
            // Every rank's blocked all-reduce time rides along in this reduction (slots as `valuesOfEveryRank` fills
            // them, without a collective of its own): a slot per rank, zero except its own.
            var byRank = [Double](repeating: 0, count: collectives.worldSize > 1 ? collectives.worldSize : 0)
            if !byRank.isEmpty { byRank[collectives.rank] = communication.allReduceSeconds }
            var bytes = [Double(communication.haloBytesSent + communication.allReduceBytes),
                         Double(communication.forwardBytesSent),
                         Double(communication.haloBytesSent - communication.forwardBytesSent),
                         // The ranks that were asked to stop: all ranks see the same sum, so all stop together.
                         stopRequest?.isRequested == true ? 1 : 0] + byRank
            try collectives.allReduceSum(&bytes)
            record.bytesSent = Int(bytes[0])
            record.forwardBytesSent = Int(bytes[1])
            record.backwardBytesSent = Int(bytes[2])
            if !byRank.isEmpty { record.allReduceTimeByRank = Array(bytes[4...]) }
            let isLast = epoch == configuration.epochs - 1
            let stopping = bytes[3] > 0 && !isLast
            // The epoch a run stops after is evaluated, as the last epoch is: the report ends on known scores.
            let evaluated = (epoch + 1) % max(configuration.evaluateEvery, 1) == 0 || isLast || stopping
            if evaluated {
                let evaluation = Stopwatch()
                let scores = try evaluate(epoch: epoch)
                record.evaluationTime = evaluation.elapsed
                record.trainAccuracy = scores.train
                record.validationAccuracy = scores.validation
                record.testAccuracy = scores.test
                best.consider(record)
            }
            records.append(record)
            try afterEpoch?(epoch, epoch - firstEpoch + 1)
            onEpoch(record)
            if let checkpoints, (epoch + 1) % checkpoints.every == 0 || isLast || stopping {
                try saveCheckpoint(checkpoints, epochsDone: epoch + 1, records: records, trainingSeconds: trainingTime)
            }
            if stopping {
                // A rank whose peers alone were asked (only under MPI, one process per rank) still says why.
                let why = stopRequest?.reason ?? "stopped at another rank's request"
                stopReason = "\(why) after epoch \(epoch + 1)/\(configuration.epochs)"
                break
            }
            if evaluated && !isLast {
                try onProgress(report(environment: environment, records: records, best: best,
                                      trainingTime: trainingTime, complete: false))
            }
        }
        // Also after a stop: pipelined messages of the last epoch are still in flight, and must be received before
        // the report's collectives (and before MPI ends) or a rank may wait on a message its peer never reads.
        try exchange.finish()
        var final = try report(environment: environment, records: records, best: best, trainingTime: trainingTime,
                               complete: stopReason == nil)
        final.stopReason = stopReason
        return final
    }

    /// The epoch of best validation score so far (model selection never looks at the test set).
    struct BestValidation {
        var accuracy: Double
        var test: Double?
        var epoch: Int
    }

    /// The report of `records`. A collective (the ranks' peak memory is summed): every rank calls it together.
    private func report(environment: RunEnvironment, records: [EpochRecord], best: BestValidation?,
                        trainingTime: Double, complete: Bool) throws -> TrainingReport {
        // Per rank: the peak resident bytes, then the peak of each kind (one reduction for all).
        let kinds = MemoryTally.Kind.allCases
        let memory = try collectives.valuesOfEveryRank(
            [Double(ResourceUsage.peakResidentBytes())] + kinds.map { Double(peakMemory[$0]) })
        let residentPerRank = memory.map { Int($0[0]) }
        var report = TrainingReport(
            config: configuration, environment: environment, epochs: records,
            bestValidationAccuracy: best?.accuracy, testAccuracyAtBestValidation: best?.test,
            bestValidationEpoch: best?.epoch, finalTestAccuracy: records.last?.testAccuracy,
            epochTimeMedian: records.map(\.time).median, peakRSSBytes: residentPerRank[0],
            peakRSSBytesPerRank: residentPerRank, totalTrainingTime: trainingTime,
            bytesSentPerEpoch: records.map { Double($0.bytesSent) }.reduce(0, +) / Double(max(records.count, 1)),
            haloBytesPerEpoch: records.map { Double($0.forwardBytesSent + $0.backwardBytesSent) }.reduce(0, +)
                / Double(max(records.count, 1)))
        let evaluated = records.compactMap { record in record.evaluationTime.map { record.time + $0 } }
        report.evaluatedEpochTimeMedian = evaluated.isEmpty ? nil : evaluated.median
        report.featureRepresentation = shard.features.representation
        report.memoryBytesByKind = Dictionary(uniqueKeysWithValues: kinds.enumerated().map { i, kind in
            (kind.rawValue, memory.map { Int($0[1 + i]) })
        })
        report.metric = metric
        report.complete = complete
        exchange.contribute(to: &report)
        return report
    }
}

extension Optional<Trainer.BestValidation> {
    /// Takes `record` as the best epoch when its validation score beats every earlier one (the first of equals
    /// stays, so a resumed run, replaying its saved records through here, picks the same epoch).
    mutating func consider(_ record: EpochRecord) {
        guard let v = record.validationAccuracy, v > (self?.accuracy ?? -1) else { return }
        self = Trainer.BestValidation(accuracy: v, test: record.testAccuracy, epoch: record.epoch)
    }
}
