import Foundation
import HaloGraph
import HaloTensor

// The binaries are little-endian and copied byte for byte into typed arrays.
#if _endian(big)
#error("PartitionStore copies little-endian files verbatim; add byte swapping before using a big-endian host")
#endif

/// Reads and writes partition directories, format `halo-partitions` version 2 (version 1, without the
/// partitioning id, is still read):
///
///     manifest.json          format, dataset fingerprint, partitioning id, P, method, seed, edge cut, per-part
///                            counts and per-file byte sizes and XXH64 checksums
///     part-<r>/meta.json     the part's counts, feature layout, class count, global split sizes, partitioning id,
///                            file list
///     part-<r>/*.i32|i64|f32|u8   headerless little-endian arrays:
///       inner_ids.i32 [I]            global ids, central then marginal (any order within each; `Part.build`
///                                    writes the graph's reverse Cuthill–McKee order)
///       halo_ids.i32 [H]             global ids, grouped by owner ascending, ascending within an owner
///       halo_offsets.i64 [P+1]       owner p's block is halo_ids[offsets[p]..<offsets[p+1]]
///       in_indptr.i64 [I+1], in_indices.i32 [E]    local in-edge CSR (sources: inner 0..<I, halo I..<I+H)
///       in_degrees.i32 [I+H], out_degrees.i32 [I+H] global degrees with self loop
///       send_indptr.i64 [P+1], send_indices.i32 [S] local inner rows sent to each peer, in its halo-block order
///       features.f32 [I,F]  or  feat_indptr.i64 [I+1], feat_indices.i32 [nnz], feat_values.f32 [nnz]
///       labels.i32 [I]  or  labels.u8 [I,C]
///       train_mask.u8, val_mask.u8, test_mask.u8 [I]
///
/// A rank reads the manifest and its own part only. The reader trusts nothing: sizes against the metas, checksums
/// against the manifest, then ids, CSR structure, degrees, halo blocks and send lists, before building a `Part`.
/// What one part cannot show alone (nodes owned twice, split totals, halo degrees against their owners') is checked
/// across parts by `PartSetTally`.
public enum PartitionStore {
    public static let manifestFile = "manifest.json"

    /// The directory of part `rank` inside a partition directory.
    public static func partDirectoryName(_ rank: Int) -> String { "part-\(rank)" }

    // MARK: Writing

    /// Writes `parts` (all of them, in rank order) with the manifest into `directory`, replacing it in one step
    /// (see `PartitionOutput`: checked and locked first, written beside it, renamed into place).
    ///
    /// An existing partition directory is replaced; a half-written one only with `force`; anything else non-empty
    /// is refused.
    @discardableResult
    public static func write(
        parts: [Part], partitioning: GraphPartitioning, quality: PartitionQuality,
        fingerprint: DatasetFingerprint, to directory: URL, force: Bool = false
    ) throws -> PartitionManifest {
        let output = try PartitionOutput(directory, force: force)
        defer { output.release() }
        return try output.write(parts: parts, partitioning: partitioning, quality: quality, fingerprint: fingerprint)
    }

    /// Writes the parts' files and, last, the manifest into `root`, an existing empty directory. `afterPart` runs
    /// after each part (a test hook for failures midway).
    static func writeContents(
        parts: [Part], partitioning: GraphPartitioning, quality: PartitionQuality,
        fingerprint: DatasetFingerprint, into root: StoreDirectory, afterPart: (Int) throws -> Void
    ) throws -> PartitionManifest {
        precondition(!parts.isEmpty && parts.count == partitioning.partCount, "write needs all \(partitioning.partCount) parts")
        for (r, part) in parts.enumerated() {
            precondition(part.rank == r && part.partCount == parts.count, "parts must be given in rank order")
        }
        var entries: [PartitionManifest.PartEntry] = []
        let partitioningID = PartitioningID(parts: parts, fingerprint: fingerprint)
        for part in parts {
            let dirName = partDirectoryName(part.rank)
            let (meta, files) = PartCodec.encode(part, fingerprint: fingerprint, partitioningID: partitioningID)
            var json = try jsonEncoder.encode(meta)
            json.append(0x0A)
            let all = files + [(PartFile.meta, json)]
            try root.perform(on: dirName) {
                try FileManager.default.createDirectory(at: root.url(dirName), withIntermediateDirectories: true)
            }
            var fileEntries: [PartitionManifest.FileEntry] = []
            for (name, data) in all {
                let relative = dirName + "/" + name
                try root.perform(on: relative) { try data.write(to: root.url(relative), options: .atomic) }
                fileEntries.append(.init(name: name, bytes: data.count, xxh64: XXHash64.hex(checksum(data))))
            }
            entries.append(.init(
                rank: part.rank, directory: dirName, inner: part.innerCount, central: part.centralCount,
                marginal: part.marginalCount, halo: part.haloCount, edges: part.edgeCount, send: part.sendCount,
                files: fileEntries.sorted { $0.name < $1.name }))
            try afterPart(part.rank)
        }
        let first = parts[0]
        let manifest = PartitionManifest(
            dataset: .init(name: first.datasetName, fingerprint: fingerprint, nodes: first.totalNodeCount,
                           directedEdges: quality.directedEdgeCount, featureWidth: first.featureWidth,
                           classes: first.classCount, multilabel: first.labels.isMultiLabel),
            method: partitioning.method, seed: partitioning.seed, quality: quality, partitioningID: partitioningID,
            partList: entries)
        var json = try jsonEncoder.encode(manifest)
        json.append(0x0A)
        try root.perform(on: manifestFile) { try json.write(to: root.url(manifestFile), options: .atomic) }
        return manifest
    }

