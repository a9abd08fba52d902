import Foundation
import HaloGraph
import HaloTensor

/// Converts a NumPy `.npz` in the gnn-benchmark layout (Shchur et al.'s `cora_ml.npz`, `amazon_electronics_*.npz`,
/// …, and what docs/importing.md's recipe writes from a PyG or DGL graph) to a `Dataset`:
///
///     adj_indptr, adj_indices, adj_shape   the adjacency as SciPy CSR: row i lists the nodes i has edges to
///     adj_data                             optional: edge weights; entries of 0 are not edges, others are edges
///     attr_matrix                          dense features (n × f), or sparse ones as CSR:
///     attr_data, attr_indices, attr_indptr, attr_shape
///     labels                               (n,) class ids (-1: unlabelled), or (n, c) 0/1 multi-label targets;
///     labels_data, labels_indices, labels_indptr, labels_shape   or multi-label targets as CSR
///     train_mask, val_mask, test_mask      optional (n,) booleans; without them a split is generated
///
/// Other members (`idx_to_node`, `attr_text`, `class_names`, …) are ignored and never parsed.
public enum NPZImporter {
    public struct Options: Sendable {
        public var direction: EdgeDirection = .undirected
        /// Used when the file holds no masks.
        public var generatedSplit: SplitFractions = .standard
        public var seed: UInt64 = 0
        /// The dataset's name; nil takes the file's name without `.npz`.
        public var name: String?

        public init() {}
    }

    public static func importDataset(file: URL, options: Options = Options()) throws -> ImportedDataset {
        let fileName = file.lastPathComponent
        let archive = try ZipArchive(url: file, displayName: fileName)
        let npz = NPZMembers(archive: archive)
        var notes: [String] = []

        // The adjacency fixes the node count.
        let adjacencyShape = try npz.array("adj_shape")
        let shape = try adjacencyShape.integers(Int.self, in: 0...Int64(Int32.max), meaning: "adj_shape")
        guard shape.count == 2, shape[0] == shape[1] else {
            throw ImportError(.shapeMismatch, file: adjacencyShape.displayName, field: "value", found: "\(shape)", expected: "[n, n]: a square adjacency")
        }
        let n = shape[0]
        let adjacency = try npz.csr("adj", rows: n, cols: n)
        var builder = EdgeListBuilder(nodeCount: n, direction: options.direction, expectedEdges: adjacency.indices.count)
        for row in 0..<n {
            for e in adjacency.pointers[row]..<adjacency.pointers[row + 1] where adjacency.values?[e] != 0 {
                builder.add(Int32(row), adjacency.indices[e])
            }
        }
        let (graph, edgeNote) = builder.build()
        notes.append(edgeNote)

        let features: NodeFeatures
        if npz.has("attr_matrix") {
            let matrix = try npz.array("attr_matrix")
            guard matrix.shape.count == 2, matrix.shape[0] == n else {
                throw ImportError(.shapeMismatch, file: matrix.displayName, field: "shape", found: matrix.shapeText, expected: "(\(n), features): one row per node")
            }
            features = .dense(Matrix(rows: n, cols: matrix.shape[1], storage: try matrix.finiteFloats(meaning: "feature")))
        } else if npz.has("attr_indptr") {
            let widthArray = try npz.array("attr_shape")
            let attributeShape = try widthArray.integers(Int.self, in: 0...Int64(Int32.max), meaning: "attr_shape")
            guard attributeShape.count == 2, attributeShape[0] == n else {
                throw ImportError(.shapeMismatch, file: widthArray.displayName, field: "value", found: "\(attributeShape)", expected: "[\(n), features]: one row per node")
            }
            let csr = try npz.csr("attr", rows: n, cols: attributeShape[1])
            features = .sparse(csr.sortedSparseMatrix())
        } else {
            throw ImportError(.missingFile, file: "\(fileName)/attr_matrix.npy", field: "member",
                              found: "missing, and no attr_data/attr_indices/attr_indptr/attr_shape either", expected: "node features, dense or CSR")
        }

        let labels = try readLabels(npz, nodeCount: n)

        let split: NodeSplit
        let splitDescription: String
        if npz.has("train_mask") {
            split = try readMasks(npz, labels: labels, nodeCount: n)
            splitDescription = "the masks of \(fileName)"
        } else {
            let generated = SplitGenerator.generated(labels: labels, fractions: options.generatedSplit, seed: options.seed,
                                                     missing: "no masks in the file")
            (split, splitDescription) = (generated.split, generated.description)
            notes.append(generated.note)
        }
        let name = options.name ?? (fileName.hasSuffix(".npz") ? String(fileName.dropLast(4)) : fileName)
        let dataset = Dataset(name: name, graph: graph, features: features, labels: labels, split: split)
        return ImportedDataset(dataset: dataset, splitDescription: splitDescription,
                               source: "imported by halo import npz from \(fileName) (gnn-benchmark layout)", notes: notes)
    }

