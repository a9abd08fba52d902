import HaloGraph

/// The `manifest.json` of a partition directory: what was partitioned, how, how well, and a size and checksum for
/// every file of every part. A rank reads it first, then only its own `part-<rank>/`.
public struct PartitionManifest: Sendable, Equatable, Codable {
    public static let formatName = "halo-partitions"
    /// Version 2 added `partitioning_id` (here and in every part's meta.json); version 1 directories still load,
    /// without that check.
    public static let formatVersion = 2
    public static let readableVersions = 1...2
    public static let checksumAlgorithm = "xxh64"
    /// The largest byte size a manifest may record for one file (1 PiB, far beyond any part), so that sums of a
    /// part's sizes, which a rank computes before reading the files (the memory estimate), cannot overflow.
    public static let largestFileBytes = 1 << 50

    /// The dataset the parts were cut from.
    public struct DatasetInfo: Sendable, Equatable, Codable {
        public var name: String
        public var fingerprint: DatasetFingerprint
        public var nodes: Int
        public var directedEdges: Int
        public var featureWidth: Int
        public var classes: Int
        public var multilabel: Bool

        public init(name: String, fingerprint: DatasetFingerprint, nodes: Int, directedEdges: Int,
                    featureWidth: Int, classes: Int, multilabel: Bool) {
            self.name = name
            self.fingerprint = fingerprint
            self.nodes = nodes
            self.directedEdges = directedEdges
            self.featureWidth = featureWidth
            self.classes = classes
            self.multilabel = multilabel
        }

        enum CodingKeys: String, CodingKey {
            case name, fingerprint, nodes, directedEdges = "directed_edges", featureWidth = "feature_width"
            case classes, multilabel
        }
    }

    /// One file of a part: its name inside `part-<rank>/`, byte size and XXH64 checksum (16 hex digits).
    public struct FileEntry: Sendable, Equatable, Codable {
        public var name: String
        public var bytes: Int
        public var xxh64: String

        public init(name: String, bytes: Int, xxh64: String) {
            self.name = name
            self.bytes = bytes
            self.xxh64 = xxh64
        }
    }

    /// One part: its counts (as `Part` reports them) and its files.
    public struct PartEntry: Sendable, Equatable, Codable {
        public var rank: Int
        /// `part-<rank>`, relative to the partition directory.
        public var directory: String
        public var inner: Int
        public var central: Int
        public var marginal: Int
        public var halo: Int
        /// Stored in-edges of the inner rows.
        public var edges: Int
        /// Rows sent per exchange, all peers together.
        public var send: Int
        public var files: [FileEntry]

        public init(rank: Int, directory: String, inner: Int, central: Int, marginal: Int, halo: Int, edges: Int,
                    send: Int, files: [FileEntry]) {
            self.rank = rank
            self.directory = directory
            self.inner = inner
            self.central = central
            self.marginal = marginal
            self.halo = halo
            self.edges = edges
            self.send = send
            self.files = files
        }
    }

    public var format: String
    public var formatVersion: Int
    public var dataset: DatasetInfo
    /// Number of parts (= ranks).
    public var parts: Int
    public var method: PartitionMethod
    public var seed: UInt64
    /// See `PartitionQuality`.
    public var edgeCut: Int
    public var cutDirectedEdges: Int
    public var cutFraction: Double
    public var balance: Double
    public var checksum: String
    /// Which partitioning the parts belong to (see `PartitioningID`); nil only in format version 1.
    public var partitioningID: PartitioningID?
    public var partList: [PartEntry]

    public init(dataset: DatasetInfo, method: PartitionMethod, seed: UInt64, quality: PartitionQuality,
                partitioningID: PartitioningID, partList: [PartEntry]) {
        format = Self.formatName
        formatVersion = Self.formatVersion
        self.partitioningID = partitioningID
        self.dataset = dataset
        parts = partList.count
        self.method = method
        self.seed = seed
        edgeCut = quality.cutEdges
        cutDirectedEdges = quality.cutDirectedEdges
        cutFraction = quality.cutFraction
        balance = quality.balance
        checksum = Self.checksumAlgorithm
        self.partList = partList
    }

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", dataset, parts, method, seed, edgeCut = "edge_cut"
        case cutDirectedEdges = "cut_directed_edges", cutFraction = "cut_fraction", balance, checksum
        case partitioningID = "partitioning_id", partList = "part_list"
    }
}

/// The `meta.json` inside `part-<rank>/`: the counts that fix every file's size, and the dataset facts a part
/// needs on its own.
struct PartMeta: Codable, Equatable {
    static let formatName = "halo-partition-part"

    var format: String
    var formatVersion: Int
    var datasetName: String
    var datasetFingerprint: DatasetFingerprint
    var rank: Int
    var partCount: Int
    var totalNodes: Int
    var inner: Int
    var central: Int
    var halo: Int
    var edges: Int
    var send: Int
    var featureWidth: Int
    /// "dense" (`features.f32`) or "sparse" (`feat_*`).
    var featureLayout: String
    /// Stored entries of sparse features; `inner × feature_width` for dense ones.
    var featureNnz: Int
    var classes: Int
    var multilabel: Bool
    var globalSplitSizes: SplitSizes
    /// The manifest's `partitioning_id`; nil only in format version 1.
    var partitioningID: PartitioningID?
    var files: [String]

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", datasetName = "dataset_name"
        case datasetFingerprint = "dataset_fingerprint", rank, partCount = "part_count", totalNodes = "total_nodes"
        case inner, central, halo, edges, send, featureWidth = "feature_width", featureLayout = "feature_layout"
        case featureNnz = "feature_nnz", classes, multilabel, globalSplitSizes = "global_split_sizes"
        case partitioningID = "partitioning_id", files
    }
}

/// `format` and `format_version` alone, decoded first so that a file of another format says so.
struct FormatHeader: Decodable {
    var format: String
    var formatVersion: Int

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version"
    }
}
