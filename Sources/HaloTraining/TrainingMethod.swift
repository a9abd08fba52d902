import HaloQuantization

/// How halo messages are exchanged during training: a named pair of a schedule and a precision.
public enum TrainingMethod: String, Sendable, Codable, CaseIterable {
    /// Full-precision synchronous exchange, local work after the messages arrive: the baseline.
    case vanilla
    /// AdaQP: quantized messages (bit widths per `QuantizationSettings.assignment`) and central/marginal overlap.
    case adaqp
    /// AdaQP's ablation with quantization only.
    case adaqpQuantizationOnly = "adaqp-q"
    /// AdaQP's ablation with overlap only (full-precision messages).
    case adaqpOverlapOnly = "adaqp-p"
    /// PipeGCN: full-precision halo rows and gradients from exactly one epoch earlier.
    case pipegcn
    /// PipeQS: bounded-stale halo blocks, late links bypassed with cached blocks, widths moved by drift and lateness.
    case pipeqs

    /// When a layer's messages are sent and consumed.
    public var schedule: ExchangeSchedule {
        switch self {
        case .vanilla, .adaqpQuantizationOnly: .synchronous
        case .adaqp, .adaqpOverlapOnly: .overlapped
        case .pipegcn, .pipeqs: .pipelined
        }
    }

    /// Whether ranks aggregate the input features once before training (`QuantizationSettings.precomputeFirstLayer`)
    /// unless told otherwise.
    ///
    /// On for the pipelined methods when it is exact (no input dropout) and the features suit it
    /// (`FeatureStatistics.suitsPrecomputedAggregation`): layer 0's inputs never change, so PipeGCN fetches boundary
    /// features once and its first layer is never stale. Exchanging `X·W` rows every epoch instead makes layer 0
    /// stale in both directions, which cost Amazon-Photo 0.6–0.8 points (docs/pipeqs.md). Off for the synchronous
    /// methods, which exchange layer 0 every epoch as the AdaQP paper does (exact either way).
    public func precomputesFirstLayerByDefault(inputDropout: Float, features: FeatureStatistics) -> Bool {
        schedule == .pipelined && inputDropout == 0 && features.suitsPrecomputedAggregation
    }

    /// The smoothing of stale blocks (`PipelineSettings.smoothing`) unless told otherwise: PipeGCN's 0.95 for
    /// `pipegcn` (the paper's PipeGCN-GF, its most accurate variant), none for PipeQS, whose paper has none.
    public var defaultSmoothing: Double {
        self == .pipegcn ? 0.95 : 0
    }

    /// How many bits the training messages' rows get.
    public var precision: PrecisionKind {
        switch self {
        case .vanilla, .adaqpOverlapOnly, .pipegcn: .full
        case .adaqp, .adaqpQuantizationOnly: .adaqp
        case .pipeqs: .pipeqs
        }
    }

    /// Whether layers may be evaluated in column blocks (`ColumnBlocks`): the methods whose exchange sends
    /// full-precision rows within the layer (vanilla, AdaQP-p). Quantized rows would be cut into separately
    /// quantized pieces, and pipelined exchanges cache whole rows between epochs.
    public var allowsColumnBlocks: Bool { precision == .full && schedule != .pipelined }
}

/// The schedule axis of an exchange.
public enum ExchangeSchedule: String, Sendable, Codable {
    /// Send, wait, then compute with the received rows.
    case synchronous
    /// Central nodes' work while the marginal nodes' messages are in flight (AdaQP).
    case overlapped
    /// Compute with blocks from earlier epochs while this epoch's travel (PipeGCN, PipeQS).
    case pipelined
}

/// The precision axis of an exchange.
public enum PrecisionKind: String, Sendable, Codable {
    /// Raw Float32 rows.
    case full
    /// AdaQP's stochastic 2/4/8-bit quantization, widths by `QuantizationSettings.assignment`.
    case adaqp
    /// PipeQS: a width per channel, moved by drift and link lateness (`PipeQSPrecision`).
    case pipeqs
}

/// How AdaQP assigns bit widths to message rows.
public enum AssignmentScheme: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Re-solved every cycle from traced variance, aggregation scores and measured link costs.
    case adaptive
    /// The same width for every row.
    case uniform(BitWidth)
    /// A uniformly random width in {2, 4, 8} per row, redrawn every cycle.
    case random

    public var description: String {
        switch self {
        case .adaptive: return "adaptive"
        case .uniform(let b): return "uniform:\(b.rawValue)"
        case .random: return "random"
        }
    }

    /// Parses `adaptive`, `random` or `uniform:B` with B ∈ {2, 4, 8}.
    public init?(parsing text: String) {
        switch text {
        case "adaptive": self = .adaptive
        case "random": self = .random
        default:
            guard text.hasPrefix("uniform:"), let b = Int(text.dropFirst("uniform:".count)),
                  let width = BitWidth(rawValue: b), width.isQuantized else { return nil }
            self = .uniform(width)
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let scheme = AssignmentScheme(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown assignment '\(text)'"))
        }
        self = scheme
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// AdaQP's settings (ignored by methods that do not quantize, except `precomputeFirstLayer`).
public struct QuantizationSettings: Sendable, Codable, Equatable {
    public var assignment: AssignmentScheme
    /// Epochs between re-assignments; the first cycle runs at 8 bits while variance is traced.
    public var assignCycle: Int
    /// Rows per group in the assignment problem (rows are sorted by their variance weight first).
    public var groupSize: Int
    /// Weight of the variance term against the communication-time term, in [0, 1].
    public var lambda: Double
    /// Aggregate the input features once before training, so the first layer never communicates. nil: the
    /// method's default for the run's features (`TrainingMethod.precomputesFirstLayerByDefault`), decided when the
    /// ranks start; the report holds what was used.
    public var precomputeFirstLayer: Bool?

    public init(assignment: AssignmentScheme = .adaptive, assignCycle: Int = 50, groupSize: Int = 100,
                lambda: Double = 0.5, precomputeFirstLayer: Bool? = false) {
        self.assignment = assignment
        self.assignCycle = assignCycle
        self.groupSize = groupSize
        self.lambda = lambda
        self.precomputeFirstLayer = precomputeFirstLayer
    }
}
