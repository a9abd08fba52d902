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
    ///
    /// With `localityOrder` the rows are stored in reverse Cuthill–McKee order (`Graph.reverseCuthillMcKeeOrder`)
    /// so that aggregation reads neighbours from cache; `nodeIDs` keep each row's dataset id, which is what
    /// dropout and every other random draw are keyed by, so the model trained is the same either way (up to
    /// floating-point summation order).
    ///
    /// `inputDropout` says whether training will drop input features, which rules out the lookup representation;
    /// `representation`, when given, is used instead of the one the features' own statistics call for.
    public static func wholeGraph(
        _ dataset: Dataset, aggregation: Aggregation, localityOrder: Bool = true, inputDropout: Bool = false,
        representation: FeatureRepresentation? = nil
    ) -> RankShard {
        let order = localityOrder ? dataset.graph.reverseCuthillMcKeeOrder() : Array(0..<dataset.nodeCount)
        let data = localityOrder ? dataset.renumbered(order) : dataset
        return RankShard(
            nodeIDs: order.map { Int32($0) }, features: representation.map { LayerInput(data.features, representation: $0) }
                ?? LayerInput(data.features, inputDropout: inputDropout),
            labels: data.labels, split: data.split, propagation: .wholeGraph(data.graph, aggregation),
            globalCounts: GlobalSplitCounts(data.split))
    }

    /// One rank's shard of a partitioned dataset. `featureRepresentation` must be the same on every rank (decide
    /// it from all ranks' `FeatureStatistics`): dense and sparse first layers exchange different rows.
    public init(part: Part, aggregation: Aggregation, featureRepresentation: FeatureRepresentation) {
        self.init(
            nodeIDs: part.innerGlobalIDs, features: LayerInput(part.features, representation: featureRepresentation),
            labels: part.labels, split: part.split,
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
    /// Input features in the given representation (dense features are always dense).
    public init(_ features: NodeFeatures, representation: FeatureRepresentation) {
        switch features {
        case .dense(let m):
            self = .dense(m)
        case .sparse(let s):
            switch representation {
            case .dense: self = .dense(s.dense())
            // A rank whose part has no non-zeros has no codes; CSR gives it the same (zero) products.
            case .lookup: self = .sparse(SparseFeatures(s, binary: BinaryMatrix(s)))
            case .csr: self = .sparse(SparseFeatures(s))
            }
        }
    }

    /// Input features in the representation their own statistics call for (one process, or tests).
    public init(_ features: NodeFeatures, inputDropout: Bool = false) {
        self.init(features, representation: FeatureStatistics(features).representation(inputDropout: inputDropout))
    }
}
