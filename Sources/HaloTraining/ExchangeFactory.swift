import HaloPartition
import HaloTransport

/// Builds a rank's exchange from its method's (schedule, precision) pair: the one place where a method is put
/// together.
public enum ExchangeFactory {
    /// Collective when the precision measures links or exchanges scores at start-up (AdaQP's adaptive widths).
    public static func make(_ part: Part, _ transport: any Transport, _ configuration: TrainingConfiguration) throws -> any HaloExchange {
        let messenger = HaloMessenger(plan: HaloExchangePlan(part: part), transport: transport,
                                      innerNodeIDs: part.innerGlobalIDs, haloNodeIDs: part.haloGlobalIDs)
        let method = configuration.method
        let precision = try makePrecision(method.precision, part: part, transport: transport, configuration: configuration)
        switch method.schedule {
        case .synchronous: return SynchronousExchange(messenger: messenger, precision: precision, overlap: false)
        case .overlapped: return SynchronousExchange(messenger: messenger, precision: precision, overlap: true)
        case .pipelined:
            let settings = configuration.pipeline
            try settings.validate()
            let consumption: PipelinedExchange.Consumption = method == .pipegcn
                ? .previousEpoch(warmup: settings.warmup)
                : .newestWithin(StalenessRule(maxStaleness: settings.maxStaleness, bypass: settings.bypass))
            return PipelinedExchange(messenger: messenger, precision: precision, consumption: consumption,
                                     settings: settings, measuresDrift: method.precision == .pipeqs)
        }
    }

    static func makePrecision(
        _ kind: PrecisionKind, part: Part, transport: any Transport, configuration: TrainingConfiguration
    ) throws -> any PrecisionPolicy {
        let settings = configuration.quantization
        switch kind {
        case .full:
            return UniformPrecision(.full)
        case .adaqp:
            switch settings.assignment {
            case .uniform(let bits): return UniformPrecision(bits)
            case .random: return RandomPrecision(part: part, seed: configuration.seed, assignCycle: settings.assignCycle)
            case .adaptive: return try AdaptivePrecision(part: part, transport: transport, configuration: configuration)
            }
        case .pipeqs:
            return PipeQSPrecision(settings: configuration.pipeline)
        }
    }
}