    /// Builds the parts of an existing `partitioning` of `dataset`, measures it and writes everything.
    @discardableResult
    public static func write(dataset: Dataset, partitioning: GraphPartitioning, to directory: URL, force: Bool = false) throws -> PartitionManifest {
        try write(parts: Part.build(dataset: dataset, partitioning: partitioning), partitioning: partitioning,
                  quality: partitioning.quality(of: dataset.graph), fingerprint: DatasetFingerprint(dataset), to: directory, force: force)
    }

    // MARK: Reading

    public static func readManifest(directory path: String) throws -> PartitionManifest {
        try readManifest(directory: URL(fileURLWithPath: path))
    }

    /// Reads and checks `manifest.json`: format and version, and a part list of `parts` entries numbered in order.
    public static func readManifest(directory: URL) throws -> PartitionManifest {
        let root = StoreDirectory(directory)
        let file = root.path(manifestFile)
        guard root.exists(manifestFile) else {
            throw PartitionError(.missingFile, file: file, field: "file", found: "missing", expected: "present in a \(PartitionManifest.formatName) directory")
        }
        let data = try root.perform(on: manifestFile) { try Data(contentsOf: root.url(manifestFile)) }
        let header = try root.decode(FormatHeader.self, from: data, file: manifestFile)
        guard header.format == PartitionManifest.formatName else {
            throw PartitionError(.wrongFormat, file: file, field: "`format`", found: "\"\(header.format)\"", expected: "\"\(PartitionManifest.formatName)\"")
        }
        guard PartitionManifest.readableVersions.contains(header.formatVersion) else {
            throw PartitionError(.unsupportedVersion, file: file, field: "`format_version`", found: "\(header.formatVersion)",
                                 expected: "one of \(PartitionManifest.readableVersions)")
        }
        let manifest = try root.decode(PartitionManifest.self, from: data, file: manifestFile)
        if manifest.formatVersion >= 2 && manifest.partitioningID == nil {
            throw PartitionError(.missingField, file: file, field: "`partitioning_id`", found: "missing",
                                 expected: "a 16-digit hex id (required from format version 2)")
        }
        guard manifest.checksum == PartitionManifest.checksumAlgorithm else {
            throw PartitionError(.badField, file: file, field: "`checksum`", found: "\"\(manifest.checksum)\"", expected: "\"\(PartitionManifest.checksumAlgorithm)\"")
        }
        guard manifest.parts >= 1 else {
            throw PartitionError(.badField, file: file, field: "`parts`", found: "\(manifest.parts)", expected: "at least 1")
        }
        guard manifest.dataset.nodes >= 0 && manifest.dataset.nodes <= Int(Int32.max) else {
            throw PartitionError(.badField, file: file, field: "`dataset.nodes`", found: "\(manifest.dataset.nodes)", expected: "a count in 0...\(Int32.max)")
        }
        guard manifest.parts <= max(manifest.dataset.nodes, 1) else {
            throw PartitionError(.badField, file: file, field: "`parts`", found: "\(manifest.parts)",
                                 expected: "at most \(max(manifest.dataset.nodes, 1)), the number of nodes")
        }
        guard manifest.partList.count == manifest.parts else {
            throw PartitionError(.manifestMismatch, file: file, field: "`part_list`", found: "\(manifest.partList.count) entries",
                                 expected: "\(manifest.parts), one per part (`parts`)")
        }
        for (r, entry) in manifest.partList.enumerated() {
            guard entry.rank == r, entry.directory == partDirectoryName(r) else {
                throw PartitionError(.manifestMismatch, file: file, field: "`part_list[\(r)]`",
                    found: "rank \(entry.rank) in \"\(entry.directory)\"", expected: "rank \(r) in \"\(partDirectoryName(r))\"")
            }
            // A rank uses these counts before it reads any part (memory estimate, summary), so they must be in the
            // ranges a part's meta.json allows, where sums over parts cannot overflow: a manifest claiming 2^63 − 1
            // inner nodes (every part's meta.json agreeing) trapped `halo train` in its memory estimate.
            let counts: [(String, Int, ClosedRange<Int>)] = [
                ("inner", entry.inner, 0...Int(Int32.max)), ("central", entry.central, 0...max(entry.inner, 0)),
                ("marginal", entry.marginal, 0...Int(Int32.max)), ("halo", entry.halo, 0...Int(Int32.max)),
                ("edges", entry.edges, 0...Int(Int32.max) * 64), ("send", entry.send, 0...Int(Int32.max) * 64),
            ] + entry.files.map { ("files.\($0.name).bytes", $0.bytes, 0...PartitionManifest.largestFileBytes) }
            for (key, value, range) in counts where !range.contains(value) {
                throw PartitionError(.badField, file: file, field: "`part_list[\(r)].\(key)`", found: "\(value)", expected: "a count in \(range)")
            }
        }
        let datasetCounts: [(String, Int, ClosedRange<Int>)] = [
            ("feature_width", manifest.dataset.featureWidth, 0...Int(Int32.max)), ("classes", manifest.dataset.classes, 1...Int(Int32.max)),
            ("directed_edges", manifest.dataset.directedEdges, 0...Int.max),
        ]
        for (key, value, range) in datasetCounts where !range.contains(value) {
            throw PartitionError(.badField, file: file, field: "`dataset.\(key)`", found: "\(value)", expected: "a count in \(range)")
        }
        return manifest
    }

