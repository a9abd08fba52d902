import Foundation
import HaloGraph
import HaloTensor

/// OGB's binary layout of a node-property dataset, which OGB uses for its largest graphs (ogbn-papers100M): NumPy
/// arrays in two `.npz` archives (OGB's `DatasetSaver` writes them with `numpy.savez_compressed`):
///
///     raw/data.npz        edge_index       (2, E) integers: sources in row 0, destinations in row 1
///                         node_feat        (N, F) floats of 16, 32 or 64 bits
///                         num_nodes_list   (1,) integer: N (a node-property dataset is one graph)
///                         num_edges_list   optional (1,) integer: E, checked
///     raw/node-label.npz  node_label       (N, 1) or (N,) classes, NaN or -1 unlabelled; or (N, tasks) 0/1 targets
///
/// Other members (`edge_feat`, which is a pickled `None` when absent, `node_year`, …) are never parsed.
///
/// Memory: `edge_index` and `node_feat`, the large members, are inflated a buffer at a time and decoded as they
/// arrive (`NPYStreamReader`): the edges into the edge lists being built (8 bytes an edge, 16 when made undirected)
/// with the sources kept until their destinations arrive (4 bytes an edge), the features straight into the matrix.
/// `node_label` and the counts are inflated whole (a stored member, from `numpy.savez`, is read from the
/// memory-mapped archive instead).
enum OGBBinaryLayout {
    static func read(_ tree: OGBTree, direction: EdgeDirection) throws -> OGBGraphContents {
        let data = NPZMembers(archive: try ZipArchive(url: tree.root.appendingPathComponent("raw/data.npz"), displayName: "\(tree.name)/raw/data.npz"),
                              layout: "OGB's raw/data.npz (edge_index, node_feat, num_nodes_list)")
        let nodeCount = try count(data, "num_nodes_list", what: "node count", limit: Int(Int32.max))
        let edgeCount = try data.has("num_edges_list") ? count(data, "num_edges_list", what: "edge count", limit: Int.max) : nil
        // The inflated edge_index is released before the features are inflated.
        let (graph, edgeNote) = try readEdges(data, nodeCount: nodeCount, declaredEdges: edgeCount, direction: direction)
        let features = try readFeatures(data, nodeCount: nodeCount)

        let labelArchive = try ZipArchive(url: tree.root.appendingPathComponent("raw/node-label.npz"), displayName: "\(tree.name)/raw/node-label.npz")
        let labels = try readLabels(NPZMembers(archive: labelArchive, layout: "OGB's raw/node-label.npz (node_label)"), nodeCount: nodeCount)
        return OGBGraphContents(nodeCount: nodeCount, graph: graph, edgeNote: edgeNote, features: features, labels: labels)
    }

    /// `num_nodes_list` or `num_edges_list`: one graph's count.
    private static func count(_ data: NPZMembers, _ member: String, what: String, limit: Int) throws -> Int {
        let array = try data.array(member)
        try require(array, integer: true, "an integer \(what)")
        guard array.shape == [1] else {
            throw ImportError(.shapeMismatch, file: array.displayName, field: "shape", found: array.shapeText,
                              expected: "(1,): the \(what) of one graph (a node-property dataset is one graph)")
        }
        return try array.integers(Int.self, in: 1...Int64(limit), meaning: what)[0]
    }

