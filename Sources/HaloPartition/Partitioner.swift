import CMetis
import HaloGraph
import HaloTensor

/// How nodes are assigned to parts.
public enum PartitionMethod: String, Sendable, CaseIterable, Codable {
    /// METIS k-way, minimising the edge cut of the symmetrised graph (the sources' choice).
    case metis
    /// Each node to a uniformly random part (a counter-based draw per node): balanced in expectation, cut ≈ (P−1)/P
    /// of the edges. The worst case for communication.
    case random
    /// Blocks of consecutive ids, `v·P/N`: perfectly balanced; cut depends on how the ids were ordered.
    case contiguous
}

/// An assignment of every node of a graph to one of `partCount` parts.
public struct GraphPartitioning: Sendable, Equatable {
    public let partCount: Int
    /// The part owning each node, in `0..<partCount`.
    public let owner: [Int32]
    public let method: PartitionMethod
    public let seed: UInt64

    public init(partCount: Int, owner: [Int32], method: PartitionMethod, seed: UInt64) {
        precondition(partCount >= 1, "a partitioning needs at least one part, got \(partCount)")
        precondition(owner.allSatisfy { $0 >= 0 && Int($0) < partCount }, "owner outside 0..<\(partCount)")
        self.partCount = partCount
        self.owner = owner
        self.method = method
        self.seed = seed
    }

    public var nodeCount: Int { owner.count }

    /// Nodes per part.
    public var partSizes: [Int] {
        var sizes = [Int](repeating: 0, count: partCount)
        for p in owner { sizes[Int(p)] += 1 }
        return sizes
    }

    /// Edge cut, balance and part sizes of this partitioning of `graph`.
    public func quality(of graph: Graph) -> PartitionQuality {
        precondition(graph.nodeCount == owner.count, "partitioning covers \(owner.count) nodes, graph has \(graph.nodeCount)")
        var crossing = 0, cutPairs = 0
        for v in 0..<graph.nodeCount {
            let ov = owner[v]
            for u in graph.inNeighbors(v) where owner[Int(u)] != ov {
                crossing += 1
                // Each unordered pair once: from its smaller end, or from this end when the reverse edge is absent.
                if Int(u) < v || !graph.hasEdge(from: v, to: Int(u)) { cutPairs += 1 }
            }
        }
        return PartitionQuality(partSizes: partSizes, cutEdges: cutPairs, cutDirectedEdges: crossing,
                                directedEdgeCount: graph.edgeCount)
    }
}

/// How good a partitioning is: what crosses parts (communication) and how even the parts are (load).
public struct PartitionQuality: Sendable, Equatable, Codable {
    public var partSizes: [Int]
    /// Unordered node pairs `{u, v}` in different parts joined by an edge in either direction. For a symmetric graph
    /// (both directions stored) this is `cutDirectedEdges / 2`, the edge cut METIS minimises.
    public var cutEdges: Int
    /// Directed edges whose endpoints are in different parts: the rows that cross ranks in one aggregation.
    public var cutDirectedEdges: Int
    public var directedEdgeCount: Int

    public init(partSizes: [Int], cutEdges: Int, cutDirectedEdges: Int, directedEdgeCount: Int) {
        self.partSizes = partSizes
        self.cutEdges = cutEdges
        self.cutDirectedEdges = cutDirectedEdges
        self.directedEdgeCount = directedEdgeCount
    }

    /// Fraction of the directed edges that cross parts (for a symmetric graph also the fraction of undirected
    /// edges cut).
    public var cutFraction: Double {
        directedEdgeCount == 0 ? 0 : Double(cutDirectedEdges) / Double(directedEdgeCount)
    }

    /// Largest part over the mean part size; 1 is perfect balance.
    public var balance: Double {
        let total = partSizes.reduce(0, +)
        guard total > 0, !partSizes.isEmpty else { return 1 }
        return Double(partSizes.max()!) * Double(partSizes.count) / Double(total)
    }
}

/// Why a graph could not be partitioned.
public enum PartitionerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `parts` is below 1 or above the number of nodes.
    case invalidPartCount(parts: Int, nodes: Int)
    /// The symmetrised graph has more adjacency entries than METIS's `idx_t` can index.
    case graphTooLargeForMetis(adjacencyEntries: Int, limit: Int)
    /// `METIS_PartGraphKway` returned a status other than `METIS_OK`.
    case metisFailed(status: Int32)

    public var description: String {
        switch self {
        case .invalidPartCount(let parts, let nodes):
            return "cannot split \(nodes) nodes into \(parts) parts: expected 1...\(max(nodes, 1)) parts"
        case .graphTooLargeForMetis(let entries, let limit):
            return "the symmetrised graph has \(entries) adjacency entries, more than METIS's idx_t limit \(limit)"
        case .metisFailed(let status):
            let meaning = switch status {
            case -2: "METIS_ERROR_INPUT: erroneous inputs or options"
            case -3: "METIS_ERROR_MEMORY: insufficient memory"
            case -4: "METIS_ERROR: some other error"
            default: "unknown status"
            }
            return "METIS_PartGraphKway failed with status \(status) (\(meaning))"
        }
    }
}