    public static func read(directory path: String, rank: Int) throws -> Part {
        try read(directory: URL(fileURLWithPath: path), rank: rank)
    }

    /// Loads part `rank` alone, after checking it against the manifest; throws `PartitionError` naming the first
    /// problem found.
    public static func read(directory: URL, rank: Int) throws -> Part {
        let root = StoreDirectory(directory)
        let manifest = try readManifest(directory: directory)
        guard rank >= 0 && rank < manifest.parts else {
            throw PartitionError(.rankOutOfRange, file: root.path(manifestFile), field: "rank", found: "\(rank)",
                                 expected: "0..<\(manifest.parts) (the directory holds \(manifest.parts) parts)")
        }
        let entry = manifest.partList[rank]
        let part = PartReader(root: root, dirName: entry.directory, manifest: manifest, entry: entry)
        return try part.read()
    }

    /// Loads every part, each checked alone as `read(directory:rank:)` does, then checks them against each other:
    /// each node owned by exactly one part (naming the node and both parts when not), split totals and degrees
    /// (`PartSetTally`). A distributed run, where each rank holds one part, gathers the tallies instead.
    public static func readAll(directory: URL) throws -> [Part] {
        let manifest = try readManifest(directory: directory)
        let parts = try (0..<manifest.parts).map { try read(directory: directory, rank: $0) }
        let root = StoreDirectory(directory)
        let tallies = parts.map(PartSetTally.init)
        // The ownership map below has an entry per node of `dataset.nodes`, which each part confirmed only against the
        // manifest; unless the parts own that many nodes in all, `verify` refuses the count first (and a forged count
        // of 2^31−1 is never allocated).
        if parts.reduce(0, { $0 + $1.innerCount }) != manifest.dataset.nodes {
            try PartSetTally.verify(tallies, manifest: manifest, directory: root.name)
        }
        var owner = [Int32](repeating: -1, count: manifest.dataset.nodes)
        for part in parts {
            for (k, v) in part.innerGlobalIDs.enumerated() {
                let previous = owner[Int(v)]
                if previous >= 0 {
                    throw PartitionError(.inconsistentParts, file: root.path(partDirectoryName(part.rank) + "/" + PartFile.innerIDs),
                                         field: "entry \(k)", found: "node \(v), which \(partDirectoryName(Int(previous))) owns too",
                                         expected: "each node owned by exactly one part")
                }
                owner[Int(v)] = Int32(part.rank)
            }
        }
        try PartSetTally.verify(tallies, manifest: manifest, directory: root.name)
        return parts
    }

    static func checksum(_ data: Data) -> UInt64 {
        data.withUnsafeBytes { XXHash64.hash($0) }
    }

    static var jsonEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

// MARK: - File names and sizes

enum PartFile {
    static let meta = "meta.json"
    static let innerIDs = "inner_ids.i32"
    static let haloIDs = "halo_ids.i32"
    static let haloOffsets = "halo_offsets.i64"
    static let inIndptr = "in_indptr.i64"
    static let inIndices = "in_indices.i32"
    static let inDegrees = "in_degrees.i32"
    static let outDegrees = "out_degrees.i32"
    static let sendIndptr = "send_indptr.i64"
    static let sendIndices = "send_indices.i32"
    static let denseFeatures = "features.f32"
    static let featIndptr = "feat_indptr.i64"
    static let featIndices = "feat_indices.i32"
    static let featValues = "feat_values.f32"
    static let labels = "labels.i32"
    static let multiLabels = "labels.u8"
    /// Train, validation, test: the order of `NodeSplit`'s masks.
    static let masks = ["train_mask.u8", "val_mask.u8", "test_mask.u8"]
    static let splitNames = ["train", "val", "test"]

    /// Every data file `meta` implies, with its shape (element size follows from the extension).
    static func layout(_ meta: PartMeta) -> [(name: String, shape: [Int])] {
        let i = meta.inner, local = meta.inner + meta.halo, p = meta.partCount
        var files: [(String, [Int])] = [
            (innerIDs, [i]), (haloIDs, [meta.halo]), (haloOffsets, [p + 1]),
            (inIndptr, [i + 1]), (inIndices, [meta.edges]), (inDegrees, [local]), (outDegrees, [local]),
            (sendIndptr, [p + 1]), (sendIndices, [meta.send]),
        ]
        if meta.featureLayout == "dense" {
            files.append((denseFeatures, [i, meta.featureWidth]))
        } else {
            files += [(featIndptr, [i + 1]), (featIndices, [meta.featureNnz]), (featValues, [meta.featureNnz])]
        }
        files.append(meta.multilabel ? (multiLabels, [i, meta.classes]) : (labels, [i]))
        files += masks.map { ($0, [i]) }
        return files
    }