    private static func readLabels(_ npz: NPZMembers, nodeCount n: Int) throws -> NodeLabels {
        if npz.has("labels_indptr") {
            let shapeArray = try npz.array("labels_shape")
            let shape = try shapeArray.integers(Int.self, in: 0...Int64(Int32.max), meaning: "labels_shape")
            guard shape.count == 2, shape[0] == n, shape[1] > 0 else {
                throw ImportError(.shapeMismatch, file: shapeArray.displayName, field: "value", found: "\(shape)", expected: "[\(n), classes]")
            }
            let csr = try npz.csr("labels", rows: n, cols: shape[1])
            var targets = [UInt8](repeating: 0, count: n * shape[1])
            for row in 0..<n {
                for e in csr.pointers[row]..<csr.pointers[row + 1] where csr.values?[e] != 0 {
                    targets[row * shape[1] + Int(csr.indices[e])] = 1
                }
            }
            return .multiLabel(targets: targets, classCount: shape[1])
        }
        let array = try npz.array("labels")
        guard array.shape.first == n, array.shape.count <= 2 else {
            throw ImportError(.shapeMismatch, file: array.displayName, field: "shape", found: array.shapeText, expected: "(\(n),) class ids or (\(n), classes) 0/1 targets")
        }
        if array.shape.count == 2 {
            let targets = try array.integers(UInt8.self, in: 0...1, meaning: "target")
            guard array.shape[1] > 0 else {
                throw ImportError(.shapeMismatch, file: array.displayName, field: "shape", found: array.shapeText, expected: "at least one class")
            }
            return .multiLabel(targets: targets, classCount: array.shape[1])
        }
        // Float labels may mark unlabelled nodes with NaN (as OGB's ogbn-papers100M does): those become -1.
        var classes: [Int32] = []
        classes.reserveCapacity(n)
        try array.forEachElement { index, element in
            if case .real(let value) = element, value.isNaN {
                classes.append(-1)
                return
            }
            guard let whole = element.integer, (-1...Int64(Int32.max - 1)).contains(whole) else {
                throw ImportError(.labelOutOfRange, file: array.displayName, field: "label of node \(index)", found: element.description,
                                  expected: "a class id (a whole number ≥ 0), or -1 or NaN for an unlabelled node")
            }
            classes.append(Int32(whole))
        }
        let classCount = Int(classes.max() ?? -1) + 1
        guard classCount > 0 else {
            throw ImportError(.labelOutOfRange, file: array.displayName, field: "labels", found: "no labelled node", expected: "at least one class id ≥ 0")
        }
        return .singleLabel(classes: classes, classCount: classCount)
    }

    private static func readMasks(_ npz: NPZMembers, labels: NodeLabels, nodeCount n: Int) throws -> NodeSplit {
        var masks: [[Bool]] = []
        for name in ["train_mask", "val_mask", "test_mask"] {
            let array = try npz.array(name)
            guard array.shape == [n] else {
                throw ImportError(.shapeMismatch, file: array.displayName, field: "shape", found: array.shapeText, expected: "(\(n),): one flag per node")
            }
            masks.append(try array.integers(UInt8.self, in: 0...1, meaning: "flag").map { $0 == 1 })
        }
        for v in 0..<n {
            let owners = (0..<3).filter { masks[$0][v] }
            if owners.count > 1 {
                throw ImportError(.badSplit, file: "\(npz.archive.displayName)/\(["train_mask", "val_mask", "test_mask"][owners[1]]).npy",
                                  field: "node \(v)", found: "also in \(["train_mask", "val_mask", "test_mask"][owners[0]])", expected: "disjoint masks")
            }
            if let owner = owners.first, case .singleLabel(let classes, _) = labels, classes[v] == -1 {
                throw ImportError(.badSplit, file: "\(npz.archive.displayName)/\(["train_mask", "val_mask", "test_mask"][owner]).npy",
                                  field: "node \(v)", found: "masked but unlabelled (-1)", expected: "only labelled nodes in a mask")
            }
        }
        return NodeSplit(train: masks[0], validation: masks[1], test: masks[2])
    }
}

/// The `.npy` members of an `.npz`, by the name NumPy gave them (`adj_indices` for `adj_indices.npy`).
struct NPZMembers {
    let archive: ZipArchive
    /// Where the members come from, as a missing-member error says: "present in \(layout)".
    var layout = "a gnn-benchmark .npz (see docs/importing.md)"

