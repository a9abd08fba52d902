import Foundation
import HaloGraph

/// Writes a dataset in OGB's binary layout (`raw/data.npz`, `raw/node-label.npz`, `split/<scheme>/*.csv`), member
/// by member as OGB's `DatasetSaver` does, so that an import can be compared with the CSV layout of the same data and
/// with the dataset it came from.
public enum OGBBinaryFixture {
    public enum FeatureType: Sendable {
        case float32
        /// Every feature must be exactly representable as a half-precision float.
        case float16
    }

    /// The members of `raw/data.npz` by name (without `.npy`): `edge_index` int64 (2, E) with the edges as
    /// `OGBFixture.storedEdges` gives them, `node_feat` (N, F), `num_nodes_list` and `num_edges_list` int64 (1,), and
    /// `edge_feat` as OGB saves a missing one: a pickled `None` (an object array no reader should parse).
    public static func dataMembers(of dataset: Dataset, features: FeatureType = .float32) -> [String: Data] {
        let (sources, destinations) = OGBFixture.storedEdges(of: dataset)
        let matrix = dataset.features.denseMatrix()
        var members: [String: Data] = [:]
        members["edge_index"] = NPYEncoder.int64((sources + destinations).map { Int64($0) }, shape: [2, sources.count])
        switch features {
        case .float32:
            members["node_feat"] = NPYEncoder.float32(matrix.storage, shape: [matrix.rows, matrix.cols])
        case .float16:
            members["node_feat"] = NPYEncoder.array(matrix.storage.map(halfBits), descr: "<f2", shape: [matrix.rows, matrix.cols])
        }
        members["num_nodes_list"] = NPYEncoder.int64([Int64(dataset.nodeCount)])
        members["num_edges_list"] = NPYEncoder.int64([Int64(sources.count)])
        // pickle protocol 2 of None: PROTO 2, NONE, STOP.
        members["edge_feat"] = NPYEncoder.array(descr: "|O", shape: [], body: Data([0x80, 0x02, 0x4E, 0x2E]))
        return members
    }

    /// The members of `raw/node-label.npz`: `node_label` as float32, (N, 1) classes with NaN for an unlabelled node
    /// (as ogbn-papers100M stores them), or (N, tasks) 0/1 targets.
    public static func labelMembers(of dataset: Dataset) -> [String: Data] {
        switch dataset.labels {
        case .singleLabel(let classes, _):
            return ["node_label": NPYEncoder.float32(classes.map { $0 == -1 ? .nan : Float($0) }, shape: [dataset.nodeCount, 1])]
        case .multiLabel(let targets, let count):
            return ["node_label": NPYEncoder.float32(targets.map { Float($0) }, shape: [dataset.nodeCount, count])]
        }
    }

    /// The files of the tree by relative path: the two archives (deflated, as `savez_compressed` writes them, unless
    /// `method` says otherwise) and, unless `splitScheme` is nil, the split as plain CSV.
    public static func files(data: [String: Data], labels: [String: Data], split: [String: String], method: ZipWriter.Method = .deflated)
        -> [String: Data]
    {
        var files = ["raw/data.npz": NPZFixture.archive(data, method: method), "raw/node-label.npz": NPZFixture.archive(labels, method: method)]
        for (path, text) in split { files[path] = Data(text.utf8) }
        return files
    }

    public static func write(_ files: [String: Data], to directory: URL) throws {
        for (relative, contents) in files {
            let url = directory.appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try contents.write(to: url)
        }
    }

    public static func write(_ dataset: Dataset, to directory: URL, features: FeatureType = .float32, method: ZipWriter.Method = .deflated,
                             splitScheme: String? = "time") throws {
        let split = splitScheme.map { OGBFixture.splitFiles(of: dataset, scheme: $0) } ?? [:]
        try write(files(data: dataMembers(of: dataset, features: features), labels: labelMembers(of: dataset), split: split, method: method),
                  to: directory)
    }

    /// The IEEE 754 half-precision bits of `value`, which must be zero or a normal half exactly (fixtures choose
    /// such values, so that a float16 import can be compared exactly).
    public static func halfBits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        guard value != 0 else { return sign }
        let exponent = Int((bits >> 23) & 0xFF) - 127 + 15
        let fraction = bits & 0x7F_FFFF
        precondition((1...30).contains(exponent) && fraction & 0x1FFF == 0, "\(value) is not exactly a normal half-precision float")
        return sign | UInt16(exponent) << 10 | UInt16(fraction >> 13)
    }
}
