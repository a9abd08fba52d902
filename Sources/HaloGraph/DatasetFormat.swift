import Foundation
import HaloTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The binaries are little-endian and are copied byte for byte into typed arrays, which is only right on a
// little-endian host (every platform Swift supports today). Refuse to build rather than misread silently.
#if _endian(big)
#error("DatasetFormat copies little-endian files verbatim; add byte swapping before using a big-endian host")
#endif

/// Reads and writes the on-disk dataset format `halo-dataset` version 1: a `meta.json` plus headerless,
/// little-endian, row-major binaries (layout in `shared/datasets/README.md`).
///
/// The reader trusts nothing: every data file's XXH64 is checked against meta.json's `xxh64` (computed while the
/// bytes are copied in, so it costs no extra pass), sizes are checked against meta.json, and ids, labels, mask bits,
/// CSR pointers and floats are checked before a `Dataset` is built, because `Graph` would silently drop self loops
/// and duplicates and the kernels would read out of bounds on a bad index. Range checks alone cannot see a flipped
/// byte that stays in range (a feature column moved to another valid column); the checksums can. Directories
/// written before checksums existed carry none and still load, with a note, because nothing else about them
/// changed. The writer runs the same checks first, so it never produces a directory the reader rejects.
public enum DatasetFormat {
    public static let formatName = "halo-dataset"
    public static let formatVersion = 1

    public static func read(directory path: String, note: (String) -> Void = { _ in }) throws -> Dataset {
        try read(directory: URL(fileURLWithPath: path), note: note)
    }

    /// Reads and validates the dataset in `directory`; throws `DatasetError` naming the first problem found.
    /// `note` receives one line when the directory has no checksums (it loads, unverified); the caller decides where
    /// the line goes, so that many ranks reading one dataset can say it once.
    public static func read(directory: URL, note: (String) -> Void = { _ in }) throws -> Dataset {
        let dir = DatasetDirectory(directory)
        let meta = try dir.readMeta()
        let n = meta.numNodes, classes = meta.numClasses, width = meta.numFeatures
        let denseFeatures = try dir.checkFileList(meta)
        let checksums = try dir.checkedChecksums(meta)
        if checksums == nil {
            note("note: \(dir.path(FileName.meta)) records no `\(FileName.checksumKey)` checksums (written before they existed), so "
                 + "its files are not checked for corruption; `halo generate --dataset DIR --out NEW_DIR` writes a copy with them")
        }
        func readArray<T: BitwiseCopyable>(_ file: String, shape: [Int]) throws -> [T] {
            try dir.readArray(file, shape: shape, checksum: checksums?[file])
        }

        let pairs: [Int32] = try readArray(FileName.edges, shape: [meta.numEdgesDirected, 2])
        let (sources, destinations) = try validatedEdges(pairs, nodeCount: n, file: dir.path(FileName.edges))

        let labels: NodeLabels
        if meta.multilabel {
            let targets: [UInt8] = try readArray(FileName.multiLabels, shape: [n, classes])
            try checkMultiLabels(targets, classCount: classes, file: dir.path(FileName.multiLabels))
            labels = .multiLabel(targets: targets, classCount: classes)
        } else {
            let values: [Int32] = try readArray(FileName.labels, shape: [n])
            try checkLabels(values, classCount: classes, file: dir.path(FileName.labels))
            labels = .singleLabel(classes: values, classCount: classes)
        }

        var masks: [[Bool]] = []
        for file in FileName.masks {
            let bytes: [UInt8] = try readArray(file, shape: [n])
            if let v = bytes.firstIndex(where: { $0 > 1 }) {
                throw DatasetError(.maskValue, file: dir.path(file), field: "entry of node \(v)", found: "\(bytes[v])", expected: "0 or 1")
            }
            masks.append(bytes.map { $0 == 1 })
        }
        let split = NodeSplit(train: masks[0], validation: masks[1], test: masks[2])
        try checkSplit(split, labels: labels, directory: dir)
        // Built only now: the masks' sizes have confirmed `num_nodes`, and a graph allocates O(num_nodes) before
        // anything else checks it (a meta.json claiming 2^31−1 nodes beside small files would take 32 GB).
        let graph = Graph(nodeCount: n, sources: sources, destinations: destinations)

        let features: NodeFeatures
        if denseFeatures {
            let values: [Float] = try readArray(FileName.denseFeatures, shape: [n, width])
            try checkDenseFeatures(values, width: width, file: dir.path(FileName.denseFeatures))
            features = .dense(Matrix(rows: n, cols: width, storage: values))
        } else {
            let pointers: [Int64] = try readArray(FileName.indptr, shape: [n + 1])
            let columns: [Int32] = try readArray(FileName.indices, shape: [meta.featureNnz])
            let values: [Float] = try readArray(FileName.values, shape: [meta.featureNnz])
            try checkSparseFeatures(pointers: pointers, columns: columns, values: values, width: width, directory: dir)
            features = .sparse(SparseMatrix(
                rows: n, cols: width, rowPointers: pointers.map { Int($0) }, columnIndices: columns, values: values))
        }

        let dataset = Dataset(
            name: meta.name ?? dir.name, graph: graph, features: features, labels: labels, split: split)
        try dir.checkDeclaredCounts(meta, against: DerivedCounts(dataset))
        return dataset
    }

