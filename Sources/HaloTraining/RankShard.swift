import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor

/// Everything one rank trains on: its inner nodes' data, its aggregation operator and the global counts that
/// normalise losses and metrics.
public struct RankShard: Sendable {
    /// Global id of each inner row (central rows first, then marginal).
    public var nodeIDs: [Int32]
    public var features: LayerInput
    public var labels: NodeLabels
    public var split: NodeSplit
    public var propagation: PropagationOperator
    /// Training / validation / test nodes over ALL ranks.
    public var globalCounts: GlobalSplitCounts

    public init(nodeIDs: [Int32], features: LayerInput, labels: NodeLabels, split: NodeSplit,
                propagation: PropagationOperator, globalCounts: GlobalSplitCounts) {
        self.nodeIDs = nodeIDs
        self.features = features
        self.labels = labels
        self.split = split
        self.propagation = propagation
        self.globalCounts = globalCounts
    }

    /// The whole dataset as the single shard of a one-rank run.
    public static func wholeGraph(_ dataset: Dataset, aggregation: Aggregation) -> RankShard {
        RankShard(
            nodeIDs: (0..<dataset.nodeCount).map { Int32($0) }, features: LayerInput(dataset.features),
            labels: dataset.labels, split: dataset.split, propagation: .wholeGraph(dataset.graph, aggregation),
            globalCounts: GlobalSplitCounts(dataset.split))
    }

    /// One rank's shard of a partitioned dataset.
    public init(part: Part, aggregation: Aggregation) {
        self.init(
            nodeIDs: part.innerGlobalIDs, features: LayerInput(part.features), labels: part.labels, split: part.split,
            propagation: part.propagationOperator(aggregation), globalCounts: part.globalSplitCounts)
    }

    var lossTargets: LossTargets {
        switch labels {
        case .singleLabel(let classes, _): return .classes(classes)
        case .multiLabel(let targets, _): return .multiLabel(targets)
        }
    }
}

extension LayerInput {
    /// Input features as a layer sees them: sparse features keep their CSR form (and get their transpose ready).
    public init(_ features: NodeFeatures) {
        switch features {
        case .dense(let m): self = .dense(m)
        case .sparse(let s): self = .sparse(SparseFeatures(s))
        }
    }
}
