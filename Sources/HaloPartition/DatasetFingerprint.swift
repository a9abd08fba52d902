import HaloGraph
import HaloTensor

/// A 64-bit fingerprint of a dataset's content: node count, edges, features, labels and split masks.
///
/// Stored in a partition manifest and in every part, so a rank never trains on parts cut from another dataset (or
/// from another version of the same one) than the one it was told to use. Each component is hashed with XXH64 on
/// its canonical in-memory form (the graph's deduplicated in-CSR, features in their dense or sparse layout) and the
/// component hashes are hashed again, in a fixed order, with the counts. The dataset's name is not part of it.
public struct DatasetFingerprint: HexIdentifier {
    public static let noun = "fingerprint"
    public let value: UInt64

    public init(value: UInt64) { self.value = value }

    public init(_ dataset: Dataset) {
        var words: [UInt64] = [
            0x68616C6F_2D667031,  // "halo-fp1": version of this definition
            UInt64(dataset.nodeCount), UInt64(dataset.graph.edgeCount),
            XXHash64.hash(dataset.graph.inPointers.map { Int64($0) }), XXHash64.hash(dataset.graph.inSources),
        ]
        switch dataset.features {
        case .dense(let m):
            words += [1, UInt64(m.cols), XXHash64.hash(m.storage)]
        case .sparse(let s):
            words += [2, UInt64(s.cols), XXHash64.hash(s.rowPointers.map { Int64($0) }),
                      XXHash64.hash(s.columnIndices), XXHash64.hash(s.values)]
        }
        switch dataset.labels {
        case .singleLabel(let classes, let count):
            words += [1, UInt64(count), XXHash64.hash(classes)]
        case .multiLabel(let targets, let count):
            words += [2, UInt64(count), XXHash64.hash(targets)]
        }
        for mask in [dataset.split.train, dataset.split.validation, dataset.split.test] {
            words.append(XXHash64.hash(mask.map { UInt8($0 ? 1 : 0) }))
        }
        value = XXHash64.hash(words.map { $0.littleEndian })
    }
}