    /// Writes `dataset` into `directory` (created if needed): sparse features as `feat_*`, dense as `features.f32`,
    /// multi-label targets as `labels.u8`. Throws, writing nothing, if the reader would reject the result.
    ///
    /// Each file is written (atomically) and hashed straight from the array that holds it; the edges of a symmetric
    /// graph are written from its in-lists a chunk at a time, and only a directed graph's edge pairs are built as
    /// one array for writing. So writing a large dataset (ogbn-products-sized: 1 GB of features, 0.5 GB of in-edge
    /// lists) needs little beyond the dataset, not a serialized copy of every file.
    public static func write(
        _ dataset: Dataset, to directory: URL,
        source: String = "written by Halo", license: String = "unspecified",
        splitDescription: String = "unspecified"
    ) throws {
        let dir = DatasetDirectory(directory)

        // Every check before the first byte is written.
        switch dataset.labels {
        case .singleLabel(let classes, let count):
            try checkLabels(classes, classCount: count, file: dir.path(FileName.labels))
        case .multiLabel(let targets, let count):
            try checkMultiLabels(targets, classCount: count, file: dir.path(FileName.multiLabels))
        }
        try checkSplit(dataset.split, labels: dataset.labels, directory: dir)
        var sparsePointers: [Int64] = []
        switch dataset.features {
        case .dense(let m):
            try checkDenseFeatures(m.storage, width: m.cols, file: dir.path(FileName.denseFeatures))
        case .sparse(let s):
            sparsePointers = s.rowPointers.map { Int64($0) }
            try checkSparseFeatures(pointers: sparsePointers, columns: s.columnIndices, values: s.values, width: s.cols, directory: dir)
        }

        var names = [FileName.edges, dataset.labels.isMultiLabel ? FileName.multiLabels : FileName.labels] + FileName.masks
        if case .dense = dataset.features { names.append(FileName.denseFeatures) } else { names += FileName.sparseFeatures.sorted() }

        try dir.perform(on: "") {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        // Stale files of another layout (say `features.f32` left over beside new `feat_*` files) would make the
        // reader refuse the directory, so they go. meta.json goes first: an interrupted write then leaves no
        // meta.json, and the reader refuses the directory.
        for stale in FileName.known.subtracting(names).union([FileName.meta]) where dir.exists(stale) {
            try dir.perform(on: stale) { try FileManager.default.removeItem(at: dir.url(stale)) }
        }

        var checksums: [String: String] = [:]
        func write<T: BitwiseCopyable>(_ array: [T], to file: String) throws {
            try dir.perform(on: file) {
                try array.withUnsafeBytes { raw in
                    checksums[file] = XXHash64.hex(XXHash64.hash(raw))
                    let bytes = raw.baseAddress.map { Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: $0), count: raw.count, deallocator: .none) } ?? Data()
                    try bytes.write(to: dir.url(file), options: .atomic)
                }
            }
        }

