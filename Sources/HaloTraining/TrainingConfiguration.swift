import HaloNN
import HaloQuantization

/// What to train and how: the settings a report must carry to be reproduced.
public struct TrainingConfiguration: Sendable, Codable, Equatable {
    /// The dataset as the user named it (a directory or a synthetic spec).
    public var dataset: String
    public var model: ModelConfiguration
    public var optimizer: Adam.Hyperparameters
    public var epochs: Int
    /// Fixes every random draw: initialisation, dropout, synthetic data, stochastic rounding.
    public var seed: UInt64
    /// Evaluate on train/validation/test every this many epochs (and at the last epoch).
    public var evaluateEvery: Int
    /// Compute threads per rank.
    public var threads: Int
    /// How halo messages travel (distributed runs).
    public var method: TrainingMethod
    public var quantization: QuantizationSettings
    /// Settings of the pipelined methods.
    public var pipeline: PipelineSettings
    /// The score evaluation reports and model selection maximises; nil: the task's standard one
    /// (`EvaluationMetric.standard(for:)`).
    public var metric: EvaluationMetric?
    /// Input features divided by their row sums before training (Kipf & Welling's preprocessing); nil in reports
    /// written before it was recorded, meaning no.
    public var normalizeFeatures: Bool?
    /// How many column blocks wide layers are evaluated in (`GNNModel.columnBlockCount`); nil: decided by the
    /// training job from the memory estimate (the fewest that fit, 1 when the run fits whole), and 1 for a
    /// trainer built directly. Changes what a step holds, not what it computes.
    public var columnBlocks: Int?
    /// How weight gradients travel in the all-reduce (with error feedback when compressed); nil in reports written
    /// before it was recorded, meaning float32.
    public var gradientCompression: GradientCompression?
    /// Whether each layer's gradient sum starts as soon as backward has finished the layer (overlapping the layers
    /// below) or, when false, all of them after the backward pass: the un-overlapped baseline that the overlap is
    /// measured against. The same sums either way. nil in reports written before it was recorded, meaning true.
    public var overlapsGradientReduction: Bool?
    /// In how many pieces of rows a multi-rank run forms the first layer's weight gradient, each piece's sum
    /// starting as soon as it is formed (`WeightGradientPieces`); nil: the plan's decision from the host's rates
    /// (`WeightGradientStreaming`) or, where it is made, the cut from the measured sum (`WeightGradientSchedule`). With float32 sums the same model either way; compressed sums round each
    /// bucket on its own, so there the count changes the rounding.
    public var weightGradientPieces: Int?

    public init(dataset: String, model: ModelConfiguration, optimizer: Adam.Hyperparameters, epochs: Int,
                seed: UInt64, evaluateEvery: Int = 1, threads: Int = 1, method: TrainingMethod = .vanilla,
                quantization: QuantizationSettings = QuantizationSettings(),
                pipeline: PipelineSettings? = nil, metric: EvaluationMetric? = nil,
                normalizeFeatures: Bool = false, columnBlocks: Int? = nil,
                gradientCompression: GradientCompression = .none, overlapsGradientReduction: Bool = true,
                weightGradientPieces: Int? = nil) {
        self.weightGradientPieces = weightGradientPieces
        self.columnBlocks = columnBlocks
        self.overlapsGradientReduction = overlapsGradientReduction
        self.gradientCompression = gradientCompression
        self.metric = metric
        self.normalizeFeatures = normalizeFeatures
        self.method = method
        // Without settings, the method's defaults, as `halo train` has them (PipeGCN smooths with 0.95). Decided
        // here: setting `method` afterwards does not change `pipeline`.
        self.pipeline = pipeline ?? PipelineSettings(smoothing: method.defaultSmoothing)
        self.quantization = quantization
        self.dataset = dataset
        self.model = model
        self.optimizer = optimizer
        self.epochs = epochs
        self.seed = seed
        self.evaluateEvery = evaluateEvery
        self.threads = threads
    }
}
