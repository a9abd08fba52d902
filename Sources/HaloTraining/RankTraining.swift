import HaloNN
import HaloPartition
import HaloQuantization
import HaloTensor
import HaloTransport

/// Trains one rank of a distributed run: the same `Trainer` as a single process, wired to a transport.
public enum RankTraining {
    /// Builds this rank's shard, exchange and collectives from `part` and runs every epoch (`onEpoch`,
    /// `onProgress`, `stopRequest` and `checkpoints` as in `Trainer.train`); `onPlan` gets the first layer's plan,
    /// the same on every rank, before the first epoch and again when training refines it. The exchange comes from
    /// `makeExchange` (the method's, by default; a test may substitute its own).
    ///
    /// All ranks must call it together with the same configuration; they build identical models from the seed and
    /// stay identical because each applies the same all-reduced gradient.
    public static func run(
        part: Part, transport: any Transport, configuration: TrainingConfiguration,
        environment: RunEnvironment, pool: ComputePool, stopRequest: StopRequest? = nil,
        checkpoints: CheckpointPlan? = nil, calibratedRates: KernelRates? = nil,
        forcedRepresentation: FeatureRepresentation? = nil,
        onPlan: @escaping (FirstLayerPlan) -> Void = { _ in },
        onEpoch: (EpochRecord) -> Void = { _ in },
        onProgress: (TrainingReport) throws -> Void = { _ in },
        makeExchange: (Part, any Transport, TrainingConfiguration) throws -> any HaloExchange = ExchangeFactory.make
    ) throws -> TrainingReport {
        guard part.rank == transport.rank, part.partCount == transport.worldSize else {
            throw TransportError.invalidArgument(
                "rank \(transport.rank) of \(transport.worldSize) was given part \(part.rank) of \(part.partCount)")
        }
        // Set-up traffic goes through its own collectives, so the training statistics count training alone.
        let features = try FeatureStatistics(part.features)
            .combinedOverRanks(TransportCollectives(transport), worldSize: transport.worldSize)
        let inputs = try agreedInputs(part: part, features: features, model: configuration.model,
                                      rates: transport.rank == 0 ? calibratedRates : nil,
                                      collectives: TransportCollectives(transport))
        var plan = FirstLayerPlan.choosing(for: inputs.workload, rates: inputs.rates).forcing(forcedRepresentation)
        let shard = RankShard(part: part, aggregation: configuration.model.kind.aggregation,
                              featureRepresentation: plan.representation)
        var configuration = configuration
        if configuration.quantization.precomputeFirstLayer == nil {
            configuration.quantization.precomputeFirstLayer = configuration.method.precomputesFirstLayerByDefault(
                inputDropout: configuration.model.inputDropout, features: features)
        }
        let exchange = try makeExchange(part, transport, configuration)
        let trainer = try Trainer(configuration: configuration, shard: shard, classCount: part.classCount,
                              exchange: exchange, collectives: TransportCollectives(transport), pool: pool)
        if let rates = inputs.rates {
            plan.weightGradientSchedule = try agreedWeightGradientSchedule(
                part: part, transport: transport, configuration: configuration, plan: plan, rates: rates,
                workload: inputs.workload, weight: trainer.model.convolutions[0])
        }
        onPlan(plan)
        return try trainer.train(firstLayerPlan: plan, onRefinedPlan: onPlan, environment: environment, stopRequest: stopRequest,
                                 checkpoints: checkpoints, onEpoch: onEpoch, onProgress: onProgress)
    }

    /// The first layer's plan, the same on every rank: from the features of all parts, the aggregation's non-zeros
    /// of all parts (a part's edges plus a self-loop per node, GCN's operator; mean aggregation has no self-loops, a
    /// difference the decision does not turn on) and rank 0's rates (`rates` on the other ranks is ignored), summed
    /// in one all-reduce to which only rank 0 contributes rates. Every rank takes part, with or without rates.
    static func agreedPlan(
        part: Part, features: FeatureStatistics, model: ModelConfiguration, rates: KernelRates?,
        collectives: any Collectives
    ) throws -> FirstLayerPlan {
        let inputs = try agreedInputs(part: part, features: features, model: model, rates: rates, collectives: collectives)
        return FirstLayerPlan.choosing(for: inputs.workload, rates: inputs.rates)
    }