        // `Graph` keeps its edges deduplicated and loop-free, so the edge file needs no check.
        let derived = DerivedCounts(dataset)
        let graph = dataset.graph
        if 2 * derived.undirectedEdges == graph.edgeCount {
            // Symmetric: a node's out-neighbours are its (sorted) in-neighbours, so the pairs sorted by source are
            // the in-lists in node order, written a chunk at a time instead of as one more edge-sized array.
            try dir.perform(on: FileName.edges) {
                checksums[FileName.edges] = try writeInChunks(to: dir.url(FileName.edges)) { emit in
                    var chunk = [Int32]()
                    chunk.reserveCapacity(1 << 20)
                    for s in 0..<graph.nodeCount {
                        for d in graph.inNeighbors(s) {
                            chunk.append(Int32(s))
                            chunk.append(d)
                        }
                        if chunk.count >= 1 << 20 {
                            try emit(chunk)
                            chunk.removeAll(keepingCapacity: true)
                        }
                    }
                    try emit(chunk)
                }
            }
        } else {
            try write(graph.edgePairsSortedBySource(), to: FileName.edges)
        }
        switch dataset.labels {
        case .singleLabel(let classes, _): try write(classes, to: FileName.labels)
        case .multiLabel(let targets, _): try write(targets, to: FileName.multiLabels)
        }
        for (file, mask) in zip(FileName.masks, [dataset.split.train, dataset.split.validation, dataset.split.test]) {
            try write(mask.map { UInt8($0 ? 1 : 0) }, to: file)
        }
        switch dataset.features {
        case .dense(let m):
            try write(m.storage, to: FileName.denseFeatures)
        case .sparse(let s):
            try write(sparsePointers, to: FileName.indptr)
            try write(s.columnIndices, to: FileName.indices)
            try write(s.values, to: FileName.values)
        }

        let meta = Meta(
            format: formatName, formatVersion: formatVersion, name: dataset.name,
            numNodes: dataset.nodeCount, numEdgesDirected: dataset.graph.edgeCount,
            numEdgesUndirected: derived.undirectedEdges, numFeatures: dataset.featureWidth,
            featureNnz: derived.featureNonZeros, featuresBinary: derived.binaryFeatures,
            numClasses: dataset.classCount, multilabel: dataset.labels.isMultiLabel,
            numUnlabeledNodes: derived.unlabelledNodes, isolatedNodes: derived.isolatedNodes,
            split: splitDescription, splitSizes: derived.splitSizes,
            files: names.sorted(), xxh64: checksums, source: source, license: license)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var json = try encoder.encode(meta)
        json.append(0x0A)
        // meta.json last, so only a complete directory has one.
        try dir.perform(on: FileName.meta) { try json.write(to: dir.url(FileName.meta), options: .atomic) }
    }

    /// Writes what `produce` emits to a temporary file beside `url` and renames it into place (atomic, as
    /// `Data.write(options: .atomic)`); returns the XXH64 of the bytes as meta.json records it.
    private static func writeInChunks(to url: URL, _ produce: (_ emit: ([Int32]) throws -> Void) throws -> Void) throws -> String {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            var hasher = XXHash64Stream()
            do {
                try produce { chunk in
                    try chunk.withUnsafeBytes { raw in
                        hasher.update(raw)
                        guard let base = raw.baseAddress else { return }
                        try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: raw.count, deallocator: .none))
                    }
                }
                // The other files go through `Data.write(options: .atomic)`, which syncs before its rename; so must this
                // one, or a crash after the rename could leave a file of the right name with unwritten blocks.
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            guard rename(temporary.path, url.path) == 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path,
                                                               NSUnderlyingErrorKey: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)])
            }
            return XXHash64.hex(hasher.value)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    public static func write(
        _ dataset: Dataset, to path: String,
        source: String = "written by Halo", license: String = "unspecified",
        splitDescription: String = "unspecified"
    ) throws {
        try write(dataset, to: URL(fileURLWithPath: path), source: source, license: license, splitDescription: splitDescription)
    }
}

