import Foundation
import HaloGraph
import HaloPartition
import HaloTensor

/// One epoch of a run, as written to `--json-out`.
public struct EpochRecord: Sendable, Codable, Equatable {
    public var epoch: Int
    /// Training loss of this epoch's step (global mean over training nodes).
    public var loss: Double
    /// Metrics after this epoch's update; nil on epochs that were not evaluated.
    public var trainAccuracy: Double?
    public var validationAccuracy: Double?
    public var testAccuracy: Double?
    /// Wall time of the training step (forward, backward, gradient all-reduce, update), without evaluation.
    public var time: Double
    /// Wall time of the evaluation after this epoch's step (forward without dropout, scores summed over ranks);
    /// nil on epochs that were not evaluated. A step may take its first layer's output from the evaluation before
    /// it (`GraphConvolution`'s kept output), so `time` alone can leave out work the epoch needed: `time` plus this
    /// is the epoch's whole cost.
    public var evaluationTime: Double?
    /// Of `time` (this rank): computing, blocked on halo messages, and blocked on all-reduces (the gradient's,
    /// whose per-layer buckets travel during the backward pass, and the loss's): the exposed all-reduce time.
    public var computeTime: Double = 0
    public var communicationWaitTime: Double = 0
    public var allReduceTime: Double = 0
    /// The gradient all-reduce from its first layer's start to its last layer's completion (seconds; nil when the
    /// transport does not report completion, or with one rank). Beside `allReduceTime` it shows how much of the
    /// reduction the backward pass hid.
    public var gradientReductionSpan: Double?
    /// `allReduceTime` of every rank, by rank (nil with one rank). A rank that reaches a sum before the others
    /// waits for them as well as for the wire; the rank that arrives last waits only for what the sums still had
    /// to send, so the smallest entry is the all-reduce's own exposed time and the spread is the ranks' imbalance.
    public var allReduceTimeByRank: [Double]?
    /// Bytes all ranks together sent during this epoch's training step: halo rows and gradients, and all-reduce
    /// payloads (evaluation traffic not included).
    public var bytesSent: Int = 0
    /// Of `bytesSent`, halo messages forward (rows) and backward (gradients), all ranks together.
    public var forwardBytesSent: Int = 0
    public var backwardBytesSent: Int = 0
    /// Of `time` (this rank): quantizing and dequantizing messages.
    public var quantizeTime: Double = 0
    /// Fraction of this rank's halo-transfer time hidden behind computation: 1 − wait / transfer duration.
    public var hiddenCommunicationFraction: Double?
    /// Pipelined methods: per (layer, direction), the ages of the halo blocks used, bypasses, widths sent, drift
    /// and time waiting, summed over ranks.
    public var pipeline: [PipelineSiteRecord]?

    enum CodingKeys: String, CodingKey {
        case epoch, loss
        case trainAccuracy = "train_acc"
        case validationAccuracy = "val_acc"
        case testAccuracy = "test_acc"
        case time = "time_s"
        case evaluationTime = "evaluation_s"
        case computeTime = "compute_s"
        case communicationWaitTime = "comm_wait_s"
        case allReduceTime = "allreduce_s"
        case gradientReductionSpan = "grad_allreduce_span_s"
        case allReduceTimeByRank = "allreduce_s_by_rank"
        case bytesSent = "bytes_sent"
        case forwardBytesSent = "bytes_sent_forward"
        case backwardBytesSent = "bytes_sent_backward"
        case quantizeTime = "quantize_s"
        case hiddenCommunicationFraction = "comm_hidden_fraction"
        case pipeline
    }
}

/// The machine-readable result of a training run. Field names are stable: later versions only add fields.
public struct TrainingReport: Sendable, Codable {
    public var config: TrainingConfiguration
    public var environment: RunEnvironment
    /// How the graph was split (nil for a single-process run).
    public var partitioning: PartitionSummary?
    public var epochs: [EpochRecord]
    public var bestValidationAccuracy: Double?
    /// Test score at the epoch of best validation score (model selection never looks at the test set).
    public var testAccuracyAtBestValidation: Double?
    public var bestValidationEpoch: Int?
    public var finalTestAccuracy: Double?
    public var epochTimeMedian: Double
    /// Median over the evaluated epochs of the step and its evaluation together (`time + evaluationTime`): the
    /// cost of an epoch that reports its scores. Nil when no epoch was evaluated (and in reports written before it).
    public var evaluatedEpochTimeMedian: Double?
    /// Peak resident memory of the process running rank 0 (all ranks, when they are threads of one process).
    public var peakRSSBytes: Int
    /// Peak resident memory per rank's process (the same number repeated for in-process ranks).
    public var peakRSSBytesPerRank: [Int]
    public var totalTrainingTime: Double
    /// Mean over epochs of `EpochRecord.bytesSent`.
    public var bytesSentPerEpoch: Double
    /// Mean over epochs of the halo messages' bytes (forward + backward, all ranks): what quantization shrinks.
    public var haloBytesPerEpoch: Double = 0
    /// AdaQP: each re-assignment (bit-width histogram per layer and direction, solve time).
    public var assignmentCycles: [AssignmentCycleReport]?
    /// AdaQP: seconds spent measuring the links' time models at start-up.
    public var linkProbeSeconds: Double?
    /// How the first layer multiplied the input features (dense GEMM, table lookup or CSR).
    public var featureRepresentation: FeatureRepresentation?
    /// The host calibration whose rates chose the first layer's path (nil with `--calibration off`).
    public var calibration: CalibrationRecord?
    /// What was decided for the first layer (representation, precomputing) and on what basis.
    public var firstLayerPlan: FirstLayerPlan?
    /// Whether the run trained every epoch it was asked for. A report written while the run progresses (and the
    /// one a killed or stopped run leaves behind) says false and holds the epochs finished so far; its summary
    /// fields describe those epochs.
    public var complete: Bool = true
    /// Why the run stopped before its last epoch (e.g. a non-finite loss); nil while it runs and once complete.
    public var stopReason: String?
    /// The metric of every score in the report (`train_acc`, `val_acc`, `test_acc`, the summary's "accuracy"
    /// fields keep their names for every metric): accuracy, roc-auc or micro-f1.
    public var metric: EvaluationMetric?
    /// Per kind (`MemoryTally.Kind`'s names), per rank: the most bytes of that kind the rank held (sampled after
    /// every backward pass). What the run's objects hold, without transient buffers and allocator slack.
    public var memoryBytesByKind: [String: [Int]]?

