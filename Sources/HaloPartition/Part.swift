import HaloGraph
import HaloTensor

/// Node counts of the train / validation / test splits over the WHOLE graph, which every rank needs to normalise
/// its share of the loss and of the metrics.
public struct GlobalSplitCounts: Sendable, Equatable, Codable {
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

/// One rank's share of a partitioned dataset: what a rank loads and trains on.
///
/// Local numbering (see `algorithms.md` §1): inner nodes `0..<innerCount`, central first (`0..<centralCount`: no
/// in-neighbour owned by another rank) then marginal, each group in the whole graph's locality order (reverse
/// Cuthill–McKee, `Graph.reverseCuthillMcKeeOrder`, so aggregation gathers from cache); then the halo nodes
/// `innerCount..<innerCount+haloCount`, grouped by owner rank ascending and in increasing global id within an owner.
/// `haloRanges[p]` locates owner `p`'s block inside the halo (offsets relative to the halo's start).
///
/// Exchange: rank `r` sends, to each peer `p`, the rows `sendLists[p]` (local inner indices of `r`) in that order;
/// they land, in the same order, in `p`'s halo block `p.haloRanges[r]`. Both sides order the block by global id.
public struct Part: Sendable, Equatable {
    public var datasetName: String
    public var rank: Int
    public var partCount: Int
    /// Nodes in the whole graph.
    public var totalNodeCount: Int
    /// Global id of each inner node, in local order: central nodes, then marginal, each in locality order.
    public var innerGlobalIDs: [Int32]
    public var centralCount: Int
    /// Global id of each halo node: grouped by owner rank ascending, ascending within an owner.
    public var haloGlobalIDs: [Int32]
    /// Per rank `p`, the offsets of `p`'s block in `haloGlobalIDs`; empty for this rank (and for non-neighbours).
    public var haloRanges: [Range<Int>]
    /// In-edge CSR over the inner rows: `inPointers[i]..<inPointers[i+1]` indexes `inSources`.
    public var inPointers: [Int]
    /// Sources of the in-edges of each inner row, in local numbering (inner `0..<I`, halo `I..<I+H`), strictly
    /// increasing within a row; no self loops.
    public var inSources: [Int32]
    /// GLOBAL in/out degrees (self loop included) of the `I + H` local nodes, as `Graph.degreesWithSelfLoops`.
    public var degrees: NodeDegrees
    /// Per peer `p`: the local inner indices whose rows `p` needs, in the order of `p`'s halo block from this rank.
    /// Empty for this rank.
    public var sendLists: [[Int32]]
    /// Features, labels and split of the inner nodes, in local order.
    public var features: NodeFeatures
    public var labels: NodeLabels
    public var split: NodeSplit
    public var globalSplitCounts: GlobalSplitCounts

    public init(
        datasetName: String, rank: Int, partCount: Int, totalNodeCount: Int,
        innerGlobalIDs: [Int32], centralCount: Int, haloGlobalIDs: [Int32], haloRanges: [Range<Int>],
        inPointers: [Int], inSources: [Int32], degrees: NodeDegrees, sendLists: [[Int32]],
        features: NodeFeatures, labels: NodeLabels, split: NodeSplit, globalSplitCounts: GlobalSplitCounts
    ) {
        let inner = innerGlobalIDs.count, local = inner + haloGlobalIDs.count
        precondition(rank >= 0 && rank < partCount, "rank \(rank) outside 0..<\(partCount)")
        precondition(centralCount >= 0 && centralCount <= inner, "central count \(centralCount) outside 0...\(inner)")
        precondition(haloRanges.count == partCount && sendLists.count == partCount, "halo ranges and send lists need one entry per rank")
        precondition(inPointers.count == inner + 1 && inPointers.last == inSources.count, "in-CSR must have \(inner + 1) pointers ending at the edge count")
        precondition(degrees.inDegrees.count == local && degrees.outDegrees.count == local, "degrees must cover the \(local) local nodes")
        precondition(features.nodeCount == inner && labels.nodeCount == inner && split.train.count == inner,
                     "features, labels and split must cover the \(inner) inner nodes")
        self.datasetName = datasetName
        self.rank = rank
        self.partCount = partCount
        self.totalNodeCount = totalNodeCount
        self.innerGlobalIDs = innerGlobalIDs
        self.centralCount = centralCount
        self.haloGlobalIDs = haloGlobalIDs
        self.haloRanges = haloRanges
        self.inPointers = inPointers
        self.inSources = inSources
        self.degrees = degrees
        self.sendLists = sendLists
        self.features = features
        self.labels = labels
        self.split = split
        self.globalSplitCounts = globalSplitCounts
    }