/// What the summary line of a dataset reports (the CLI prints it).
public struct DatasetSummary: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var nodeCount: Int
    public var directedEdgeCount: Int
    public var featureWidth: Int
    /// Stored entries of sparse features; `nil` for dense features.
    public var featureNonZeroCount: Int?
    public var classCount: Int
    public var isMultiLabel: Bool
    public var trainCount: Int
    public var validationCount: Int
    public var testCount: Int

    public init(_ dataset: Dataset) {
        name = dataset.name
        nodeCount = dataset.nodeCount
        directedEdgeCount = dataset.graph.edgeCount
        featureWidth = dataset.featureWidth
        if case .sparse(let s) = dataset.features { featureNonZeroCount = s.nonZeroCount }
        classCount = dataset.classCount
        isMultiLabel = dataset.labels.isMultiLabel
        trainCount = dataset.split.trainCount
        validationCount = dataset.split.validationCount
        testCount = dataset.split.testCount
    }

    public var description: String {
        let features = featureNonZeroCount.map { "\(featureWidth) sparse features (\($0) non-zeros)" }
            ?? "\(featureWidth) dense features"
        return "\(name): \(nodeCount) nodes, \(directedEdgeCount) directed edges, \(features), "
            + "\(classCount) \(isMultiLabel ? "multi-label " : "")classes, "
            + "train/val/test \(trainCount)/\(validationCount)/\(testCount)"
    }
}

extension Dataset {
    public var summary: DatasetSummary { DatasetSummary(self) }
}

// MARK: - Content checks (shared by reader and writer)

extension DatasetFormat {
    /// Splits the (source, destination) pairs, checking that they are in range, loop-free and strictly increasing,
    /// which also rules out duplicates (they would be adjacent).
    fileprivate static func validatedEdges(_ pairs: [Int32], nodeCount: Int, file: String) throws -> (sources: [Int32], destinations: [Int32]) {
        let count = pairs.count / 2
        var sources = [Int32](repeating: 0, count: count), destinations = sources
        try pairs.withUnsafeBufferPointer { p in
            for e in 0..<count {
                let s = p[2 * e], d = p[2 * e + 1]
                sources[e] = s
                destinations[e] = d
                func fail(_ kind: DatasetError.Kind, found: String, expected: String) -> DatasetError {
                    DatasetError(kind, file: file, field: "edge \(e)", found: found, expected: expected)
                }
                if s < 0 || Int(s) >= nodeCount || d < 0 || Int(d) >= nodeCount {
                    throw fail(.idOutOfRange, found: "(\(s), \(d))", expected: "node ids in 0..<\(nodeCount)")
                }
                if s == d { throw fail(.selfLoop, found: "(\(s), \(d))", expected: "no self loops") }
                guard e > 0 else { continue }
                let ps = p[2 * e - 2], pd = p[2 * e - 1]
                if (s, d) == (ps, pd) {
                    throw fail(.duplicateEdge, found: "(\(s), \(d)) again", expected: "no duplicate edges")
                }
                if (s, d) < (ps, pd) {
                    throw fail(.unsortedEdges, found: "(\(s), \(d)) after (\(ps), \(pd))", expected: "edges sorted by (source, destination)")
                }
            }
        }
        return (sources, destinations)
    }

    fileprivate static func checkLabels(_ classes: [Int32], classCount: Int, file: String) throws {
        if let v = classes.firstIndex(where: { $0 < -1 || Int($0) >= classCount }) {
            throw DatasetError(.labelOutOfRange, file: file, field: "label of node \(v)", found: "\(classes[v])", expected: "-1 or 0..<\(classCount)")
        }
    }

    fileprivate static func checkMultiLabels(_ targets: [UInt8], classCount: Int, file: String) throws {
        if let i = targets.firstIndex(where: { $0 > 1 }) {
            throw DatasetError(.labelOutOfRange, file: file, field: "class \(i % classCount) of node \(i / classCount)", found: "\(targets[i])", expected: "0 or 1")
        }
    }

