import HaloNN
import HaloPartition
import HaloTensor
import HaloTransport

/// Trains one rank of a distributed run: the same `Trainer` as a single process, wired to a transport.
public enum RankTraining {
    /// Builds this rank's shard, exchange and collectives from `part` and runs every epoch (`onEpoch`,
    /// `onProgress`, `stopRequest` and `checkpoints` as in `Trainer.train`). The exchange comes from
    /// `makeExchange` (the method's, by default; a test may substitute its own).
    ///
    /// All ranks must call it together with the same configuration; they build identical models from the seed and
    /// stay identical because each applies the same all-reduced gradient.
    public static func run(
        part: Part, transport: any Transport, configuration: TrainingConfiguration,
        environment: RunEnvironment, pool: ComputePool, stopRequest: StopRequest? = nil,
        checkpoints: CheckpointPlan? = nil, calibratedRates: KernelRates? = nil,
        forcedRepresentation: FeatureRepresentation? = nil,
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
        let plan = try agreedPlan(part: part, features: features, model: configuration.model,
                                  rates: transport.rank == 0 ? calibratedRates : nil,
                                  collectives: TransportCollectives(transport)).forcing(forcedRepresentation)
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
        return try trainer.train(firstLayerPlan: plan, environment: environment, stopRequest: stopRequest,
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
        var sums = [Double(part.edgeCount + part.innerCount), 0] + Array(repeating: 0, count: KernelRates.vectorCount)
        if collectives.rank == 0, let rates {
            sums[1] = 1
            sums.replaceSubrange(2..., with: rates.vector)
        }
        try collectives.allReduceSum(&sums)
        let workload = FirstLayerWorkload(features: features, featureWidth: part.featureWidth,
                                          aggregationNonZeros: Int(sums[0]), model: model)
        return FirstLayerPlan.choosing(for: workload, rates: sums[1] > 0 ? KernelRates(vector: Array(sums[2...])) : nil)
    }
}

extension Trainer {
    /// Aggregates the first layer once when the configuration says so, trains (`train`), and records the first
    /// layer's `plan` in every report passed on and in the one returned: what every way of running does.
    func train(
        firstLayerPlan plan: FirstLayerPlan, environment: RunEnvironment, stopRequest: StopRequest?,
        checkpoints: CheckpointPlan?, onEpoch: (EpochRecord) -> Void, onProgress: (TrainingReport) throws -> Void
    ) throws -> TrainingReport {
        model.listGradients(below: { plan.gradientListing.density(ofLayer: $0) },
                            inputGradientsBelow: plan.gradientListing.inputGradients)
        model.blockForwardRows { layer, inputWidth, outputWidth in
            plan.forwardRowBlocking.rowsPerCall(layer: layer, inputWidth: inputWidth, outputWidth: outputWidth)
        }
        let precomputes = configuration.quantization.precomputeFirstLayer == true
        if precomputes { try precomputeFirstAggregation() }
        // Streamed only when there are sums to start (several ranks); every rank cuts alike.
        let first = model.convolutions[0]
        first.weightGradientPieces = WeightGradientPieces(
            rows: first.inputWidth, columns: first.outputWidth,
            pieces: configuration.weightGradientPieces
                ?? plan.weightGradientPieces.pieces(precomputedAggregate: precomputes, representation: plan.representation))
        // The hybrid path needs the aggregate and an operator without halo rows (the model's own condition: one
        // process, or one part), and stays off in column blocks (its X·W is a whole n × H matrix, which a
        // memory-bound run avoids).
        model.firstLayerForwardThroughFeatures = plan.forwardThroughFeatures && precomputes
            && shard.propagation.haloCount == 0 && model.columnBlockCount == 1
        // The report says what ran.
        var plan = plan
        plan.forwardThroughFeatures = model.firstLayerForwardThroughFeatures
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
