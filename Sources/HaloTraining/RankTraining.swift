import HaloNN
import HaloPartition
import HaloTensor
import HaloTransport

/// Trains one rank of a distributed run: the same `Trainer` as a single process, wired to a transport.
public enum RankTraining {
    /// Builds this rank's shard, exchange and collectives from `part` and runs every epoch.
    ///
    /// All ranks must call it together with the same configuration; they build identical models from the seed and
    /// stay identical because each applies the same all-reduced gradient.
    public static func run(
        part: Part, transport: any Transport, configuration: TrainingConfiguration,
        environment: RunEnvironment, pool: ComputePool, onEpoch: (EpochRecord) -> Void = { _ in }
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
        let method = configuration.method, settings = configuration.quantization
        let policy: any PrecisionPolicy
        if !method.quantizes {
            policy = UniformPrecision(.full)
        } else {
            switch settings.assignment {
            case .uniform(let bits): policy = UniformPrecision(bits)
            case .random: policy = RandomPrecision(rows: MessageRows(part: part), seed: configuration.seed,
                                                   assignCycle: settings.assignCycle)
            case .adaptive: policy = try AdaptivePrecision(part: part, transport: transport, configuration: configuration)
            }
        }
        let exchange = HaloRowExchange(plan: HaloExchangePlan(part: part), transport: transport,
                                       innerNodeIDs: part.innerGlobalIDs, haloNodeIDs: part.haloGlobalIDs,
                                       policy: policy, overlap: method.overlaps)
        let trainer = Trainer(configuration: configuration, shard: shard, classCount: part.classCount,
                              exchange: exchange, collectives: TransportCollectives(transport), pool: pool,
                              epochHook: (policy as? any EpochAware)?.beginEpoch)
        if settings.precomputeFirstLayer { try trainer.precomputeFirstAggregation() }
        var report = try trainer.train(environment: environment, onEpoch: onEpoch)
        if let adaptive = policy as? AdaptivePrecision {
            report.assignmentCycles = adaptive.cycles
            report.linkProbeSeconds = adaptive.probeSeconds
        }
        return report
    }
}