    /// Masks must be disjoint, and a masked node must have a label, or training and scoring would use class -1.
    fileprivate static func checkSplit(_ split: NodeSplit, labels: NodeLabels, directory dir: DatasetDirectory) throws {
        let masks = [split.train, split.validation, split.test]
        for v in split.train.indices {
            var owner: Int?
            for k in masks.indices where masks[k][v] {
                if let first = owner {
                    throw DatasetError(.masksOverlap, file: dir.path(FileName.masks[k]), field: "node \(v)",
                        found: "in both the \(FileName.splitNames[first]) and \(FileName.splitNames[k]) masks", expected: "disjoint masks")
                }
                owner = k
                if case .singleLabel(let classes, _) = labels, classes[v] == -1 {
                    throw DatasetError(.maskedUnlabelled, file: dir.path(FileName.masks[k]), field: "node \(v)",
                        found: "masked but unlabelled (-1)", expected: "only labelled nodes in a mask")
                }
            }
        }
    }

    fileprivate static func checkDenseFeatures(_ values: [Float], width: Int, file: String) throws {
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw DatasetError(.nonFinite, file: file, field: "feature \(i % width) of node \(i / width)", found: "\(values[i])", expected: "a finite number")
        }
    }

    /// CSR checks in dependency order: pointers first (they bound every row), then each row's columns and values.
    fileprivate static func checkSparseFeatures(
        pointers: [Int64], columns: [Int32], values: [Float], width: Int, directory dir: DatasetDirectory
    ) throws {
        let rows = pointers.count - 1
        let pointerFile = dir.path(FileName.indptr)
        if pointers[0] != 0 {
            throw DatasetError(.indptrStart, file: pointerFile, field: "indptr[0]", found: "\(pointers[0])", expected: "0")
        }
        for r in 0..<rows where pointers[r + 1] < pointers[r] {
            throw DatasetError(.indptrDecreasing, file: pointerFile, field: "indptr[\(r + 1)] (end of node \(r))",
                found: "\(pointers[r + 1]) after \(pointers[r])", expected: "non-decreasing row pointers")
        }
        if pointers[rows] != Int64(columns.count) {
            throw DatasetError(.indptrEnd, file: pointerFile, field: "indptr[\(rows)]", found: "\(pointers[rows])",
                expected: "\(columns.count), the number of stored features (feature_nnz)")
        }
        try columns.withUnsafeBufferPointer { c in
            try values.withUnsafeBufferPointer { x in
                for r in 0..<rows {
                    var previous: Int32 = -1
                    for e in Int(pointers[r])..<Int(pointers[r + 1]) {
                        if c[e] < 0 || Int(c[e]) >= width {
                            throw DatasetError(.columnOutOfRange, file: dir.path(FileName.indices), field: "column of entry \(e) (node \(r))",
                                found: "\(c[e])", expected: "0..<\(width)")
                        }
                        if c[e] <= previous {
                            throw DatasetError(.unsortedColumns, file: dir.path(FileName.indices), field: "column order of node \(r)",
                                found: "\(c[e]) after \(previous)", expected: "strictly increasing columns within a row")
                        }
                        if !x[e].isFinite {
                            throw DatasetError(.nonFinite, file: dir.path(FileName.values), field: "feature \(c[e]) of node \(r)",
                                found: "\(x[e])", expected: "a finite number")
                        }
                        previous = c[e]
                    }
                }
            }
        }
    }
}

// MARK: - Files and meta.json

/// File names of format version 1.
private enum FileName {
    static let meta = "meta.json"
    static let edges = "edges.i32"
    static let labels = "labels.i32"
    static let multiLabels = "labels.u8"
    /// Train, validation, test: the order of `NodeSplit`'s masks.
    static let masks = ["train_mask.u8", "val_mask.u8", "test_mask.u8"]
    static let splitNames = ["train", "val", "test"]
    static let indptr = "feat_indptr.i64"
    static let indices = "feat_indices.i32"
    static let values = "feat_values.f32"
    static let denseFeatures = "features.f32"
    static let sparseFeatures: Set = [indptr, indices, values]
    static let known: Set = sparseFeatures.union(masks).union([edges, labels, multiLabels, denseFeatures])
    /// The meta.json key mapping each data file to its XXH64 (meta.json itself holds them, so it has none).
    static let checksumKey = "xxh64"
}

