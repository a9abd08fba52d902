import Foundation
import HaloGraph
import HaloTensor

/// Converts an OGB node-property-prediction directory, as OGB's downloader unpacks it, to a `Dataset`. OGB uses two
/// layouts; the CSV one (ogbn-arxiv, ogbn-products, …):
///
///     <dir>/raw/num-node-list.csv[.gz]   one line: the node count
///     <dir>/raw/edge.csv[.gz]            one edge per line: `source,destination`
///     <dir>/raw/node-feat.csv[.gz]       one node per line: its features
///     <dir>/raw/node-label.csv[.gz]      one node per line: its class (NaN or -1: unlabelled), or 0/1 per task
///     <dir>/raw/num-edge-list.csv[.gz]   optional: the edge count (checked, and used to size the edge arrays)
///
/// and the binary one of its largest graphs (ogbn-papers100M), read when `raw/data.npz` exists and `raw/edge.csv`
/// does not (see `OGBBinaryLayout`):
///
///     <dir>/raw/data.npz                 edge_index (2, E), node_feat (N, F), num_nodes_list (1,) [, num_edges_list]
///     <dir>/raw/node-label.npz           node_label (N, 1) or (N,): classes, NaN unlabelled; or (N, tasks) 0/1
///
/// and in both
///
///     <dir>/split/<scheme>/{train,valid,test}.csv[.gz]   optional: node ids, one per line
///
/// Each CSV file is read once, front to back, through a fixed buffer (gzip decompressed as it is read); the edges
/// become the `Graph` before the features are read, so the peak is the dataset itself plus the edge lists.
public enum OGBImporter {
    public struct Options: Sendable {
        public var direction: EdgeDirection = .undirected
        /// The `split/` subdirectory to use; nil picks the only one.
        public var splitScheme: String?
        /// Used only when the directory has no `split/`.
        public var generatedSplit: SplitFractions = .standard
        public var seed: UInt64 = 0
        /// The dataset's name; nil takes the directory's.
        public var name: String?

        public init() {}
    }

    public static func importDataset(directory: URL, options: Options = Options()) throws -> ImportedDataset {
        let tree = OGBTree(root: directory)
        let contents: OGBGraphContents
        let layout: String
        if try tree.file("edge", optional: true) == nil, tree.exists("raw/data.npz") {
            contents = try OGBBinaryLayout.read(tree, direction: options.direction)
            layout = "OGB node property prediction, binary layout"
        } else {
            contents = try readCSVLayout(tree, direction: options.direction)
            layout = "OGB node property prediction"
        }
        var notes = [contents.edgeNote]

        let split: NodeSplit
        let splitDescription: String
        if let scheme = try tree.splitScheme(requested: options.splitScheme) {
            split = try readSplit(tree, scheme: scheme, labels: contents.labels, nodeCount: contents.nodeCount)
            splitDescription = "OGB split/\(scheme)"
        } else {
            let generated = SplitGenerator.generated(labels: contents.labels, fractions: options.generatedSplit,
                                                     seed: options.seed, missing: "no split/ directory")
            (split, splitDescription) = (generated.split, generated.description)
            notes.append(generated.note)
        }

        let dataset = Dataset(name: options.name ?? tree.name, graph: contents.graph, features: .dense(contents.features),
                              labels: contents.labels, split: split)
        return ImportedDataset(dataset: dataset, splitDescription: splitDescription,
                               source: "imported by halo import ogb from \(tree.name) (\(layout))", notes: notes)
    }

    /// Adds one stored edge, from either layout, after checking both ids against the node count (which
    /// `nodeCountSource` names in the error, as `field` names the edge).
    static func addEdge(_ source: Int64, _ destination: Int64, to builder: inout EdgeListBuilder, file: String,
                        field: @autoclosure () -> String, nodeCountSource: String) throws {
        let nodes = 0..<Int64(builder.nodeCount)
        guard nodes.contains(source), nodes.contains(destination) else {
            throw ImportError(.idOutOfRange, file: file, field: field(), found: "edge (\(source), \(destination))",
                              expected: "node ids in 0..<\(builder.nodeCount) (\(nodeCountSource))")
        }
        builder.add(Int32(source), Int32(destination))
    }

    /// The graph of the edges added, once their number is checked against the count the source declares, if any.
    static func buildGraph(_ builder: inout EdgeListBuilder, declaredEdges: Int?, file: String, declaredBy: String) throws -> (Graph, note: String) {
        if let declaredEdges, declaredEdges != builder.storedEdges {
            throw ImportError(.rowCount, file: file, field: "number of edges", found: "\(builder.storedEdges)",
                              expected: "\(declaredEdges), as \(declaredBy) says")
        }
        return builder.build()
    }