    static func elementSize(_ name: String) -> Int {
        if name.hasSuffix(".i64") { return 8 }
        if name.hasSuffix(".u8") { return 1 }
        return 4
    }
}

// MARK: - Encoding a part

enum PartCodec {
    static func encode(_ part: Part, fingerprint: DatasetFingerprint, partitioningID: PartitioningID) -> (PartMeta, [(String, Data)]) {
        var files: [(String, Data)] = [
            (PartFile.innerIDs, bytes(part.innerGlobalIDs)),
            (PartFile.haloIDs, bytes(part.haloGlobalIDs)),
            (PartFile.haloOffsets, bytes(part.haloRanges.map { Int64($0.lowerBound) } + [Int64(part.haloCount)])),
            (PartFile.inIndptr, bytes(part.inPointers.map { Int64($0) })),
            (PartFile.inIndices, bytes(part.inSources)),
            (PartFile.inDegrees, bytes(part.degrees.inDegrees)),
            (PartFile.outDegrees, bytes(part.degrees.outDegrees)),
        ]
        var sendPointers: [Int64] = [0]
        for list in part.sendLists { sendPointers.append(sendPointers.last! + Int64(list.count)) }
        files.append((PartFile.sendIndptr, bytes(sendPointers)))
        files.append((PartFile.sendIndices, bytes(part.sendLists.flatMap { $0 })))
        let layout: String, nnz: Int
        switch part.features {
        case .dense(let m):
            layout = "dense"
            nnz = m.count
            files.append((PartFile.denseFeatures, bytes(m.storage)))
        case .sparse(let s):
            layout = "sparse"
            nnz = s.nonZeroCount
            files.append((PartFile.featIndptr, bytes(s.rowPointers.map { Int64($0) })))
            files.append((PartFile.featIndices, bytes(s.columnIndices)))
            files.append((PartFile.featValues, bytes(s.values)))
        }
        switch part.labels {
        case .singleLabel(let classes, _): files.append((PartFile.labels, bytes(classes)))
        case .multiLabel(let targets, _): files.append((PartFile.multiLabels, bytes(targets)))
        }
        for (name, mask) in zip(PartFile.masks, [part.split.train, part.split.validation, part.split.test]) {
            files.append((name, bytes(mask.map { UInt8($0 ? 1 : 0) })))
        }
        // The halo-range offsets assume blocks in rank order with no gaps, which `Part.build` guarantees.
        let g = part.globalSplitCounts
        let meta = PartMeta(
            format: PartMeta.formatName, formatVersion: PartitionManifest.formatVersion,
            datasetName: part.datasetName, datasetFingerprint: fingerprint, rank: part.rank, partCount: part.partCount,
            totalNodes: part.totalNodeCount, inner: part.innerCount, central: part.centralCount, halo: part.haloCount,
            edges: part.edgeCount, send: part.sendCount, featureWidth: part.featureWidth, featureLayout: layout,
            featureNnz: nnz, classes: part.classCount, multilabel: part.labels.isMultiLabel,
            globalSplitSizes: .init(train: g.train, val: g.validation, test: g.test), partitioningID: partitioningID,
            files: files.map(\.0).sorted())
        return (meta, files)
    }

    static func bytes<T: BitwiseCopyable>(_ array: [T]) -> Data {
        array.withUnsafeBytes { Data($0) }
    }
}

// MARK: - Reading one part

/// Reads and validates one `part-<rank>/` against its manifest entry.
struct PartReader {
    let root: StoreDirectory
    let dirName: String
    let manifest: PartitionManifest
    let entry: PartitionManifest.PartEntry

    func path(_ name: String) -> String { root.path(dirName + "/" + name) }
    var manifestPath: String { root.path(PartitionStore.manifestFile) }

    func fail(_ kind: PartitionError.Kind, _ name: String, _ field: String, found: String, expected: String) -> PartitionError {
        PartitionError(kind, file: path(name), field: field, found: found, expected: expected)
    }

    /// Checks an indptr-style array whole before any entry is used as an index: it starts at 0, never decreases and
    /// ends at `total`, so every entry lies in 0...total. Checking only the ends, or each pair while iterating,
    /// lets a middle entry past the end index out of range first.
    func checkOffsets(
        _ offsets: [Int64], _ name: String, _ kind: PartitionError.Kind, total: Int, totalMeaning: String,
        block: (Int) -> String
    ) throws {
        let last = offsets.count - 1
        guard offsets[0] == 0 else {
            throw fail(kind, name, "entry 0 (the first)", found: "\(offsets[0])", expected: "0")
        }
        for k in 0..<last where offsets[k + 1] < offsets[k] || offsets[k + 1] > Int64(total) {
            let found = offsets[k + 1] < offsets[k] ? "\(offsets[k + 1]) after \(offsets[k])" : "\(offsets[k + 1])"
            throw fail(kind, name, "entry \(k + 1) (end of \(block(k)))", found: found,
                       expected: "non-decreasing offsets in 0...\(total) (\(totalMeaning))")
        }
        guard offsets[last] == Int64(total) else {
            throw fail(kind, name, "entry \(last) (the last)", found: "\(offsets[last])", expected: "\(total) (\(totalMeaning))")
        }
    }