/// The keys of meta.json. Optional keys are statistics a reader can recompute; when present they are checked.
private struct Meta: Codable {
    var format: String
    var formatVersion: Int
    var name: String?
    var numNodes: Int
    var numEdgesDirected: Int
    var numEdgesUndirected: Int?
    var numFeatures: Int
    /// Stored entries of sparse features; non-zero entries of dense ones.
    var featureNnz: Int
    var featuresBinary: Bool?
    var numClasses: Int
    var multilabel: Bool
    var numUnlabeledNodes: Int?
    var isolatedNodes: Int?
    var split: String?
    var splitSizes: SplitSizes?
    var files: [String]
    /// File name → XXH64 of its bytes as 16 lower-case hex digits; absent in directories written before checksums.
    var xxh64: [String: String]?
    var source: String?
    var license: String?

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", name, numNodes = "num_nodes"
        case numEdgesDirected = "num_edges_directed", numEdgesUndirected = "num_edges_undirected"
        case numFeatures = "num_features", featureNnz = "feature_nnz", featuresBinary = "features_binary"
        case numClasses = "num_classes", multilabel, numUnlabeledNodes = "num_unlabeled_nodes"
        case isolatedNodes = "isolated_nodes", split, splitSizes = "split_sizes", files, xxh64, source, license
    }
}

/// Decoded before the rest, so a file of another format or version says so instead of "missing num_nodes".
private struct MetaHeader: Decodable {
    var format: String
    var formatVersion: Int

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version"
    }
}

/// Statistics meta.json declares, recomputed from the data.
private struct DerivedCounts {
    var undirectedEdges = 0, isolatedNodes = 0, unlabelledNodes = 0, featureNonZeros = 0
    var binaryFeatures = true
    var splitSizes: SplitSizes

    init(_ dataset: Dataset) {
        let graph = dataset.graph
        // Each unordered pair once: from its smaller end, or from the larger end when the reverse is absent. The
        // reverse of u → v (u > v) is v in u's sorted in-list, and for a given u those questions come with v
        // increasing, so one cursor per node walks each in-list once: linear, where a binary search per edge took
        // a quarter of writing an ogbn-products-sized dataset.
        var cursor = Array(graph.inPointers.dropLast())
        var undirectedEdges = 0, isolatedNodes = 0
        graph.inSources.withUnsafeBufferPointer { sources in
            for v in 0..<graph.nodeCount {
                if graph.inDegree(v) == 0 && graph.outDegrees[v] == 0 { isolatedNodes += 1 }
                for e in graph.inPointers[v]..<graph.inPointers[v + 1] {
                    let u = Int(sources[e])
                    if u < v {
                        undirectedEdges += 1
                        continue
                    }
                    let end = graph.inPointers[u + 1]
                    var c = cursor[u]
                    while c < end && Int(sources[c]) < v { c += 1 }
                    cursor[u] = c
                    if c == end || Int(sources[c]) != v { undirectedEdges += 1 }
                }
            }
        }
        self.undirectedEdges = undirectedEdges
        self.isolatedNodes = isolatedNodes
        if case .singleLabel(let classes, _) = dataset.labels { unlabelledNodes = classes.lazy.filter { $0 == -1 }.count }
        let stored: [Float]
        switch dataset.features {
        case .dense(let m): stored = m.storage
        case .sparse(let s): stored = s.values
        }
        binaryFeatures = stored.allSatisfy { $0 == 0 || $0 == 1 }
        if case .sparse(let s) = dataset.features {
            featureNonZeros = s.nonZeroCount
        } else {
            featureNonZeros = stored.lazy.filter { $0 != 0 }.count
        }
        splitSizes = .init(train: dataset.split.trainCount, val: dataset.split.validationCount, test: dataset.split.testCount)
    }
}

/// One dataset directory: file locations, meta.json and typed binary reads, with errors named `directory/file`.
private typealias DatasetDirectory = FormatDirectory<DatasetErrorKind>