    /// What `agreedPlan` decides from: the whole graph's first-layer workload and rank 0's rates, on every rank.
    static func agreedInputs(
        part: Part, features: FeatureStatistics, model: ModelConfiguration, rates: KernelRates?,
        collectives: any Collectives
    ) throws -> (workload: FirstLayerWorkload, rates: KernelRates?) {
        var sums = [Double(part.edgeCount + part.innerCount), 0] + Array(repeating: 0, count: KernelRates.vectorCount)
        if collectives.rank == 0, let rates {
            sums[1] = 1
            sums.replaceSubrange(2..., with: rates.vector)
        }
        try collectives.allReduceSum(&sums)
        let workload = FirstLayerWorkload(features: features, featureWidth: part.featureWidth,
                                          aggregationNonZeros: Int(sums[0]), model: model)
        return (workload, sums[1] > 0 ? KernelRates(vector: Array(sums[2...])) : nil)
    }

    /// The first layer's weight-gradient cut from the sum's measured time (`WeightGradientSchedule`), the same on
    /// every rank, or nil where none is made: one rank, a count given by the user (`--weight-gradient-pieces`), sums
    /// started only after backward (`--no-overlap-allreduce`: nothing to overlap), a first layer evaluated in
    /// column blocks (its weight goes whole with the layer), or sums whose result the cut could change. A measured
    /// cut can differ from run to run, so it is made only where the model cannot tell: float32 sums on a transport
    /// whose element sums do not depend on the vector (ranks as threads; MPI with two ranks). Compressed sums keep
    /// rounding residuals per bucket (int8 also rounds each bucket on its own), and MPI with more ranks adds in an
    /// order that depends on the vector; there the calibrated equal count stays, which the seed and the host's
    /// calibration fix, so the run can be repeated (and resumed) exactly.
    ///
    /// Collective: every rank calls it with the same configuration and agreed `rates` and `workload`.
    static func agreedWeightGradientSchedule(
        part: Part, transport: any Transport, configuration: TrainingConfiguration, plan: FirstLayerPlan,
        rates: KernelRates, workload: FirstLayerWorkload, weight: GraphConvolution
    ) throws -> WeightGradientSchedule? {
        let float32 = (configuration.gradientCompression ?? GradientCompression.none) == GradientCompression.none
        guard transport.worldSize > 1, configuration.weightGradientPieces == nil,
              configuration.overlapsGradientReduction != false, weight.columnBlockCount == 1,
              float32, transport.sumIsIndependentOfVectorLayout else { return nil }
        let rows = weight.inputWidth, columns = weight.outputWidth
        // The slowest rank's product: the most rows of G.
        let gRows = try TransportCollectives(transport).valuesOfEveryRank([Double(part.innerCount)]).map { $0[0] }.max()!
        let precomputes = configuration.quantization.precomputeFirstLayer == true
        let perRow = WeightGradientStreaming.costPerRow(
            .init(precomputedAggregate: precomputes, representation: plan.representation), rates: rates, workload: workload)
        // Sums of a smallest piece, of the whole weight (at most a mebivalue, so a slow link or a wide weight does
        // not hold the start up long) and of their geometric mean, as training sums them: three sizes, so one
        // unlucky timing moves the fitted line less.
        let largest = min(rows * columns, 1 << 20), smallest = min(WeightGradientPieces.minimumValues, largest)
        let middle = Int((Double(smallest) * Double(largest)).squareRoot())
        let sum = try LinkProbe.measureSum(transport, counts: [smallest, middle, largest])
        return WeightGradientSchedule.choosing(
            rows: rows, columns: columns, productSeconds: gRows * perRow.product, pieceSeconds: gRows * perRow.pass,
            sumLatencySeconds: sum.latency, sumSecondsPerValue: sum.secondsPerValue,
            calibratedPieces: plan.weightGradientPieces.pieces(precomputedAggregate: precomputes, representation: plan.representation))
    }
}