    /// Reads `name`, checking presence, byte size and the manifest's size and checksum.
    func load(_ name: String, expectedBytes: Int, shape: String) throws -> Data {
        let relative = dirName + "/" + name
        guard root.exists(relative) else {
            throw fail(.missingFile, name, "file", found: "missing", expected: "present (listed in the manifest)")
        }
        let data = try root.perform(on: relative) { try Data(contentsOf: root.url(relative), options: .mappedIfSafe) }
        guard data.count == expectedBytes else {
            throw fail(.sizeMismatch, name, "byte size", found: "\(data.count)", expected: "\(expectedBytes) bytes (\(shape))")
        }
        guard let recorded = entry.files.first(where: { $0.name == name }) else {
            throw PartitionError(.fileListMismatch, file: manifestPath, field: "`part_list[\(entry.rank)].files`",
                                 found: "no entry for \(name)", expected: "an entry for every file of the part")
        }
        guard recorded.bytes == data.count else {
            throw PartitionError(.manifestMismatch, file: manifestPath, field: "`part_list[\(entry.rank)].files` size of \(name)",
                                 found: "\(recorded.bytes)", expected: "\(data.count), the size of \(path(name))")
        }
        let sum = XXHash64.hex(PartitionStore.checksum(data))
        guard sum == recorded.xxh64.lowercased() else {
            throw fail(.checksumMismatch, name, "checksum (xxh64)", found: sum, expected: "\(recorded.xxh64) as manifest.json records")
        }
        return data
    }

    func readMeta() throws -> PartMeta {
        let name = PartFile.meta
        guard let recorded = entry.files.first(where: { $0.name == name }) else {
            throw PartitionError(.fileListMismatch, file: manifestPath, field: "`part_list[\(entry.rank)].files`",
                                 found: "no entry for \(name)", expected: "an entry for every file of the part")
        }
        let data = try load(name, expectedBytes: recorded.bytes, shape: "as manifest.json records")
        let header = try root.decode(FormatHeader.self, from: data, file: dirName + "/" + name)
        guard header.format == PartMeta.formatName else {
            throw fail(.wrongFormat, name, "`format`", found: "\"\(header.format)\"", expected: "\"\(PartMeta.formatName)\"")
        }
        guard header.formatVersion == manifest.formatVersion else {
            throw fail(.unsupportedVersion, name, "`format_version`", found: "\(header.formatVersion)",
                       expected: "\(manifest.formatVersion), the manifest's")
        }
        return try root.decode(PartMeta.self, from: data, file: dirName + "/" + name)
    }

    /// The part's meta.json must describe the part the manifest lists.
    func checkAgainstManifest(_ meta: PartMeta) throws {
        // First: a part of another partitioning disagrees on many counts, and this names the real cause.
        if meta.partitioningID != manifest.partitioningID {
            throw fail(.partitioningMismatch, PartFile.meta, "`partitioning_id`", found: meta.partitioningID?.hex ?? "none",
                       expected: "\(manifest.partitioningID?.hex ?? "none"), the manifest's: this part was cut by another partitioning " +
                                 "(another method, seed or part count) than the rest of the directory; rewrite it with `halo partition`")
        }
        let declared = "as manifest.json `part_list[\(entry.rank)]` declares"
        // The counts' ranges are checked below; until then any Int can be here, and `inner − central` can overflow.
        let (marginal, marginalOverflows) = meta.inner.subtractingReportingOverflow(meta.central)
        let checks: [(field: String, found: String, wanted: String, why: String)] = [
            ("rank", "\(meta.rank)", "\(entry.rank)", "the rank of this part directory"),
            ("part_count", "\(meta.partCount)", "\(manifest.parts)", "the manifest's `parts`"),
            ("dataset_fingerprint", meta.datasetFingerprint.hex, manifest.dataset.fingerprint.hex, "the manifest's dataset fingerprint"),
            ("total_nodes", "\(meta.totalNodes)", "\(manifest.dataset.nodes)", "the manifest's `dataset.nodes`"),
            ("feature_width", "\(meta.featureWidth)", "\(manifest.dataset.featureWidth)", "the manifest's `dataset.feature_width`"),
            ("classes", "\(meta.classes)", "\(manifest.dataset.classes)", "the manifest's `dataset.classes`"),
            ("multilabel", "\(meta.multilabel)", "\(manifest.dataset.multilabel)", "the manifest's `dataset.multilabel`"),
            ("inner", "\(meta.inner)", "\(entry.inner)", declared),
            ("central", "\(meta.central)", "\(entry.central)", declared),
            ("inner − central (marginal)", marginalOverflows ? "\(meta.inner) − (\(meta.central)), beyond 64 bits" : "\(marginal)",
             "\(entry.marginal)", declared),
            ("halo", "\(meta.halo)", "\(entry.halo)", declared),
            ("edges", "\(meta.edges)", "\(entry.edges)", declared),
            ("send", "\(meta.send)", "\(entry.send)", declared),
        ]
        for c in checks where c.found != c.wanted {
            throw fail(.manifestMismatch, PartFile.meta, "`\(c.field)`", found: c.found, expected: "\(c.wanted), \(c.why)")
        }
        let counts: [(String, Int, ClosedRange<Int>)] = [
            ("inner", meta.inner, 0...Int(Int32.max)), ("halo", meta.halo, 0...Int(Int32.max)),
            ("central", meta.central, 0...max(meta.inner, 0)), ("edges", meta.edges, 0...Int(Int32.max) * 64),
            ("send", meta.send, 0...Int(Int32.max) * 64), ("feature_width", meta.featureWidth, 0...Int(Int32.max)),
            ("feature_nnz", meta.featureNnz, 0...Int(Int32.max) * 4096), ("classes", meta.classes, 1...Int(Int32.max)),
            // Split totals are compared across ranks as unsigned words (`PartSetTally.bytes`), so a negative one
            // trapped the encoding before the comparison could refuse it.
            ("global_split_sizes.train", meta.globalSplitSizes.train, 0...meta.totalNodes),
            ("global_split_sizes.val", meta.globalSplitSizes.val, 0...meta.totalNodes),
            ("global_split_sizes.test", meta.globalSplitSizes.test, 0...meta.totalNodes),
        ]
        for (key, value, range) in counts where !range.contains(value) {
            throw fail(.badField, PartFile.meta, "`\(key)`", found: "\(value)", expected: "a count in \(range)")
        }
        guard meta.featureLayout == "dense" || meta.featureLayout == "sparse" else {
            throw fail(.badField, PartFile.meta, "`feature_layout`", found: "\"\(meta.featureLayout)\"", expected: "\"dense\" or \"sparse\"")
        }
        if meta.featureLayout == "dense" && meta.featureNnz != meta.inner * meta.featureWidth {
            throw fail(.badField, PartFile.meta, "`feature_nnz`", found: "\(meta.featureNnz)",
                       expected: "\(meta.inner * meta.featureWidth) (inner × feature_width) for dense features")
        }
        let expectedFiles = Set(PartFile.layout(meta).map(\.name))
        if Set(meta.files) != expectedFiles || meta.files.count != expectedFiles.count {
            throw fail(.fileListMismatch, PartFile.meta, "`files`", found: meta.files.isEmpty ? "empty" : meta.files.sorted().joined(separator: ", "),
                       expected: expectedFiles.sorted().joined(separator: ", "))
        }
        let listed = entry.files.map(\.name)
        if Set(listed) != expectedFiles.union([PartFile.meta]) || listed.count != expectedFiles.count + 1 {
            throw PartitionError(.fileListMismatch, file: manifestPath, field: "`part_list[\(entry.rank)].files`",
                                 found: listed.isEmpty ? "empty" : listed.joined(separator: ", "),
                                 expected: expectedFiles.union([PartFile.meta]).sorted().joined(separator: ", "))
        }
    }

