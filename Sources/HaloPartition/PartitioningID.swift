import HaloGraph

/// A 64-bit id of one partitioning of one dataset, written in the manifest and in every part's `meta.json`.
///
/// Two partitionings of the same dataset (another method, seed or part count) give parts with the same dataset
/// fingerprint, so the fingerprint alone cannot stop a directory that mixes their parts; without this id such a mix
/// was caught only at the first halo exchange, with a message about message sizes. The id is derived from the
/// content (the dataset fingerprint and every part's owned node ids, in rank order): writing the same parts again
/// gives the same id, and parts that would not fit together get different ones (up to a 2^-64 collision).
public struct PartitioningID: HexIdentifier {
    public static let noun = "partitioning id"
    public let value: UInt64

    public init(value: UInt64) { self.value = value }

    /// The id of `parts` (all of them, in rank order) cut from the dataset with `fingerprint`.
    public init(parts: [Part], fingerprint: DatasetFingerprint) {
        var hash = XXHash64.hash([0x68616C6F_2D706931, fingerprint.value, UInt64(parts.count)].map { $0.littleEndian })  // "halo-pi1"
        for part in parts {
            hash = XXHash64.hash(part.innerGlobalIDs.map { $0.littleEndian }, seed: hash)
        }
        value = hash
    }
}