private extension FormatDirectory where Category == DatasetErrorKind {
    func readMeta() throws -> Meta {
        let file = path(FileName.meta)
        guard exists(FileName.meta) else {
            throw DatasetError(.missingFile, file: file, field: "file", found: "missing", expected: "present in a \(DatasetFormat.formatName) directory")
        }
        let data = try perform(on: FileName.meta) { try Data(contentsOf: url(FileName.meta)) }
        let header = try decodeMeta(MetaHeader.self, from: data)
        guard header.format == DatasetFormat.formatName else {
            throw DatasetError(.wrongFormat, file: file, field: "`format`", found: "\"\(header.format)\"", expected: "\"\(DatasetFormat.formatName)\"")
        }
        guard header.formatVersion == DatasetFormat.formatVersion else {
            throw DatasetError(.unsupportedVersion, file: file, field: "`format_version`", found: "\(header.formatVersion)", expected: "\(DatasetFormat.formatVersion)")
        }
        let meta = try decodeMeta(Meta.self, from: data)
        // Node, feature and class ids are stored as int32. A task has at least one class: with none, multi-label
        // targets of `num_nodes × 0` bytes cover no node, and no label could be in range.
        let limits: [(String, Int, ClosedRange<Int>)] = [
            ("num_nodes", meta.numNodes, 0...Int(Int32.max)), ("num_features", meta.numFeatures, 0...Int(Int32.max)),
            ("num_classes", meta.numClasses, 1...Int(Int32.max)), ("num_edges_directed", meta.numEdgesDirected, 0...Int.max),
            ("feature_nnz", meta.featureNnz, 0...Int.max),
        ]
        for (key, value, range) in limits where !range.contains(value) {
            throw DatasetError(.badField, file: file, field: "`\(key)`", found: "\(value)", expected: "a count in \(range)")
        }
        return meta
    }

