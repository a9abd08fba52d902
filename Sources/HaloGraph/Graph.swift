import HaloTensor

/// A directed graph over nodes `0..<nodeCount`, stored as in-neighbour lists (CSR by destination).
///
/// Message passing computes each node's output from its in-neighbours, so the in-CSR is exactly the row structure
/// of every aggregation operator. Edges are kept deduplicated and without self loops; normalisation adds one self
/// loop per node (see `AggregationOperator`). Undirected graphs are stored with both directions.
public struct Graph: Sendable, Equatable {
    public let nodeCount: Int
    /// `inPointers[v] ..< inPointers[v+1]` indexes the in-neighbours of `v` in `inSources`.
    public let inPointers: [Int]
    /// Source node of each edge, grouped by destination, increasing within a destination.
    public let inSources: [Int32]
    /// Out-degree of each node (without self loop).
    public let outDegrees: [Int32]

    public var edgeCount: Int { inSources.count }

    /// Builds the graph from directed `(source, destination)` pairs, dropping self loops and duplicates.
    public init(nodeCount: Int, sources: [Int32], destinations: [Int32]) {
        precondition(sources.count == destinations.count, "edge lists differ in length")
        precondition(nodeCount <= Int(Int32.max), "node count \(nodeCount) exceeds Int32 ids")
        var counts = [Int](repeating: 0, count: nodeCount + 1)
        for (s, d) in zip(sources, destinations) {
            precondition(s >= 0 && Int(s) < nodeCount && d >= 0 && Int(d) < nodeCount, "edge (\(s), \(d)) outside 0..<\(nodeCount)")
            if s != d { counts[Int(d) + 1] += 1 }
        }
        for v in 0..<nodeCount { counts[v + 1] += counts[v] }
        var fill = counts
        var srcs = [Int32](repeating: 0, count: counts[nodeCount])
        for (s, d) in zip(sources, destinations) where s != d {
            srcs[fill[Int(d)]] = s
            fill[Int(d)] += 1
        }
        // Sort and deduplicate each in-list, compacting in place.
        let pointers = sortAndDeduplicateRows(pointers: counts, entries: &srcs)
        var outDegrees = [Int32](repeating: 0, count: nodeCount)
        for s in srcs { outDegrees[Int(s)] += 1 }
        self.nodeCount = nodeCount
        self.inPointers = pointers
        self.inSources = srcs
        self.outDegrees = outDegrees
    }

    /// In-degree of `v` (without self loop).
    @inlinable
    public func inDegree(_ v: Int) -> Int { inPointers[v + 1] - inPointers[v] }

    /// The in-neighbours of `v`.
    public func inNeighbors(_ v: Int) -> ArraySlice<Int32> { inSources[inPointers[v]..<inPointers[v + 1]] }

    /// Whether the edge `source → destination` exists (binary search in the destination's sorted in-list).
    public func hasEdge(from source: Int, to destination: Int) -> Bool {
        var lo = inPointers[destination], hi = inPointers[destination + 1]
        let target = Int32(source)
        while lo < hi {
            let mid = (lo + hi) / 2
            if inSources[mid] < target { lo = mid + 1 } else { hi = mid }
        }
        return lo < inPointers[destination + 1] && inSources[lo] == target
    }

    /// Degrees with the self loop that normalisation adds, as used by GCN and SAGE weights.
    public var degreesWithSelfLoops: NodeDegrees {
        NodeDegrees(
            inDegrees: (0..<nodeCount).map { Int32(inDegree($0) + 1) },
            outDegrees: outDegrees.map { $0 + 1 })
    }

    /// All edges as (source, destination) pairs sorted by (source, destination), the dataset file order.
    public func edgesSortedBySource() -> (sources: [Int32], destinations: [Int32]) {
        var counts = [Int](repeating: 0, count: nodeCount + 1)
        for s in inSources { counts[Int(s) + 1] += 1 }
        for v in 0..<nodeCount { counts[v + 1] += counts[v] }
        var fill = counts
        var srcs = [Int32](repeating: 0, count: edgeCount), dsts = [Int32](repeating: 0, count: edgeCount)
        // Destinations are visited in increasing order, so each source's list comes out sorted.
        for d in 0..<nodeCount {
            for e in inPointers[d]..<inPointers[d + 1] {
                let s = Int(inSources[e])
                srcs[fill[s]] = Int32(s)
                dsts[fill[s]] = Int32(d)
                fill[s] += 1
            }
        }
        return (srcs, dsts)
    }

    /// All edges as interleaved (source, destination) pairs sorted by (source, destination): the edge file's
    /// layout, built without the two separate arrays of `edgesSortedBySource`.
    public func edgePairsSortedBySource() -> [Int32] {
        var counts = [Int](repeating: 0, count: nodeCount + 1)
        for s in inSources { counts[Int(s) + 1] += 1 }
        for v in 0..<nodeCount { counts[v + 1] += counts[v] }
        return [Int32](unsafeUninitializedCapacity: 2 * edgeCount) { pairs, initialized in
            // Destinations are visited in increasing order, so each source's list comes out sorted.
            for d in 0..<nodeCount {
                for e in inPointers[d]..<inPointers[d + 1] {
                    let s = Int(inSources[e])
                    pairs[2 * counts[s]] = Int32(s)
                    pairs[2 * counts[s] + 1] = Int32(d)
                    counts[s] += 1
                }
            }
            initialized = 2 * edgeCount
        }
    }

    /// Whether every edge (u, v) has its reverse (v, u).
    public var isSymmetric: Bool {
        for v in 0..<nodeCount {
            for u in inNeighbors(v) where !hasEdge(from: v, to: Int(u)) { return false }
        }
        return true
    }
}

/// Global in- and out-degrees of every node, self loop included.
///
/// Partitions carry these for their inner and halo nodes so that a partition-local operator has exactly the
/// weights of the global one.
public struct NodeDegrees: Sendable, Equatable {
    public var inDegrees: [Int32]
    public var outDegrees: [Int32]

    public init(inDegrees: [Int32], outDegrees: [Int32]) {
        self.inDegrees = inDegrees
        self.outDegrees = outDegrees
    }
}