extension Trainer {
    /// Aggregates the first layer once when the configuration says so, trains (`train`), and records the first
    /// layer's `plan` in every report passed on and in the one returned: what every way of running does.
    /// `onRefinedPlan` gets the plan when training changes it (a near tie timed before training, the weight-gradient
    /// cut refined once).
    ///
    /// `trials`, where given, is where a near tie between the precomputed and hybrid forward products is settled
    /// once and remembered (`FirstLayerForwardTrial`, `FirstLayerTrialCache`); without it the plan stands as given.
    func train(
        firstLayerPlan plan: FirstLayerPlan, onRefinedPlan: @escaping (FirstLayerPlan) -> Void = { _ in },
        trials: FirstLayerTrialCache? = nil,
        environment: RunEnvironment, stopRequest: StopRequest?,
        checkpoints: CheckpointPlan?, onEpoch: (EpochRecord) -> Void, onProgress: (TrainingReport) throws -> Void
    ) throws -> TrainingReport {
        // The report says what ran: what is decided below, and the weight-gradient cut as refined in training.
        var plan = plan
        model.listGradients(below: { plan.gradientListing.density(ofLayer: $0) },
                            inputGradientsBelow: plan.gradientListing.inputGradients)
        model.blockForwardRows { layer, inputWidth, outputWidth in
            plan.forwardRowBlocking.rowsPerCall(layer: layer, inputWidth: inputWidth, outputWidth: outputWidth)
        }
        let precomputes = configuration.quantization.precomputeFirstLayer == true
        if precomputes { try precomputeFirstAggregation() }
        // Streamed only when there are sums to start (several ranks); every rank cuts alike.
        let first = model.convolutions[0]
        if let schedule = plan.weightGradientSchedule {
            first.weightGradientPieces = schedule.cut(rows: first.inputWidth, columns: first.outputWidth)
            let lastEpoch = configuration.epochs - 1
            afterEpoch = { [collectives] epoch, epochsRun in
                // Once, after the second epoch this call runs (the first one warms caches and connections up), when
                // epochs are left to use it: the cut again from the products as they ran, the slowest rank's.
                guard epochsRun == 2, epoch < lastEpoch, let schedule = plan.weightGradientSchedule else { return }
                let seconds = try collectives.valuesOfEveryRank([first.lastReportedWeightGradientSeconds]).map { $0[0] }
                guard let refined = schedule.refined(measuredSeconds: seconds.max()!, rows: first.inputWidth,
                                                     columns: first.outputWidth) else { return }
                first.weightGradientPieces = refined.cut(rows: first.inputWidth, columns: first.outputWidth)
                plan.weightGradientSchedule = refined
                onRefinedPlan(plan)
            }
        } else {
            first.weightGradientPieces = WeightGradientPieces(
                rows: first.inputWidth, columns: first.outputWidth,
                pieces: configuration.weightGradientPieces
                    ?? plan.weightGradientPieces.pieces(precomputedAggregate: precomputes, representation: plan.representation))
        }
        // The hybrid path needs the aggregate and an operator without halo rows (the model's own condition: one
        // process, or one part), and stays off in column blocks (its X·W is a whole n × H matrix, which a
        // memory-bound run avoids).
        let hybridPossible = precomputes && shard.propagation.haloCount == 0 && model.columnBlockCount == 1
        // One process whose estimates are a near tie: the two forward products timed on this run's data decide, once
        // per host, data and model (a later run, a resumed one among them, reads the outcome and repeats the choice).
        if let trials, hybridPossible, collectives.worldSize == 1, FirstLayerForwardTrial.applies(to: plan),
           let aggregate = model.precomputedFirstAggregate {
            let measured = trials.lookup(plan) ?? {
                let measured = timeFirstLayerForwards(aggregate: aggregate)
                // A cache that cannot be written only means the next run times again.
                try? trials.store(measured, for: plan)
                return measured
            }()
            plan.measuredForwardSeconds = measured
            plan.forwardThroughFeatures = measured[.hybrid]! < measured[.precomputed]!
            onRefinedPlan(plan)
        }
        model.firstLayerForwardThroughFeatures = plan.forwardThroughFeatures && hybridPossible
        plan.forwardThroughFeatures = model.firstLayerForwardThroughFeatures
        defer { afterEpoch = nil }
        var report = try train(environment: environment, stopRequest: stopRequest, checkpoints: checkpoints,
                               onEpoch: onEpoch, onProgress: { progress in
                                   var progress = progress
                                   progress.firstLayerPlan = plan
                                   try onProgress(progress)
                               })
        report.firstLayerPlan = plan
        return report
    }
}