    enum CodingKeys: String, CodingKey {
        case config, environment, partitioning, epochs
        case bestValidationAccuracy = "best_val_accuracy"
        case testAccuracyAtBestValidation = "test_accuracy_at_best_val"
        case bestValidationEpoch = "best_val_epoch"
        case finalTestAccuracy = "final_test_accuracy"
        case epochTimeMedian = "epoch_time_median_s"
        case evaluatedEpochTimeMedian = "evaluated_epoch_time_median_s"
        case peakRSSBytes = "peak_rss_bytes"
        case peakRSSBytesPerRank = "peak_rss_bytes_per_rank"
        case totalTrainingTime = "total_training_time_s"
        case bytesSentPerEpoch = "bytes_sent_per_epoch"
        case haloBytesPerEpoch = "halo_bytes_per_epoch"
        case assignmentCycles = "assignment_cycles"
        case linkProbeSeconds = "link_probe_s"
        case featureRepresentation = "feature_representation"
        case calibration
        case firstLayerPlan = "first_layer_plan"
        case complete
        case stopReason = "stop_reason"
        case metric
        case memoryBytesByKind = "memory_bytes_by_kind"
    }

    /// Pretty-printed JSON with snake_case configuration keys.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }
}

/// Where and how a run executed, for interpreting its timings.
public struct RunEnvironment: Sendable, Codable {
    public var ranks: Int
    public var threadsPerRank: Int
    public var blasCore: String
    /// How `blasCore` was chosen (`BLASRuntime.coreChoice`) and OpenBLAS's build description; absent in reports
    /// written before they were recorded.
    public var blasCoreChoice: String?
    public var blasConfig: String?
    public var hostCores: Int
    public var nodes: Int
    public var edges: Int
    public var featureWidth: Int
    public var classes: Int

    public init(ranks: Int, threadsPerRank: Int, blasCore: String, hostCores: Int, nodes: Int, edges: Int,
                featureWidth: Int, classes: Int, blasCoreChoice: String? = nil, blasConfig: String? = nil) {
        self.ranks = ranks
        self.threadsPerRank = threadsPerRank
        self.blasCore = blasCore
        self.blasCoreChoice = blasCoreChoice
        self.blasConfig = blasConfig
        self.hostCores = hostCores
        self.nodes = nodes
        self.edges = edges
        self.featureWidth = featureWidth
        self.classes = classes
    }
}

extension RunEnvironment {
    /// This host's figures for a run on `dataset`.
    public init(ranks: Int, threadsPerRank: Int, dataset: Dataset) {
        self.init(ranks: ranks, threadsPerRank: threadsPerRank, blasCore: BLASRuntime.coreName,
                  hostCores: ComputePool.availableCores, nodes: dataset.nodeCount, edges: dataset.graph.edgeCount,
                  featureWidth: dataset.featureWidth, classes: dataset.classCount,
                  blasCoreChoice: BLASRuntime.coreChoice, blasConfig: BLASRuntime.config)
    }

    /// This host's figures for a run on the parts described by `manifest`.
    public init(ranks: Int, threadsPerRank: Int, manifest: PartitionManifest) {
        self.init(ranks: ranks, threadsPerRank: threadsPerRank, blasCore: BLASRuntime.coreName,
                  hostCores: ComputePool.availableCores, nodes: manifest.dataset.nodes,
                  edges: manifest.dataset.directedEdges, featureWidth: manifest.dataset.featureWidth,
                  classes: manifest.dataset.classes,
                  blasCoreChoice: BLASRuntime.coreChoice, blasConfig: BLASRuntime.config)
    }
}