    func read() throws -> Part {
        let meta = try readMeta()
        try checkAgainstManifest(meta)
        // Presence, size and checksum of every file before any content is interpreted.
        var raw: [String: Data] = [:]
        for (name, shape) in PartFile.layout(meta) {
            let type = name.split(separator: ".").last.map(String.init) ?? "?"
            let shapeText = shape.map(String.init).joined(separator: " × ") + " × " + type
            let (bytes, overflow) = (shape + [PartFile.elementSize(name)]).reduce((1, false)) { acc, d in
                let (product, o) = acc.0.multipliedReportingOverflow(by: d)
                return (product, acc.1 || o)
            }
            guard !overflow else {
                throw fail(.badField, PartFile.meta, "counts", found: "a size of \(shapeText) for \(name)", expected: "an addressable size")
            }
            raw[name] = try load(name, expectedBytes: bytes, shape: shapeText)
        }
        func array<T: BitwiseCopyable>(_ name: String, _: T.Type) -> [T] {
            let data = raw[name]!
            let count = data.count / MemoryLayout<T>.stride
            return data.withUnsafeBytes { bytes in
                [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes)
                    initialized = count
                }
            }
        }

        let n = meta.totalNodes, p = meta.partCount, inner = meta.inner, halo = meta.halo, local = inner + halo
        let innerIDs = array(PartFile.innerIDs, Int32.self)
        let haloIDs = array(PartFile.haloIDs, Int32.self)
        // Marks the local nodes by global id: 1 inner, 2 halo. Keyed by id rather than an array of `total_nodes`, which
        // one part cannot confirm: a forged count of 2^31−1 would cost 2 GB before any other check could object.
        var seen: [Int32: UInt8] = [:]
        seen.reserveCapacity(local)

        // Inner ids: in range and distinct. Their order within the central and the marginal group is a layout
        // choice of the writer (`Part.build` uses locality order); that central nodes come first is checked with the
        // CSR below.
        for (k, v) in innerIDs.enumerated() {
            guard v >= 0 && Int(v) < n else {
                throw fail(.idOutOfRange, PartFile.innerIDs, "entry \(k)", found: "\(v)", expected: "a node id in 0..<\(n)")
            }
            if seen[v] != nil {
                throw fail(.duplicateID, PartFile.innerIDs, "entry \(k)", found: "node \(v) again", expected: "each node once")
            }
            seen[v] = 1
        }

        // Halo blocks: offsets from 0 to H, non-decreasing, own block empty; ids ascending within a block, not inner.
        let offsets = array(PartFile.haloOffsets, Int64.self)
        try checkOffsets(offsets, PartFile.haloOffsets, .inconsistentHalo, total: halo, totalMeaning: "the halo count") { "rank \($0)'s block" }
        if offsets[meta.rank + 1] != offsets[meta.rank] {
            throw fail(.inconsistentHalo, PartFile.haloOffsets, "block of rank \(meta.rank) (this part)",
                       found: "\(offsets[meta.rank + 1] - offsets[meta.rank]) nodes", expected: "empty: a part's own nodes are inner, not halo")
        }
        let ranges = (0..<p).map { Int(offsets[$0])..<Int(offsets[$0 + 1]) }
        for (q, range) in ranges.enumerated() {
            for h in range {
                let u = haloIDs[h]
                guard u >= 0 && Int(u) < n else {
                    throw fail(.idOutOfRange, PartFile.haloIDs, "entry \(h)", found: "\(u)", expected: "a node id in 0..<\(n)")
                }
                if h > range.lowerBound && haloIDs[h - 1] >= u {
                    throw fail(.unsortedIDs, PartFile.haloIDs, "entry \(h) (rank \(q)'s block)", found: "\(u) after \(haloIDs[h - 1])",
                               expected: "ascending ids within an owner's block")
                }
                if let previous = seen[u] {
                    throw fail(.duplicateID, PartFile.haloIDs, "entry \(h)", found: "node \(u), already \(previous == 1 ? "inner" : "halo")",
                               expected: "halo nodes distinct and not inner")
                }
                seen[u] = 2
            }
        }

