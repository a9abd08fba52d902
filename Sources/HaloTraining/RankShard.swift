import HaloGraph
import HaloNN
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
    public var globalCounts: SplitCounts

    public init(nodeIDs: [Int32], features: LayerInput, labels: NodeLabels, split: NodeSplit,
                propagation: PropagationOperator, globalCounts: SplitCounts) {
        self.nodeIDs = nodeIDs
        self.features = features
        self.labels = labels
        self.split = split
        self.propagation = propagation
        self.globalCounts = globalCounts
    }

    /// The whole dataset as the single shard of a one-rank run.
    public static func wholeGraph(_ dataset: Dataset, aggregation: Aggregation) -> RankShard {
        let features: LayerInput = switch dataset.features {
        case .dense(let m): .dense(m)
        case .sparse(let s): .sparse(SparseFeatures(s))
        }
        return RankShard(
            nodeIDs: (0..<dataset.nodeCount).map { Int32($0) }, features: features, labels: dataset.labels,
            split: dataset.split, propagation: .wholeGraph(dataset.graph, aggregation),
            globalCounts: SplitCounts(dataset.split))
    }

    var lossTargets: LossTargets {
        switch labels {
        case .singleLabel(let classes, _): return .classes(classes)
        case .multiLabel(let targets, _): return .multiLabel(targets)
        }
    }
}

/// Node counts of the three splits.
public struct SplitCounts: Sendable, Codable, Equatable {
    public var train: Int
    public var validation: Int
    public var test: Int

    public init(train: Int, validation: Int, test: Int) {
        self.train = train
        self.validation = validation
        self.test = test
    }

    public init(_ split: NodeSplit) {
        self.init(train: split.trainCount, validation: split.validationCount, test: split.testCount)
    }
}
