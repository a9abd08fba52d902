import Foundation
import HaloGraph

/// Writes a dataset as a gnn-benchmark `.npz` (SciPy CSR adjacency and features, labels, optional masks), as the
/// recipe in docs/importing.md does from Python, so that an import can be compared with the dataset it came from.
public enum NPZFixture {
    /// The `.npy` members by name (without `.npy`). Dense features become `attr_matrix`, sparse ones `attr_*`;
    /// masks are included only if `masks`.
    public static func members(of dataset: Dataset, masks: Bool) -> [String: Data] {
        var members: [String: Data] = [:]
        let n = dataset.nodeCount
        let (sources, destinations) = dataset.graph.edgesSortedBySource()
        var pointers = [Int32](repeating: 0, count: n + 1)
        for s in sources { pointers[Int(s) + 1] += 1 }
        for v in 0..<n { pointers[v + 1] += pointers[v] }
        members["adj_indptr"] = NPYEncoder.int32(pointers)
        members["adj_indices"] = NPYEncoder.int32(destinations)
        members["adj_data"] = NPYEncoder.float32([Float](repeating: 1, count: destinations.count))
        members["adj_shape"] = NPYEncoder.int64([Int64(n), Int64(n)])

        switch dataset.features {
        case .dense(let m):
            members["attr_matrix"] = NPYEncoder.float32(m.storage, shape: [m.rows, m.cols])
        case .sparse(let s):
            members["attr_indptr"] = NPYEncoder.int64(s.rowPointers.map { Int64($0) })
            members["attr_indices"] = NPYEncoder.int32(s.columnIndices)
            members["attr_data"] = NPYEncoder.float32(s.values)
            members["attr_shape"] = NPYEncoder.int64([Int64(s.rows), Int64(s.cols)])
        }
        switch dataset.labels {
        case .singleLabel(let classes, _):
            members["labels"] = NPYEncoder.int64(classes.map { Int64($0) })
        case .multiLabel(let targets, let count):
            members["labels"] = NPYEncoder.array(targets, descr: "|u1", shape: [n, count])
        }
        if masks {
            members["train_mask"] = NPYEncoder.bool(dataset.split.train)
            members["val_mask"] = NPYEncoder.bool(dataset.split.validation)
            members["test_mask"] = NPYEncoder.bool(dataset.split.test)
        }
        return members
    }

    /// An `.npz` archive of `members` (sorted by name), stored or deflated.
    public static func archive(_ members: [String: Data], method: ZipWriter.Method) -> Data {
        ZipWriter.archive(members.sorted { $0.key < $1.key }.map { (name: "\($0.key).npy", contents: $0.value) }, method: method)
    }
}