    public var innerCount: Int { innerGlobalIDs.count }
    public var marginalCount: Int { innerCount - centralCount }
    public var haloCount: Int { haloGlobalIDs.count }
    /// In-edges stored (inner destinations; no self loops).
    public var edgeCount: Int { inSources.count }
    public var classCount: Int { labels.classCount }
    public var featureWidth: Int { features.width }
    /// Rows sent per exchange, all peers together.
    public var sendCount: Int { sendLists.reduce(0) { $0 + $1.count } }

    /// Where the rows received from `peer` land, in local numbering (`innerCount + haloRanges[peer]`).
    public func receiveRange(from peer: Int) -> Range<Int> {
        (innerCount + haloRanges[peer].lowerBound)..<(innerCount + haloRanges[peer].upperBound)
    }

    /// The `inner × (inner + halo)` aggregation operator of this rank, with exactly the weights of the global
    /// operator `graph.aggregationOperator(aggregation)` (self loop once, global degrees), columns sorted.
    public func propagationOperator(_ aggregation: Aggregation) -> PropagationOperator {
        let inner = innerCount
        var pointers = [Int](repeating: 0, count: inner + 1)
        for i in 0..<inner { pointers[i + 1] = inPointers[i + 1] + i + 1 }
        var columns = [Int32](repeating: 0, count: pointers[inner])
        var values = [Float](repeating: 0, count: pointers[inner])
        let dIn = degrees.inDegrees, dOut = degrees.outDegrees
        for i in 0..<inner {
            let di = dIn[i]
            var k = pointers[i]
            var selfPlaced = false
            for e in inPointers[i]..<inPointers[i + 1] {
                let s = inSources[e]
                if !selfPlaced && Int(s) > i {
                    columns[k] = Int32(i)
                    values[k] = aggregation.weight(destinationInDegree: di, sourceOutDegree: dOut[i])
                    k += 1
                    selfPlaced = true
                }
                columns[k] = s
                values[k] = aggregation.weight(destinationInDegree: di, sourceOutDegree: dOut[Int(s)])
                k += 1
            }
            if !selfPlaced {
                columns[k] = Int32(i)
                values[k] = aggregation.weight(destinationInDegree: di, sourceOutDegree: dOut[i])
            }
        }
        let forward = SparseMatrix(rows: inner, cols: inner + haloCount, rowPointers: pointers, columnIndices: columns, values: values)
        return PropagationOperator(aggregation: aggregation, forward: forward, innerCount: inner, centralCount: centralCount)
    }
}

// MARK: - Building the parts

extension Part {
    /// Cuts `dataset` into the parts of `partitioning`, one per rank, in rank order.
    ///
    /// Linear in nodes and edges (plus sorting each halo and each local in-list): global→local maps are flat
    /// `[Int32]` arrays shared by all parts, never dictionaries.
    /// With `localityOrder` false the inner groups are in increasing global id instead (small hand-checked layouts).
    public static func build(dataset: Dataset, partitioning: GraphPartitioning, localityOrder: Bool = true) -> [Part] {
        let graph = dataset.graph
        let n = graph.nodeCount, partCount = partitioning.partCount
        let owner = partitioning.owner
        precondition(owner.count == n, "partitioning covers \(owner.count) nodes, dataset has \(n)")

        // A node is marginal when one of its in-neighbours is owned elsewhere.
        var marginal = [Bool](repeating: false, count: n)
        var innerCounts = [Int](repeating: 0, count: partCount), centralCounts = innerCounts
        graph.inPointers.withUnsafeBufferPointer { ptr in
            graph.inSources.withUnsafeBufferPointer { src in
                for v in 0..<n {
                    let o = owner[v]
                    for e in ptr[v]..<ptr[v + 1] where owner[Int(src[e])] != o {
                        marginal[v] = true
                        break
                    }
                    innerCounts[Int(o)] += 1
                    if !marginal[v] { centralCounts[Int(o)] += 1 }
                }
            }
        }

        // Inner numbering: central then marginal, each in locality order (one pass in that order).
        var innerIDs = innerCounts.map { [Int32](repeating: 0, count: $0) }
        var nextCentral = [Int](repeating: 0, count: partCount), nextMarginal = centralCounts
        var localIndex = [Int32](repeating: 0, count: n)
        for v in localityOrder ? graph.reverseCuthillMcKeeOrder() : Array(0..<n) {
            let o = Int(owner[v])
            let k: Int
            if marginal[v] {
                k = nextMarginal[o]
                nextMarginal[o] += 1
            } else {
                k = nextCentral[o]
                nextCentral[o] += 1
            }
            innerIDs[o][k] = Int32(v)
            localIndex[v] = Int32(k)
        }

        let degreesIn = graph.inPointers, degreesOut = graph.outDegrees
        var stamp = [Int32](repeating: -1, count: n)
        var haloSlot = [Int32](repeating: -1, count: n)
        var structures: [(halo: [Int32], ranges: [Range<Int>], pointers: [Int], sources: [Int32], degrees: NodeDegrees)] = []
        structures.reserveCapacity(partCount)

        for r in 0..<partCount {
            let inner = innerIDs[r], central = centralCounts[r], innerCount = inner.count
            let rank = Int32(r)

            // Halo: remote in-neighbours of the marginal rows, sorted by (owner, global id).
            var keys: [UInt64] = []
            for k in central..<innerCount {
                let v = Int(inner[k])
                for u in graph.inNeighbors(v) where owner[Int(u)] != rank && stamp[Int(u)] != rank {
                    stamp[Int(u)] = rank
                    keys.append(UInt64(UInt32(owner[Int(u)])) << 32 | UInt64(UInt32(u)))
                }
            }
            keys.sort()
            let halo = keys.map { Int32(truncatingIfNeeded: $0 & 0xFFFF_FFFF) }
            var bounds = [Int](repeating: 0, count: partCount + 1)
            for key in keys { bounds[Int(key >> 32) + 1] += 1 }
            for p in 0..<partCount { bounds[p + 1] += bounds[p] }
            let ranges = (0..<partCount).map { bounds[$0]..<bounds[$0 + 1] }
            for (h, u) in halo.enumerated() { haloSlot[Int(u)] = Int32(innerCount + h) }

            // Local in-CSR: inner sources by their owner-local index, halo sources by their slot; sorted per row.
            var pointers = [Int](repeating: 0, count: innerCount + 1)
            for (k, v) in inner.enumerated() { pointers[k + 1] = pointers[k] + graph.inDegree(Int(v)) }
            var sources = [Int32](repeating: 0, count: pointers[innerCount])
            sources.withUnsafeMutableBufferPointer { out in
                for (k, v) in inner.enumerated() {
                    var write = pointers[k]
                    for u in graph.inNeighbors(Int(v)) {
                        out[write] = owner[Int(u)] == rank ? localIndex[Int(u)] : haloSlot[Int(u)]
                        write += 1
                    }
                    if write - pointers[k] > 1 {
                        var row = UnsafeMutableBufferPointer(rebasing: out[pointers[k]..<write])
                        row.sort()
                    }
                }
            }

            // Global degrees (self loop included) of inner then halo nodes.
            let local = inner + halo
            let degrees = NodeDegrees(
                inDegrees: local.map { Int32(degreesIn[Int($0) + 1] - degreesIn[Int($0)] + 1) },
                outDegrees: local.map { degreesOut[Int($0)] + 1 })
            structures.append((halo, ranges, pointers, sources, degrees))
        }

        let globalCounts = GlobalSplitCounts(dataset.split)
        return (0..<partCount).map { r in
            let s = structures[r]
            // What peer p receives from r is p's halo block from r (ascending global ids), as r's local indices.
            let sendLists: [[Int32]] = (0..<partCount).map { p in
                p == r ? [] : structures[p].halo[structures[p].ranges[r]].map { localIndex[Int($0)] }
            }
            let rows = innerIDs[r].map { Int($0) }
            return Part(
                datasetName: dataset.name, rank: r, partCount: partCount, totalNodeCount: n,
                innerGlobalIDs: innerIDs[r], centralCount: centralCounts[r], haloGlobalIDs: s.halo, haloRanges: s.ranges,
                inPointers: s.pointers, inSources: s.sources, degrees: s.degrees, sendLists: sendLists,
                features: dataset.features.selectingRows(rows), labels: dataset.labels.selectingRows(rows),
                split: dataset.split.selectingRows(rows), globalSplitCounts: globalCounts)
        }
    }
}
