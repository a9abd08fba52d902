import HaloTensor

/// Node input features: dense, or sparse CSR when most entries are zero (bag-of-words graphs).
///
/// Sparse features are never densified: the first layer multiplies them by its weight with SpMM.
public enum NodeFeatures: Sendable, Equatable {
    case dense(Matrix)
    case sparse(SparseMatrix)

    public var nodeCount: Int {
        switch self {
        case .dense(let m): return m.rows
        case .sparse(let s): return s.rows
        }
    }

    public var width: Int {
        switch self {
        case .dense(let m): return m.cols
        case .sparse(let s): return s.cols
        }
    }

    /// The features of `nodes`, in that order (a partition's inner nodes).
    public func selectingRows(_ nodes: [Int]) -> NodeFeatures {
        switch self {
        case .dense(let m):
            var out = Matrix(rows: nodes.count, cols: m.cols)
            gatherRows(m, nodes.map { Int32($0) }, into: &out)
            return .dense(out)
        case .sparse(let s):
            return .sparse(s.selectingRows(nodes))
        }
    }

    /// The dense form (small graphs and tests).
    public func denseMatrix() -> Matrix {
        switch self {
        case .dense(let m): return m
        case .sparse(let s): return s.dense()
        }
    }
}

/// Node labels: one class per node (`-1` = unlabelled), or a 0/1 vector per node for multi-label tasks.
public enum NodeLabels: Sendable, Equatable {
    case singleLabel(classes: [Int32], classCount: Int)
    /// Row-major `nodeCount × classCount` 0/1 matrix.
    case multiLabel(targets: [UInt8], classCount: Int)

    public var classCount: Int {
        switch self {
        case .singleLabel(_, let c), .multiLabel(_, let c): return c
        }
    }

    public var isMultiLabel: Bool {
        if case .multiLabel = self { return true }
        return false
    }

    public var nodeCount: Int {
        switch self {
        case .singleLabel(let classes, _): return classes.count
        case .multiLabel(let targets, let c): return c == 0 ? 0 : targets.count / c
        }
    }

    /// The labels of `nodes`, in that order.
    public func selectingRows(_ nodes: [Int]) -> NodeLabels {
        switch self {
        case .singleLabel(let classes, let c):
            return .singleLabel(classes: nodes.map { classes[$0] }, classCount: c)
        case .multiLabel(let targets, let c):
            var out = [UInt8]()
            out.reserveCapacity(nodes.count * c)
            for v in nodes { out.append(contentsOf: targets[(v * c)..<((v + 1) * c)]) }
            return .multiLabel(targets: out, classCount: c)
        }
    }
}

/// Which nodes are used for training, model selection and the final score. Disjoint.
public struct NodeSplit: Sendable, Equatable {
    public var train: [Bool]
    public var validation: [Bool]
    public var test: [Bool]

    public init(train: [Bool], validation: [Bool], test: [Bool]) {
        self.train = train
        self.validation = validation
        self.test = test
    }

    public var trainCount: Int { train.reduce(0) { $0 + ($1 ? 1 : 0) } }
    public var validationCount: Int { validation.reduce(0) { $0 + ($1 ? 1 : 0) } }
    public var testCount: Int { test.reduce(0) { $0 + ($1 ? 1 : 0) } }

    public func selectingRows(_ nodes: [Int]) -> NodeSplit {
        NodeSplit(train: nodes.map { train[$0] }, validation: nodes.map { validation[$0] }, test: nodes.map { test[$0] })
    }
}

/// How many nodes each split mask holds, as the dataset and partition formats record it (`split_sizes`,
/// `global_split_sizes`).
public struct SplitSizes: Codable, Equatable, Sendable {
    public var train: Int
    public var val: Int
    public var test: Int

    public init(train: Int, val: Int, test: Int) {
        self.train = train
        self.val = val
        self.test = test
    }
}

/// A node-classification dataset: graph, features, labels and split.
public struct Dataset: Sendable, Equatable {
    public var name: String
    public var graph: Graph
    public var features: NodeFeatures
    public var labels: NodeLabels
    public var split: NodeSplit

    public init(name: String, graph: Graph, features: NodeFeatures, labels: NodeLabels, split: NodeSplit) {
        precondition(features.nodeCount == graph.nodeCount, "features have \(features.nodeCount) rows for \(graph.nodeCount) nodes")
        precondition(labels.nodeCount == graph.nodeCount, "labels cover \(labels.nodeCount) nodes of \(graph.nodeCount)")
        precondition(split.train.count == graph.nodeCount && split.validation.count == graph.nodeCount
            && split.test.count == graph.nodeCount, "split masks must cover every node")
        self.name = name
        self.graph = graph
        self.features = features
        self.labels = labels
        self.split = split
    }

    public var nodeCount: Int { graph.nodeCount }
    public var featureWidth: Int { features.width }
    public var classCount: Int { labels.classCount }
}

extension NodeFeatures {
    /// Each row divided by the sum of its absolute values (rows summing to zero stay zero): the feature
    /// preprocessing of Kipf & Welling's GCN (PyG's `NormalizeFeatures`). Row-local, so a partition may apply it
    /// to its own rows and get the same values.
    public func rowNormalized() -> NodeFeatures {
        switch self {
        case .dense(var m):
            let cols = m.cols
            m.storage.withUnsafeMutableBufferPointer { p in
                for r in 0..<m.rows {
                    var sum: Float = 0
                    for j in 0..<cols { sum += abs(p[r * cols + j]) }
                    if sum > 0 { for j in 0..<cols { p[r * cols + j] /= sum } }
                }
            }
            return .dense(m)
        case .sparse(var s):
            for r in 0..<s.rows {
                let range = s.rowPointers[r]..<s.rowPointers[r + 1]
                let sum = s.values[range].reduce(Float(0)) { $0 + abs($1) }
                if sum > 0 { for e in range { s.values[e] /= sum } }
            }
            return .sparse(s)
        }
    }
}
