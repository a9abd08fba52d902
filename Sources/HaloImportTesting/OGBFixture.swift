import Foundation
import HaloGraph

/// Writes a dataset as an OGB node-property directory (`raw/*.csv[.gz]`, `split/<scheme>/*.csv[.gz]`), the way
/// OGB's files are laid out, so that an import can be compared with the dataset it came from.
public enum OGBFixture {
    /// The text of each file, by its path relative to the directory (without `.gz`).
    ///
    /// A symmetric graph is written one line per unordered pair (as ogbn-products is); features with Swift's
    /// shortest round-tripping float text; unlabelled nodes as `nan`; the split under `split/<scheme>` unless
    /// `splitScheme` is nil.
    public static func files(of dataset: Dataset, splitScheme: String? = "time") -> [String: String] {
        var files: [String: String] = [:]
        let (sources, destinations) = storedEdges(of: dataset)
        var edges = ""
        for (s, d) in zip(sources, destinations) { edges += "\(s),\(d)\n" }
        files["raw/edge.csv"] = edges
        files["raw/num-node-list.csv"] = "\(dataset.nodeCount)\n"
        files["raw/num-edge-list.csv"] = "\(sources.count)\n"

        let matrix = dataset.features.denseMatrix()
        var features = ""
        for r in 0..<matrix.rows {
            features += (0..<matrix.cols).map { "\(matrix.storage[r * matrix.cols + $0])" }.joined(separator: ",") + "\n"
        }
        files["raw/node-feat.csv"] = features

        var labels = ""
        switch dataset.labels {
        case .singleLabel(let classes, _):
            for c in classes { labels += c == -1 ? "nan\n" : "\(c)\n" }
        case .multiLabel(let targets, let count):
            for v in 0..<dataset.nodeCount {
                labels += targets[(v * count)..<((v + 1) * count)].map(String.init).joined(separator: ",") + "\n"
            }
        }
        files["raw/node-label.csv"] = labels

        if let splitScheme { files.merge(splitFiles(of: dataset, scheme: splitScheme)) { $1 } }
        return files
    }

    /// The edges as OGB stores them: a symmetric graph once per unordered pair (smaller id first), a directed one
    /// edge by edge; sorted by source.
    public static func storedEdges(of dataset: Dataset) -> (sources: [Int32], destinations: [Int32]) {
        let symmetric = dataset.graph.isSymmetric
        let (sources, destinations) = dataset.graph.edgesSortedBySource()
        guard symmetric else { return (sources, destinations) }
        let kept = sources.indices.filter { sources[$0] < destinations[$0] }
        return (kept.map { sources[$0] }, kept.map { destinations[$0] })
    }

    /// `split/<scheme>/{train,valid,test}.csv`: the node ids of each mask, one per line.
    public static func splitFiles(of dataset: Dataset, scheme: String) -> [String: String] {
        let masks = [("train", dataset.split.train), ("valid", dataset.split.validation), ("test", dataset.split.test)]
        var files: [String: String] = [:]
        for (name, mask) in masks {
            files["split/\(scheme)/\(name).csv"] = mask.indices.filter { mask[$0] }.map { "\($0)\n" }.joined()
        }
        return files
    }

    /// Writes `files` under `directory`, each gzip-compressed as `<name>.gz` when `gzip` is true.
    public static func write(_ files: [String: String], to directory: URL, gzip: Bool) throws {
        for (relative, text) in files {
            let url = directory.appendingPathComponent(relative + (gzip ? ".gz" : ""))
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let data = Data(text.utf8)
            try (gzip ? Compression.gzip(data) : data).write(to: url)
        }
    }

    public static func write(_ dataset: Dataset, to directory: URL, gzip: Bool, splitScheme: String? = "time") throws {
        try write(files(of: dataset, splitScheme: splitScheme), to: directory, gzip: gzip)
    }
}