        // In-edge CSR: pointers from 0 to E, sources local, loop-free, ascending; central rows read inner nodes
        // only, marginal rows at least one halo node, and every halo node feeds some row.
        let pointers = array(PartFile.inIndptr, Int64.self)
        let sources = array(PartFile.inIndices, Int32.self)
        try checkOffsets(pointers, PartFile.inIndptr, .badCSR, total: meta.edges, totalMeaning: "the edge count") { "row \($0)" }
        var haloUsed = [Bool](repeating: false, count: halo)
        for i in 0..<inner {
            var previous: Int32 = -1
            var readsHalo = false
            for e in Int(pointers[i])..<Int(pointers[i + 1]) {
                let s = sources[e]
                guard s >= 0 && Int(s) < local, Int(s) != i, s > previous else {
                    throw fail(.badCSR, PartFile.inIndices, "source of edge \(e) (row \(i))", found: "\(s)" + (s <= previous ? " after \(previous)" : ""),
                               expected: "a local node in 0..<\(local), not \(i) itself, strictly increasing within the row")
                }
                if Int(s) >= inner {
                    readsHalo = true
                    haloUsed[Int(s) - inner] = true
                }
                previous = s
            }
            if readsHalo != (i >= meta.central) {
                throw fail(.badCSR, PartFile.inIndices, "row \(i)", found: readsHalo ? "reading halo nodes" : "reading no halo node",
                           expected: i < meta.central ? "central rows (0..<\(meta.central)) to read inner nodes only"
                                                     : "marginal rows (\(meta.central)..<\(inner)) to read at least one halo node")
            }
        }
        if let h = haloUsed.firstIndex(of: false) {
            throw fail(.inconsistentHalo, PartFile.inIndices, "halo node \(inner + h) (global \(haloIDs[h]))",
                       found: "not a source of any edge", expected: "every halo node an in-neighbour of some inner node")
        }

        // Degrees: at least the self loop; an inner node's global in-degree is its stored in-edges plus the loop.
        let inDegrees = array(PartFile.inDegrees, Int32.self), outDegrees = array(PartFile.outDegrees, Int32.self)
        for (name, degrees) in [(PartFile.inDegrees, inDegrees), (PartFile.outDegrees, outDegrees)] {
            if let k = degrees.firstIndex(where: { $0 < 1 }) {
                throw fail(.badDegree, name, "degree of local node \(k)", found: "\(degrees[k])", expected: "at least 1 (the self loop)")
            }
        }
        // No node has more neighbours than the graph has nodes (its self loop included), and a node's out-degree
        // covers at least the edges this part stores from it, plus the loop.
        for (name, degrees) in [(PartFile.inDegrees, inDegrees), (PartFile.outDegrees, outDegrees)] {
            if let k = degrees.firstIndex(where: { Int($0) > n }) {
                throw fail(.badDegree, name, "degree of local node \(k)", found: "\(degrees[k])",
                           expected: "at most \(n), the number of nodes (self loop included)")
            }
        }
        var storedOut = [Int32](repeating: 1, count: local)
        for s in sources { storedOut[Int(s)] += 1 }
        if let k = (0..<local).first(where: { outDegrees[$0] < storedOut[$0] }) {
            throw fail(.badDegree, PartFile.outDegrees, "degree of local node \(k)", found: "\(outDegrees[k])",
                       expected: "at least \(storedOut[k]), its out-edges stored in this part plus the self loop")
        }
        for i in 0..<inner where Int64(inDegrees[i]) != pointers[i + 1] - pointers[i] + 1 {
            throw fail(.badDegree, PartFile.inDegrees, "degree of inner node \(i)", found: "\(inDegrees[i])",
                       expected: "\(pointers[i + 1] - pointers[i] + 1), its stored in-edges plus the self loop")
        }

        // Send lists: one block per peer, none to itself, inner indices in ascending global-id order.
        let sendPointers = array(PartFile.sendIndptr, Int64.self)
        let sendIndices = array(PartFile.sendIndices, Int32.self)
        try checkOffsets(sendPointers, PartFile.sendIndptr, .badSendList, total: meta.send, totalMeaning: "the send count") { "the list for peer \($0)" }
        var sendLists: [[Int32]] = []
        for q in 0..<p {
            let list = Array(sendIndices[Int(sendPointers[q])..<Int(sendPointers[q + 1])])
            if q == meta.rank && !list.isEmpty {
                throw fail(.badSendList, PartFile.sendIndptr, "list for peer \(q) (this part)", found: "\(list.count) rows", expected: "empty")
            }
            for (k, idx) in list.enumerated() {
                guard idx >= 0 && Int(idx) < inner else {
                    throw fail(.badSendList, PartFile.sendIndices, "entry \(k) for peer \(q)", found: "\(idx)", expected: "an inner index in 0..<\(inner)")
                }
                if k > 0 && innerIDs[Int(list[k - 1])] >= innerIDs[Int(idx)] {
                    throw fail(.badSendList, PartFile.sendIndices, "entry \(k) for peer \(q)",
                               found: "global id \(innerIDs[Int(idx)]) after \(innerIDs[Int(list[k - 1])])",
                               expected: "ascending global ids (the order of the peer's halo block)")
                }
            }
            sendLists.append(list)
        }