    func has(_ name: String) -> Bool { archive.members["\(name).npy"] != nil }

    func array(_ name: String) throws -> NPYArray {
        guard has(name) else { throw missing(name) }
        return try NPYArray(try archive.contents(of: "\(name).npy"), displayName: "\(archive.displayName)/\(name).npy")
    }

    /// `name` as a stream, for a member too large to inflate whole.
    func streamReader(_ name: String) throws -> NPYStreamReader {
        guard has(name) else { throw missing(name) }
        return try NPYStreamReader(try archive.stream(of: "\(name).npy"))
    }

    private func missing(_ name: String) -> ImportError {
        ImportError(.missingFile, file: "\(archive.displayName)/\(name).npy", field: "member", found: "missing", expected: "present in \(layout)")
    }

    /// A SciPy CSR matrix saved as `<prefix>_indptr`, `<prefix>_indices` and, if present, `<prefix>_data`.
    func csr(_ prefix: String, rows: Int, cols: Int) throws -> CSRArrays {
        let pointerArray = try array("\(prefix)_indptr"), indexArray = try array("\(prefix)_indices")
        guard pointerArray.shape == [rows + 1] else {
            throw ImportError(.shapeMismatch, file: pointerArray.displayName, field: "shape", found: pointerArray.shapeText, expected: "(\(rows + 1),): rows + 1 pointers")
        }
        guard indexArray.shape.count == 1 else {
            throw ImportError(.shapeMismatch, file: indexArray.displayName, field: "shape", found: indexArray.shapeText, expected: "one dimension")
        }
        let nnz = indexArray.count
        let pointers = try pointerArray.integers(Int.self, in: 0...Int64(nnz), meaning: "row pointer")
        guard pointers.first == 0, pointers.last == nnz else {
            throw ImportError(.shapeMismatch, file: pointerArray.displayName, field: pointers.first != 0 ? "first pointer" : "last pointer",
                              found: "\(pointers.first != 0 ? pointers[0] : pointers[rows])", expected: pointers.first != 0 ? "0" : "\(nnz), the length of \(prefix)_indices")
        }
        for r in 0..<rows where pointers[r + 1] < pointers[r] {
            throw ImportError(.shapeMismatch, file: pointerArray.displayName, field: "pointer \(r + 1)", found: "\(pointers[r + 1]) after \(pointers[r])",
                              expected: "non-decreasing row pointers")
        }
        guard cols > 0 || nnz == 0 else {
            throw ImportError(.shapeMismatch, file: indexArray.displayName, field: "length", found: "\(nnz) entries", expected: "none: the matrix has 0 columns")
        }
        let indices = try indexArray.integers(Int32.self, in: 0...max(0, Int64(cols) - 1), meaning: "column index")
        var values: [Float]?
        if has("\(prefix)_data") {
            let dataArray = try array("\(prefix)_data")
            guard dataArray.shape == [nnz] else {
                throw ImportError(.shapeMismatch, file: dataArray.displayName, field: "shape", found: dataArray.shapeText, expected: "(\(nnz),), like \(prefix)_indices")
            }
            values = try dataArray.finiteFloats(meaning: "value")
        }
        return CSRArrays(rows: rows, cols: cols, pointers: pointers, indices: indices, values: values)
    }
}

/// A CSR matrix as SciPy saves it: columns in any order within a row, repeats allowed (they add up).
struct CSRArrays {
    let rows: Int
    let cols: Int
    let pointers: [Int]
    let indices: [Int32]
    /// Nil when the file has no `_data`: every stored entry is 1.
    let values: [Float]?

    /// The matrix with each row's columns sorted, repeats summed and zeros dropped, as the dataset format stores it.
    func sortedSparseMatrix() -> SparseMatrix {
        var rowPointers = [Int](repeating: 0, count: rows + 1)
        var columns: [Int32] = [], entries: [Float] = []
        columns.reserveCapacity(indices.count)
        entries.reserveCapacity(indices.count)
        var row: [(Int32, Float)] = []
        for r in 0..<rows {
            row.removeAll(keepingCapacity: true)
            for e in pointers[r]..<pointers[r + 1] { row.append((indices[e], values?[e] ?? 1)) }
            row.sort { $0.0 < $1.0 }
            var k = 0
            while k < row.count {
                var sum = row[k].1
                var next = k + 1
                while next < row.count && row[next].0 == row[k].0 { sum += row[next].1; next += 1 }
                if sum != 0 {
                    columns.append(row[k].0)
                    entries.append(sum)
                }
                k = next
            }
            rowPointers[r + 1] = columns.count
        }
        return SparseMatrix(rows: rows, cols: cols, rowPointers: rowPointers, columnIndices: columns, values: entries)
    }
}