/// Assigns the nodes of a graph to parts.
public enum Partitioner {
    /// Splits `graph` into `parts` parts with `method`. Deterministic for a given `seed` (METIS's own seed option,
    /// or the counter-based draw of `random`). One part gives every node to part 0 without calling METIS.
    public static func partition(graph: Graph, parts: Int, method: PartitionMethod, seed: UInt64 = 0) throws -> GraphPartitioning {
        let n = graph.nodeCount
        guard parts >= 1, parts <= max(n, 1) else { throw PartitionerError.invalidPartCount(parts: parts, nodes: n) }
        if parts == 1 {
            return GraphPartitioning(partCount: 1, owner: [Int32](repeating: 0, count: n), method: method, seed: seed)
        }
        let owner: [Int32]
        switch method {
        case .contiguous:
            owner = (0..<n).map { Int32($0 * parts / n) }
        case .random:
            let rng = CounterRandom(seed: seed)
            owner = (0..<n).map { v in
                Int32(rng.word64(.partition, 0, 0, UInt32(truncatingIfNeeded: v), index: 0) % UInt64(parts))
            }
        case .metis:
            owner = try metis(graph, parts: parts, seed: seed)
        }
        return GraphPartitioning(partCount: parts, owner: owner, method: method, seed: seed)
    }

    /// METIS k-way with the edge-cut objective on the symmetrised, loop-free graph (unit weights).
    static func metis(_ graph: Graph, parts: Int, seed: UInt64) throws -> [Int32] {
        let n = graph.nodeCount
        let (pointers, neighbours) = symmetrisedAdjacency(graph)
        guard neighbours.count <= Int(idx_t.max) else {
            throw PartitionerError.graphTooLargeForMetis(adjacencyEntries: neighbours.count, limit: Int(idx_t.max))
        }
        var xadj = pointers.map { idx_t($0) }
        var adjncy = neighbours.map { idx_t($0) }
        var nvtxs = idx_t(n), ncon: idx_t = 1, nparts = idx_t(parts), objval: idx_t = 0
        var part = [idx_t](repeating: 0, count: n)
        var options = [idx_t](repeating: 0, count: Int(METIS_NOPTIONS))
        METIS_SetDefaultOptions(&options)
        options[Int(METIS_OPTION_OBJTYPE.rawValue)] = idx_t(METIS_OBJTYPE_CUT.rawValue)
        options[Int(METIS_OPTION_CONTIG.rawValue)] = 0
        options[Int(METIS_OPTION_NUMBERING.rawValue)] = 0
        // METIS seeds its generator with a non-negative idx_t; fold the 64-bit seed into one.
        options[Int(METIS_OPTION_SEED.rawValue)] = idx_t(truncatingIfNeeded: (seed ^ (seed >> 32)) & UInt64(idx_t.max))
        let status = METIS_PartGraphKway(
            &nvtxs, &ncon, &xadj, &adjncy, nil, nil, nil, &nparts, nil, nil, &options, &objval, &part)
        guard status == METIS_OK.rawValue else { throw PartitionerError.metisFailed(status: Int32(status)) }
        return part.map { Int32($0) }
    }

    /// The undirected adjacency `N(v) = in(v) ∪ out(v)`, sorted and deduplicated per node (no self loops: `Graph`
    /// has none). A symmetric graph's in-lists already are this, which the common case uses directly.
    static func symmetrisedAdjacency(_ graph: Graph) -> (pointers: [Int], neighbours: [Int32]) {
        if graph.isSymmetric { return (graph.inPointers, graph.inSources) }
        let n = graph.nodeCount
        var pointers = [Int](repeating: 0, count: n + 1)
        for v in 0..<n { pointers[v + 1] = pointers[v] + graph.inDegree(v) + Int(graph.outDegrees[v]) }
        var fill = pointers
        var neighbours = [Int32](repeating: 0, count: pointers[n])
        for v in 0..<n {
            for u in graph.inNeighbors(v) {
                neighbours[fill[v]] = u
                fill[v] += 1
                neighbours[fill[Int(u)]] = Int32(v)
                fill[Int(u)] += 1
            }
        }
        let compact = sortAndDeduplicateRows(pointers: pointers, entries: &neighbours)
        return (compact, neighbours)
    }
}