        // Features.
        let width = meta.featureWidth
        let features: NodeFeatures
        if meta.featureLayout == "dense" {
            let values = array(PartFile.denseFeatures, Float.self)
            if let k = values.firstIndex(where: { !$0.isFinite }) {
                throw fail(.nonFinite, PartFile.denseFeatures, "feature \(k % max(width, 1)) of inner node \(k / max(width, 1))",
                           found: "\(values[k])", expected: "a finite number")
            }
            features = .dense(Matrix(rows: inner, cols: width, storage: values))
        } else {
            let fp = array(PartFile.featIndptr, Int64.self)
            let columns = array(PartFile.featIndices, Int32.self), values = array(PartFile.featValues, Float.self)
            try checkOffsets(fp, PartFile.featIndptr, .badCSR, total: meta.featureNnz, totalMeaning: "feature_nnz") { "row \($0)" }
            for r in 0..<inner {
                var previous: Int32 = -1
                for e in Int(fp[r])..<Int(fp[r + 1]) {
                    guard columns[e] >= 0 && Int(columns[e]) < width && columns[e] > previous else {
                        throw fail(.badCSR, PartFile.featIndices, "column of entry \(e) (row \(r))", found: "\(columns[e])",
                                   expected: "a column in 0..<\(width), strictly increasing within the row")
                    }
                    guard values[e].isFinite else {
                        throw fail(.nonFinite, PartFile.featValues, "entry \(e) (row \(r))", found: "\(values[e])", expected: "a finite number")
                    }
                    previous = columns[e]
                }
            }
            features = .sparse(SparseMatrix(rows: inner, cols: width, rowPointers: fp.map { Int($0) }, columnIndices: columns, values: values))
        }

        // Labels and masks.
        let labels: NodeLabels
        if meta.multilabel {
            let targets = array(PartFile.multiLabels, UInt8.self)
            if let k = targets.firstIndex(where: { $0 > 1 }) {
                throw fail(.labelOutOfRange, PartFile.multiLabels, "class \(k % max(meta.classes, 1)) of inner node \(k / max(meta.classes, 1))",
                           found: "\(targets[k])", expected: "0 or 1")
            }
            labels = .multiLabel(targets: targets, classCount: meta.classes)
        } else {
            let classes = array(PartFile.labels, Int32.self)
            if let k = classes.firstIndex(where: { $0 < -1 || Int($0) >= meta.classes }) {
                throw fail(.labelOutOfRange, PartFile.labels, "label of inner node \(k)", found: "\(classes[k])", expected: "-1 or 0..<\(meta.classes)")
            }
            labels = .singleLabel(classes: classes, classCount: meta.classes)
        }
        var masks: [[Bool]] = []
        for name in PartFile.masks {
            let bytes = array(name, UInt8.self)
            if let k = bytes.firstIndex(where: { $0 > 1 }) {
                throw fail(.maskValue, name, "entry of inner node \(k)", found: "\(bytes[k])", expected: "0 or 1")
            }
            masks.append(bytes.map { $0 == 1 })
        }
        // As a dataset's: the masks disjoint, and a masked node labelled, or training and scoring would use class −1
        // (the loss traps on it) or count a node twice. Split totals alone cannot see either: a swap keeps them.
        for i in 0..<inner {
            var owner: Int?
            for k in masks.indices where masks[k][i] {
                let node = "inner node \(i) (node \(innerIDs[i]))"
                if let first = owner {
                    throw fail(.masksOverlap, PartFile.masks[k], node, found: "in both the \(PartFile.splitNames[first]) and "
                               + "\(PartFile.splitNames[k]) masks", expected: "disjoint masks")
                }
                owner = k
                if case .singleLabel(let classes, _) = labels, classes[i] == -1 {
                    throw fail(.maskedUnlabelled, PartFile.masks[k], node, found: "masked but unlabelled (-1 in \(PartFile.labels))",
                               expected: "only labelled nodes in a mask")
                }
            }
        }

        let g = meta.globalSplitSizes
        return Part(
            datasetName: meta.datasetName, rank: meta.rank, partCount: p, totalNodeCount: n,
            innerGlobalIDs: innerIDs, centralCount: meta.central, haloGlobalIDs: haloIDs, haloRanges: ranges,
            inPointers: pointers.map { Int($0) }, inSources: sources,
            degrees: NodeDegrees(inDegrees: inDegrees, outDegrees: outDegrees), sendLists: sendLists,
            features: features, labels: labels,
            split: NodeSplit(train: masks[0], validation: masks[1], test: masks[2]),
            globalSplitCounts: GlobalSplitCounts(train: g.train, validation: g.val, test: g.test))
    }
}

// MARK: - The directory

/// A partition directory: file locations, JSON decoding and file-system errors named `directory/relative-path`.
typealias StoreDirectory = FormatDirectory<PartitionErrorKind>

extension FormatDirectory where Category == PartitionErrorKind {
    /// Decodes the JSON file `relative` (a manifest or a part's meta.json).
    func decode<T: Decodable>(_ type: T.Type, from data: Data, file relative: String) throws -> T {
        try decode(T.self, from: data, file: relative, document: "a \(T.self) JSON object")
    }
}