    private static func readCSVLayout(_ tree: OGBTree, direction: EdgeDirection) throws -> OGBGraphContents {
        let nodeCount = try tree.readCount(of: "num-node-list", what: "node count", limit: Int(Int32.max))
        let edgeCount = try tree.file("num-edge-list", optional: true) == nil
            ? nil : try tree.readCount(of: "num-edge-list", what: "edge count", limit: Int.max)

        var builder = EdgeListBuilder(nodeCount: nodeCount, direction: direction, expectedEdges: edgeCount)
        let edges = try tree.reader(for: "edge")
        try edges.forEachRow { row in
            let source = try row.nextInteger(), destination = try row.nextInteger()
            try row.finish(expected: "2 fields: source and destination node ids")
            try addEdge(source, destination, to: &builder, file: edges.displayName, field: "line \(row.lineNumber)", nodeCountSource: "num-node-list")
        }
        let (graph, edgeNote) = try buildGraph(&builder, declaredEdges: edgeCount, file: edges.displayName, declaredBy: "num-edge-list")

        let features = try readFeatures(tree, nodeCount: nodeCount)
        let labels = try readLabels(tree, nodeCount: nodeCount)
        return OGBGraphContents(nodeCount: nodeCount, graph: graph, edgeNote: edgeNote, features: features, labels: labels)
    }

    /// Dense features, one row per line; the first line fixes the width.
    private static func readFeatures(_ tree: OGBTree, nodeCount: Int) throws -> Matrix {
        let reader = try tree.reader(for: "node-feat")
        var storage: [Float] = []
        var width = 0
        try reader.forEachRow { row in
            if row.lineNumber == 1 {
                width = row.count
                storage.reserveCapacity(nodeCount * width)
            }
            guard row.lineNumber <= nodeCount else {
                throw ImportError(.rowCount, file: reader.displayName, field: "number of lines", found: "more than \(nodeCount)",
                                  expected: "\(nodeCount), one per node (num-node-list)")
            }
            for _ in 0..<width { storage.append(try row.nextFiniteFloat()) }
            try row.finish(expected: "\(width) fields, as many as line 1 has")
        }
        guard reader.lineNumber == nodeCount else {
            throw ImportError(.rowCount, file: reader.displayName, field: "number of lines", found: "\(reader.lineNumber)",
                              expected: "\(nodeCount), one per node (num-node-list)")
        }
        return Matrix(rows: nodeCount, cols: width, storage: storage)
    }

    /// One line per node, as many columns as the first line has (see `OGBLabelCollector`).
    private static func readLabels(_ tree: OGBTree, nodeCount: Int) throws -> NodeLabels {
        let reader = try tree.reader(for: "node-label")
        var collector: OGBLabelCollector?
        try reader.forEachRow { row in
            if row.lineNumber == 1 { collector = OGBLabelCollector(columns: row.count, nodeCount: nodeCount) }
            guard row.lineNumber <= nodeCount else {
                throw ImportError(.rowCount, file: reader.displayName, field: "number of lines", found: "more than \(nodeCount)",
                                  expected: "\(nodeCount), one per node (num-node-list)")
            }
            let columns = collector!.columns
            for task in 0..<columns {
                let value = try row.nextNumber(expected: columns == 1 ? "a class id, -1 or NaN" : "0 or 1")
                try collector!.append(value, file: reader.displayName,
                                      field: columns == 1 ? "line \(row.lineNumber)" : "line \(row.lineNumber), task \(task)")
            }
            try row.finish(expected: "\(columns) field\(columns == 1 ? "" : "s"), as line 1 has")
        }
        guard reader.lineNumber == nodeCount, let collector else {
            throw ImportError(.rowCount, file: reader.displayName, field: "number of lines", found: "\(reader.lineNumber)",
                              expected: "\(nodeCount), one per node (num-node-list)")
        }
        return try collector.labels(file: reader.displayName)
    }

    /// The three id lists of `split/<scheme>/`, as masks; every id in range, in one list only, and labelled.
    private static func readSplit(_ tree: OGBTree, scheme: String, labels: NodeLabels, nodeCount: Int) throws -> NodeSplit {
        var owner = [UInt8](repeating: 0, count: nodeCount)
        let parts = ["train", "valid", "test"]
        for (k, part) in parts.enumerated() {
            let reader = try tree.reader(for: part, in: "split/\(scheme)")
            try reader.forEachRow { row in
                let id = try row.nextInteger()
                try row.finish(expected: "1 field: a node id")
                guard (0..<Int64(nodeCount)).contains(id) else {
                    throw ImportError(.idOutOfRange, file: reader.displayName, field: "line \(row.lineNumber)", found: "node \(id)",
                                      expected: "a node id in 0..<\(nodeCount)")
                }
                let v = Int(id)
                if owner[v] != 0 {
                    throw ImportError(.badSplit, file: reader.displayName, field: "line \(row.lineNumber)",
                                      found: "node \(v), already listed in \(parts[Int(owner[v]) - 1])", expected: "each node in at most one of train, valid, test")
                }
                if case .singleLabel(let classes, _) = labels, classes[v] == -1 {
                    throw ImportError(.badSplit, file: reader.displayName, field: "line \(row.lineNumber)", found: "node \(v), which is unlabelled",
                                      expected: "labelled nodes only (node-label has NaN or -1 for it)")
                }
                owner[v] = UInt8(k + 1)
            }
        }
        return NodeSplit(train: owner.map { $0 == 1 }, validation: owner.map { $0 == 2 }, test: owner.map { $0 == 3 })
    }
}

