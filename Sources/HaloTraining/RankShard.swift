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
    /// `2 · rows · cols · width` flops at ~450 GFLOP/s. The dense product wins above roughly 10% density; 5% leaves
    /// room for SpMM's better cache behaviour on narrow rows (measured by `halo microbench` on Amazon-Photo's
    /// 35%-dense features at width 256: `X·W` 8.6 ms CSR, 6.3–6.9 ms GEMM; `Xᵀ·G` 14–17 ms CSR, 7.2–7.5 ms GEMM;
    /// Coauthor-Physics, 0.4%, stays sparse). Features with one value in every non-zero take the table-lookup
    /// path first (`binaryFeatureDensity`).
    public static let denseFeatureDensity = 0.05
    /// Largest dense copy made of sparse features (bytes).
    public static let denseFeatureBudget = 2 << 30
    /// Density above which indicator features (every non-zero one value) are multiplied by table lookup.
    ///
    /// Lookup costs one vector addition per four columns of a row, CSR one multiply-add per non-zero but gathered
    /// from L2 at about half the rate (see `BinaryMatrixProducts.swift`), so lookup wins above about 1/8 density.
    /// It always beats the dense GEMM, which multiplies every column.
    public static let binaryFeatureDensity = 0.125

    /// Whether aggregating these features once before training (`--precompute-layer0`) pays on one process:
    /// dense features, and indicator features dense enough for table lookup whose dense aggregate `Â·X` fits the
    /// dense-copy budget (measured on Amazon-Photo: 17.8–18.4 ms per epoch against 18.1–19.4 ms by lookup every
    /// epoch). Other sparse features stay sparse: their aggregate would be dense and far larger.
    public var suitsPrecomputedAggregation: Bool {
        switch self {
        case .dense: return true
        case .sparse(let s): return s.binary != nil && s.matrix.rows * s.matrix.cols * 4 <= Self.denseFeatureBudget
        }
    }

    /// Input features as a layer sees them: sparse features keep their CSR form (with their transpose ready)
    /// unless they are dense enough for table lookup (indicator features) or GEMM to be faster; GEMM only when
    /// the dense copy fits the budget.
    public init(_ features: NodeFeatures) {
        switch features {
        case .dense(let m):
            self = .dense(m)
        case .sparse(let s):
            let cells = s.rows * s.cols
            let density = cells > 0 ? Double(s.nonZeroCount) / Double(cells) : 0
            if density >= Self.binaryFeatureDensity, let codes = BinaryMatrix(s) {
                self = .sparse(SparseFeatures(s, binary: codes))
            } else {
                self = density >= Self.denseFeatureDensity && cells * 4 <= Self.denseFeatureBudget
                    ? .dense(s.dense()) : .sparse(SparseFeatures(s))
            }
        }
    }
}
