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
    public static func wholeGraph(_ dataset: Dataset, aggregation: Aggregation, localityOrder: Bool = true) -> RankShard {
        let order = localityOrder ? dataset.graph.reverseCuthillMcKeeOrder() : Array(0..<dataset.nodeCount)
        let data = localityOrder ? dataset.renumbered(order) : dataset
        return RankShard(
            nodeIDs: order.map { Int32($0) }, features: LayerInput(data.features),
            labels: data.labels, split: data.split, propagation: .wholeGraph(data.graph, aggregation),
            globalCounts: GlobalSplitCounts(data.split))
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
    /// Density above which sparse input features are multiplied as a dense matrix.
    ///
    /// A sparse product moves about `nnz · width · 4` bytes at memory speed (~30 GB/s here); the dense GEMM does
    /// `2 · rows · cols · width` flops at ~150 GFLOP/s. The dense product wins above roughly 10% density; 5% leaves
    /// room for SpMM's better cache behaviour on narrow rows (measured: Amazon-Photo, 35% dense, first layer 3×
    /// faster dense; Coauthor-Physics, 0.4%, sparse).
    public static let denseFeatureDensity = 0.05
    /// Largest dense copy made of sparse features (bytes).
    public static let denseFeatureBudget = 2 << 30

    /// Input features as a layer sees them: sparse features keep their CSR form (with their transpose ready)
    /// unless they are dense enough for GEMM to be faster and small enough to densify.
    public init(_ features: NodeFeatures) {
        switch features {
        case .dense(let m):
            self = .dense(m)
        case .sparse(let s):
            let cells = s.rows * s.cols
            let density = cells > 0 ? Double(s.nonZeroCount) / Double(cells) : 0
            self = density >= Self.denseFeatureDensity && cells * 4 <= Self.denseFeatureBudget
                ? .dense(s.dense()) : .sparse(SparseFeatures(s))
        }
    }
}