/// What either OGB layout stores of a graph: everything but the split.
struct OGBGraphContents {
    let nodeCount: Int
    let graph: Graph
    /// How many edges were read and what became of them.
    let edgeNote: String
    let features: Matrix
    let labels: NodeLabels
}

/// The files of one OGB directory, found with or without `.gz`, and named in errors as `<dir>/raw/edge.csv.gz`.
struct OGBTree {
    let root: URL
    let name: String

    init(root: URL) {
        self.root = root
        name = root.standardizedFileURL.lastPathComponent
    }

    /// The relative path of `base` in `folder` (`raw/edge.csv.gz`, else `raw/edge.csv`); nil if neither exists and
    /// `optional`, else a missing-file error.
    func file(_ base: String, in folder: String = "raw", optional: Bool = false) throws -> String? {
        for candidate in ["\(folder)/\(base).csv.gz", "\(folder)/\(base).csv"]
        where FileManager.default.fileExists(atPath: root.appendingPathComponent(candidate).path) {
            return candidate
        }
        guard optional else {
            var isDirectory: ObjCBool = false
            let hasRoot = FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory) && isDirectory.boolValue
            throw ImportError(.missingFile, file: "\(name)/\(folder)/\(base).csv.gz", field: "file",
                              found: hasRoot ? "missing (and no \(base).csv either)" : "missing (\(root.path) is not a directory)",
                              expected: "present in an OGB node-property directory (as OGB unpacks it: raw/, split/)")
        }
        return nil
    }

    func exists(_ relative: String) -> Bool {
        FileManager.default.fileExists(atPath: root.appendingPathComponent(relative).path)
    }

    func reader(for base: String, in folder: String = "raw") throws -> CSVRowReader {
        let relative = try file(base, in: folder)!
        return CSVRowReader(try openPossiblyCompressed(path: root.appendingPathComponent(relative).path, displayName: "\(name)/\(relative)"))
    }

    /// A one-line file holding one count (num-node-list: one line per graph, and a node-property dataset is one graph).
    func readCount(of base: String, what: String, limit: Int) throws -> Int {
        let reader = try self.reader(for: base)
        var count: Int64?
        try reader.forEachRow { row in
            guard row.lineNumber == 1 else {
                throw ImportError(.rowCount, file: reader.displayName, field: "line \(row.lineNumber)", found: "a second line (\(row.quoted))",
                                  expected: "one line: a node-property dataset is one graph")
            }
            let value = try row.nextInteger()
            try row.finish(expected: "1 field: the \(what)")
            guard value >= 1, value <= Int64(limit) else {
                throw ImportError(.badNumber, file: reader.displayName, field: "line 1", found: "\(value)", expected: "a \(what) in 1...\(limit)")
            }
            count = value
        }
        guard let count else {
            throw ImportError(.rowCount, file: reader.displayName, field: "contents", found: "no line", expected: "one line: the \(what)")
        }
        return Int(count)
    }

    /// The split scheme to read: `requested` (which must exist), the only folder under `split/`, or nil without `split/`.
    func splitScheme(requested: String?) throws -> String? {
        let splitURL = root.appendingPathComponent("split")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: splitURL.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            if let requested {
                throw ImportError(.missingFile, file: "\(name)/split/\(requested)", field: "split scheme", found: "missing (no split/ folder)",
                                  expected: "a folder with train, valid and test id lists")
            }
            return nil
        }
        let schemes = ((try? FileManager.default.contentsOfDirectory(atPath: splitURL.path)) ?? []).filter { entry in
            var isFolder: ObjCBool = false
            return !entry.hasPrefix(".") && FileManager.default.fileExists(atPath: splitURL.appendingPathComponent(entry).path, isDirectory: &isFolder)
                && isFolder.boolValue
        }.sorted()
        if let requested {
            guard schemes.contains(requested) else {
                throw ImportError(.missingFile, file: "\(name)/split/\(requested)", field: "split scheme", found: "missing",
                                  expected: "one of: \(schemes.isEmpty ? "(none)" : schemes.joined(separator: ", "))")
            }
            return requested
        }
        guard schemes.count == 1 else {
            throw ImportError(.missingFile, file: "\(name)/split", field: "split scheme",
                              found: schemes.isEmpty ? "no scheme folder" : "\(schemes.count) schemes (\(schemes.joined(separator: ", ")))",
                              expected: schemes.isEmpty ? "one folder such as split/time holding train, valid and test" : "--split-scheme naming one of them")
        }
        return schemes[0]
    }
}
