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
        checkpoints: CheckpointPlan? = nil, onEpoch: (EpochRecord) -> Void = { _ in },
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
        let shard = RankShard(
            part: part, aggregation: configuration.model.kind.aggregation,
            featureRepresentation: features.representation(inputDropout: configuration.model.inputDropout > 0))
        var configuration = configuration
        if configuration.quantization.precomputeFirstLayer == nil {
            configuration.quantization.precomputeFirstLayer = configuration.method.precomputesFirstLayerByDefault(
                inputDropout: configuration.model.inputDropout, features: features)
        }
        let exchange = try makeExchange(part, transport, configuration)
        let trainer = Trainer(configuration: configuration, shard: shard, classCount: part.classCount,
                              exchange: exchange, collectives: TransportCollectives(transport), pool: pool)
        if configuration.quantization.precomputeFirstLayer == true { try trainer.precomputeFirstAggregation() }
        return try trainer.train(environment: environment, stopRequest: stopRequest, checkpoints: checkpoints,
                                 onEpoch: onEpoch, onProgress: onProgress)
    }
}