    private func decodeMeta<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try decode(T.self, from: data, file: FileName.meta, document: "the meta.json of a \(DatasetFormat.formatName) directory")
    }

    /// Checks `files` against the layout meta.json describes and against the directory; returns whether the
    /// features are dense.
    func checkFileList(_ meta: Meta) throws -> Bool {
        let listed = Set(meta.files)
        let metaFile = path(FileName.meta)
        if listed.count != meta.files.count {
            throw DatasetError(.fileListMismatch, file: metaFile, field: "`files`", found: "\(meta.files)", expected: "no repeated names")
        }
        let dense = listed.contains(FileName.denseFeatures)
        var required = Set(FileName.masks).union([FileName.edges, meta.multilabel ? FileName.multiLabels : FileName.labels])
        required.formUnion(dense ? [FileName.denseFeatures] : FileName.sparseFeatures)
        guard listed == required else {
            let lacking = required.subtracting(listed).sorted(), extra = listed.subtracting(required).sorted()
            let found = [lacking.isEmpty ? nil : "lacking " + lacking.joined(separator: ", "),
                         extra.isEmpty ? nil : "listing " + extra.joined(separator: ", ")]
            throw DatasetError(.fileListMismatch, file: metaFile, field: "`files`", found: found.compactMap { $0 }.joined(separator: " and "),
                expected: "the files of a \(meta.multilabel ? "multi" : "single")-label dataset with \(dense ? "dense" : "sparse") features")
        }
        for file in required.sorted() where !exists(file) {
            throw DatasetError(.missingFile, file: path(file), field: "file", found: "missing", expected: "present (listed in meta.json `files`)")
        }
        for file in FileName.known.subtracting(required).sorted() where exists(file) {
            throw DatasetError(.fileListMismatch, file: path(file), field: "file", found: "present", expected: "absent or listed in meta.json `files`")
        }
        return dense
    }

    /// The checksums meta.json records, parsed; `nil` when it records none. Every listed file must have exactly one.
    func checkedChecksums(_ meta: Meta) throws -> [String: UInt64]? {
        guard let recorded = meta.xxh64 else { return nil }
        let metaFile = path(FileName.meta), key = FileName.checksumKey
        let listed = Set(meta.files), covered = Set(recorded.keys)
        guard covered == listed else {
            let lacking = listed.subtracting(covered).sorted(), extra = covered.subtracting(listed).sorted()
            let found = [lacking.isEmpty ? nil : "lacking " + lacking.joined(separator: ", "),
                         extra.isEmpty ? nil : "listing " + extra.joined(separator: ", ") + " (not in `files`)"]
            throw DatasetError(.fileListMismatch, file: metaFile, field: "`\(key)`", found: found.compactMap { $0 }.joined(separator: " and "),
                expected: "one checksum for each file in `files`")
        }
        var parsed: [String: UInt64] = [:]
        for (file, text) in recorded {
            guard text.count == 16, text.allSatisfy(\.isHexDigit), let value = UInt64(text, radix: 16) else {
                throw DatasetError(.badField, file: metaFile, field: "`\(key).\(file)`", found: "\"\(text)\"", expected: "16 hex digits (an XXH64)")
            }
            parsed[file] = value
        }
        return parsed
    }

    /// Reads a headerless array of `shape`, checking its byte size exactly and, given `checksum`, its XXH64; one
    /// copy from the file's bytes, hashed chunk by chunk right after each chunk is copied (still in cache).
    func readArray<T: BitwiseCopyable>(_ file: String, shape: [Int], checksum: UInt64?) throws -> [T] {
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        let (byteCount, byteOverflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        let type = file.split(separator: ".").last.map(String.init) ?? "?"
        let expected = "\(byteCount) bytes (\(shape.map(String.init).joined(separator: " × ")) × \(type))"
        let data = try perform(on: file) { try Data(contentsOf: url(file), options: .mappedIfSafe) }
        guard !overflow, !byteOverflow, data.count == byteCount else {
            throw DatasetError(.sizeMismatch, file: path(file), field: "byte size", found: "\(data.count)",
                expected: overflow || byteOverflow ? "an addressable size for shape \(shape)" : expected)
        }
        var hasher = XXHash64Stream()
        let array = data.withUnsafeBytes { raw in
            [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                let destination = UnsafeMutableRawBufferPointer(buffer)
                guard checksum != nil else {
                    destination.copyMemory(from: raw)
                    initialized = count
                    return
                }
                // 256 KiB fits in L2 on any CPU this runs on, so the hash reads what the copy just wrote.
                let chunk = 1 << 18
                var offset = 0
                while offset < raw.count {
                    let end = min(offset + chunk, raw.count)
                    let piece = UnsafeMutableRawBufferPointer(rebasing: destination[offset..<end])
                    piece.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
                    hasher.update(UnsafeRawBufferPointer(piece))
                    offset = end
                }
                initialized = count
            }
        }
        if let checksum, hasher.value != checksum {
            throw DatasetError(.checksumMismatch, file: path(file), field: "checksum (xxh64)", found: XXHash64.hex(hasher.value),
                expected: "\(XXHash64.hex(checksum)) as meta.json records: the file is corrupted or was changed after it was written")
        }
        return array
    }

    /// The statistics meta.json declares must match the data, so a stale meta.json is caught.
    func checkDeclaredCounts(_ meta: Meta, against derived: DerivedCounts) throws {
        func check<T: Equatable>(_ key: String, _ declared: T?, _ actual: T, _ meaning: String) throws {
            if let declared, declared != actual {
                throw DatasetError(.countMismatch, file: path(FileName.meta), field: "`\(key)`", found: "\(declared)", expected: "\(actual), \(meaning)")
            }
        }
        try check("feature_nnz", meta.featureNnz, derived.featureNonZeros, "the number of non-zero features")
        try check("num_edges_undirected", meta.numEdgesUndirected, derived.undirectedEdges, "the number of distinct unordered node pairs")
        try check("isolated_nodes", meta.isolatedNodes, derived.isolatedNodes, "the number of nodes without edges")
        try check("num_unlabeled_nodes", meta.numUnlabeledNodes, derived.unlabelledNodes, "the number of nodes labelled -1")
        try check("features_binary", meta.featuresBinary, derived.binaryFeatures, "whether every feature is 0 or 1")
        let actual = derived.splitSizes
        try check("split_sizes.train", meta.splitSizes?.train, actual.train, "the nodes in \(FileName.masks[0])")
        try check("split_sizes.val", meta.splitSizes?.val, actual.val, "the nodes in \(FileName.masks[1])")
        try check("split_sizes.test", meta.splitSizes?.test, actual.test, "the nodes in \(FileName.masks[2])")
    }
}
