import HaloGraph

/// A converted dataset, with what meta.json should say about where it came from and what the conversion did.
public struct ImportedDataset: Sendable {
    public var dataset: Dataset
    /// meta.json's `split`: the source's split scheme, or how the split was generated.
    public var splitDescription: String
    /// meta.json's `source`.
    public var source: String
    /// One line per thing a user should know (edges made undirected, self loops dropped, …).
    public var notes: [String]
}

/// How directed source edges become the dataset's edges.
public enum EdgeDirection: String, Sendable, CaseIterable {
    /// Every edge in both directions, duplicates merged: what GCN, SAGE and GAT expect, what OGB's loader does for
    /// graphs stored one direction per pair (`add_inverse_edge`), and what OGB's examples do to ogbn-arxiv
    /// (`to_symmetric`).
    case undirected
    /// The edges as the source lists them: messages flow from the first node id to the second.
    case asStored = "as-stored"
}

/// Collects edges as a source yields them and builds the `Graph` (which drops self loops and duplicates), keeping
/// the counts a user should hear about.
struct EdgeListBuilder {
    let nodeCount: Int
    let direction: EdgeDirection
    private var sources: [Int32] = []
    private var destinations: [Int32] = []
    private(set) var storedEdges = 0
    private(set) var selfLoops = 0

    /// `expectedEdges`, when the source declares it, reserves the arrays once instead of growing them.
    init(nodeCount: Int, direction: EdgeDirection, expectedEdges: Int?) {
        self.nodeCount = nodeCount
        self.direction = direction
        if let expectedEdges {
            let capacity = direction == .undirected ? 2 * expectedEdges : expectedEdges
            sources.reserveCapacity(capacity)
            destinations.reserveCapacity(capacity)
        }
    }

    /// Adds `source → destination`; both must be in `0..<nodeCount` (the caller checks, to name the input).
    mutating func add(_ source: Int32, _ destination: Int32) {
        storedEdges += 1
        if source == destination {
            selfLoops += 1
            return
        }
        sources.append(source)
        destinations.append(destination)
        if direction == .undirected {
            sources.append(destination)
            destinations.append(source)
        }
    }

    /// The graph; the collected arrays are released as it is built.
    mutating func build() -> (Graph, note: String) {
        let graph = Graph(nodeCount: nodeCount, sources: sources, destinations: destinations)
        sources = []
        destinations = []
        var note = "\(storedEdges) edges read"
        if selfLoops > 0 { note += ", \(selfLoops) self loop\(selfLoops == 1 ? "" : "s") dropped (normalisation adds its own)" }
        switch direction {
        case .undirected:
            note += "; made undirected: \(graph.edgeCount) directed edges (each pair both ways, duplicates merged)"
        case .asStored:
            note += "; kept as stored: \(graph.edgeCount) directed edges (duplicates merged)"
        }
        return (graph, note)
    }
}