    /// Decoded a buffer at a time: only the sources are kept (4 bytes an edge) until their destinations arrive, which
    /// in C order is after every source, in Fortran order right after each one.
    private static func readEdges(_ data: NPZMembers, nodeCount: Int, declaredEdges: Int?, direction: EdgeDirection) throws -> (Graph, note: String) {
        let edgeIndex = try data.streamReader("edge_index")
        try require(edgeIndex.header.type, of: edgeIndex.displayName, integer: true, "integer node ids (int64, as OGB writes them)")
        guard edgeIndex.header.shape.count == 2, edgeIndex.header.shape[0] == 2 else {
            throw ImportError(.shapeMismatch, file: edgeIndex.displayName, field: "shape", found: edgeIndex.header.shapeText,
                              expected: "(2, edges): the sources, then the destinations")
        }
        let edges = edgeIndex.header.shape[1]
        var builder = EdgeListBuilder(nodeCount: nodeCount, direction: direction, expectedEdges: edges)
        var sources = [Int32](repeating: -1, count: edges)
        // A source out of range is kept here (its slot holds -1), so that the error names the edge and both ids as
        // the CSV layout's does, once the edge is complete: the first such edge is the first to fail, or an earlier
        // edge's destination fails first.
        var firstBadSource: Int64?
        try edgeIndex.forEachElement { index, element in
            // An unsigned id beyond Int64 has no Int64 value; any out-of-range stand-in is refused the same way.
            let id = element.integer ?? -1
            if index < edges {
                if (0..<Int64(nodeCount)).contains(id) { sources[index] = Int32(id) } else if firstBadSource == nil { firstBadSource = id }
                return
            }
            let edge = index - edges
            let source = sources[edge] == -1 ? firstBadSource! : Int64(sources[edge])
            try OGBImporter.addEdge(source, id, to: &builder, file: edgeIndex.displayName, field: "edge \(edge)", nodeCountSource: "num_nodes_list")
        }
        sources = []
        return try OGBImporter.buildGraph(&builder, declaredEdges: declaredEdges, file: edgeIndex.displayName, declaredBy: "num_edges_list")
    }

    /// Decoded a buffer at a time straight into the matrix: the largest member is never held inflated.
    private static func readFeatures(_ data: NPZMembers, nodeCount: Int) throws -> Matrix {
        let matrix = try data.streamReader("node_feat")
        try require(matrix.header.type, of: matrix.displayName, integer: false, "floats (float16, float32 or float64)")
        guard matrix.header.shape.count == 2, matrix.header.shape[0] == nodeCount else {
            throw ImportError(.shapeMismatch, file: matrix.displayName, field: "shape", found: matrix.header.shapeText,
                              expected: "(\(nodeCount), features): one row per node, as num_nodes_list says")
        }
        return Matrix(rows: nodeCount, cols: matrix.header.shape[1], storage: try matrix.finiteFloats(meaning: "feature"))
    }

    private static func readLabels(_ npz: NPZMembers, nodeCount: Int) throws -> NodeLabels {
        let array = try npz.array("node_label")
        guard array.type != .bool else {
            throw ImportError(.unsupportedType, file: array.displayName, field: "dtype", found: array.type.rawValue,
                              expected: "numbers: class ids (float, NaN unlabelled, as OGB writes them) or 0/1 targets")
        }
        guard array.shape.first == nodeCount, array.shape.count <= 2, array.count > 0 else {
            throw ImportError(.shapeMismatch, file: array.displayName, field: "shape", found: array.shapeText,
                              expected: "(\(nodeCount), 1) class ids or (\(nodeCount), tasks) 0/1 targets: one row per node, as num_nodes_list says")
        }
        let columns = array.shape.count == 2 ? array.shape[1] : 1
        var collector = OGBLabelCollector(columns: columns, nodeCount: nodeCount)
        try array.forEachElement { index, element in
            try collector.append(element.real, file: array.displayName,
                                 field: columns == 1 ? "node \(index)" : "node \(index / columns), task \(index % columns)")
        }
        return try collector.labels(file: array.displayName)
    }

    /// Refuses an array whose element type is not what the member holds in OGB's files: integers (booleans excluded)
    /// or floats.
    private static func require(_ array: NPYArray, integer: Bool, _ expected: String) throws {
        try require(array.type, of: array.displayName, integer: integer, expected)
    }

    private static func require(_ type: NPYArray.ElementType, of member: String, integer: Bool, _ expected: String) throws {
        if type != .bool && type.isFloat != integer { return }
        throw ImportError(.unsupportedType, file: member, field: "dtype", found: type.rawValue, expected: expected)
    }
}
