import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import XCTest

/// A small synthetic dataset (homophilous SBM, 8 classes).
func syntheticDataset(_ spec: String = "synthetic:nodes=2000,classes=8,features=16,degree=12,seed=3") -> Dataset {
    // swiftlint:disable:next force_try
    try! SyntheticGraphSpec(parsing: spec).generate()
}

/// A hand-made directed graph of 7 nodes with asymmetric edges, dense features, labels and a split.
///
/// Edges (source → destination): 0→1, 1→0, 1→2, 2→3, 3→2, 4→3, 5→4, 4→5, 6→0, 2→6.
func handMadeDataset() -> Dataset {
    let edges: [(Int32, Int32)] = [(0, 1), (1, 0), (1, 2), (2, 3), (3, 2), (4, 3), (5, 4), (4, 5), (6, 0), (2, 6)]
    let graph = Graph(nodeCount: 7, sources: edges.map(\.0), destinations: edges.map(\.1))
    let features = Matrix(rows: 7, cols: 3) { i, j in Float(i * 3 + j) * 0.25 - 1 }
    return Dataset(
        name: "handmade", graph: graph, features: .dense(features),
        labels: .singleLabel(classes: [0, 1, 2, 0, 1, 2, -1], classCount: 3),
        split: NodeSplit(train: [true, true, false, false, true, false, false],
                         validation: [false, false, true, false, false, false, false],
                         test: [false, false, false, true, false, true, false]))
}

/// The owner array used with the hand-made dataset: parts {0,1,2}, {3,4}, {5,6}.
let handMadeOwner: [Int32] = [0, 0, 0, 1, 1, 2, 2]

/// A deterministic dense matrix of `rows × cols` (input to operator comparisons).
func testMatrix(rows: Int, cols: Int, salt: Int = 0) -> Matrix {
    Matrix(rows: rows, cols: cols) { i, j in Float(((i &* 7919 &+ j &* 104_729 &+ salt) % 2003)) / 1001.5 - 1 }
}

/// Largest difference between `part`'s local operator applied to `[X_inner; X_halo]` and the rows of the global
/// operator times X for the part's inner nodes.
func operatorDiscrepancy(_ part: Part, graph: Graph, globalProduct: Matrix, x: Matrix, aggregation: Aggregation) -> Float {
    let op = part.propagationOperator(aggregation)
    let localIDs = part.innerGlobalIDs + part.haloGlobalIDs
    var xLocal = Matrix(rows: localIDs.count, cols: x.cols)
    gatherRows(x, localIDs, into: &xLocal)
    let yLocal = op.forward.multiplied(by: xLocal)
    var expected = Matrix(rows: part.innerCount, cols: x.cols)
    gatherRows(globalProduct, part.innerGlobalIDs, into: &expected)
    return yLocal.maxAbsDifference(expected)
}

/// Checks every structural invariant of `parts` against the dataset and partitioning they were built from.
func assertPartsConsistent(
    _ parts: [Part], dataset: Dataset, partitioning: GraphPartitioning, localityOrder: Bool = true,
    file: StaticString = #filePath, line: UInt = #line
) {
    let graph = dataset.graph, n = graph.nodeCount, p = partitioning.partCount
    XCTAssertEqual(parts.count, p, file: file, line: line)
    var localityRank = [Int](repeating: 0, count: n)
    for (position, v) in (localityOrder ? graph.reverseCuthillMcKeeOrder() : Array(0..<n)).enumerated() {
        localityRank[v] = position
    }
    // Every node is inner in exactly one part, the one that owns it.
    var seen = [Int](repeating: 0, count: n)
    for part in parts {
        for v in part.innerGlobalIDs {
            seen[Int(v)] += 1
            XCTAssertEqual(Int(partitioning.owner[Int(v)]), part.rank, "node \(v) inner in a part that does not own it", file: file, line: line)
        }
    }
    XCTAssertTrue(seen.allSatisfy { $0 == 1 }, "every node must be inner exactly once", file: file, line: line)

    for part in parts {
        let r = Int32(part.rank)
        XCTAssertEqual(part.totalNodeCount, n, file: file, line: line)
        XCTAssertEqual(part.partCount, p, file: file, line: line)
        // Central nodes have no remote in-neighbour, marginal ones have one; each group in locality order.
        for (i, v) in part.innerGlobalIDs.enumerated() {
            let remote = graph.inNeighbors(Int(v)).contains { partitioning.owner[Int($0)] != r }
            XCTAssertEqual(remote, i >= part.centralCount, "node \(v) at local \(i) (central count \(part.centralCount))", file: file, line: line)
            if i > 0 && i != part.centralCount {
                XCTAssertLessThan(localityRank[Int(part.innerGlobalIDs[i - 1])], localityRank[Int(v)],
                                  "inner group not in locality order", file: file, line: line)
            }
        }
        // Halo = exactly the remote in-neighbours, grouped by owner, ascending within an owner.
        var remoteSet = Set<Int32>()
        for v in part.innerGlobalIDs {
            for u in graph.inNeighbors(Int(v)) where partitioning.owner[Int(u)] != r { remoteSet.insert(u) }
        }
        XCTAssertEqual(Set(part.haloGlobalIDs), remoteSet, "halo must be the remote in-neighbours", file: file, line: line)
        XCTAssertEqual(part.haloGlobalIDs.count, remoteSet.count, "halo has duplicates", file: file, line: line)
        XCTAssertEqual(part.haloRanges.count, p, file: file, line: line)
        XCTAssertTrue(part.haloRanges[part.rank].isEmpty, file: file, line: line)
        var next = 0
        for (q, range) in part.haloRanges.enumerated() {
            XCTAssertEqual(range.lowerBound, next, "halo blocks must be contiguous in rank order", file: file, line: line)
            next = range.upperBound
            let block = part.haloGlobalIDs[range]
            XCTAssertTrue(block.allSatisfy { Int(partitioning.owner[Int($0)]) == q }, "halo block \(q) holds foreign nodes", file: file, line: line)
            XCTAssertEqual(Array(block), block.sorted(), "halo block \(q) not ascending", file: file, line: line)
        }
        XCTAssertEqual(next, part.haloCount, file: file, line: line)
        // Local CSR maps back to the global in-lists.
        let local = part.innerGlobalIDs + part.haloGlobalIDs
        for (i, v) in part.innerGlobalIDs.enumerated() {
            let row = part.inSources[part.inPointers[i]..<part.inPointers[i + 1]]
            XCTAssertEqual(Array(row), row.sorted(), file: file, line: line)
            XCTAssertEqual(row.map { local[Int($0)] }.sorted(), Array(graph.inNeighbors(Int(v))), "row \(i) (node \(v))", file: file, line: line)
        }
        // Degrees are the global ones with self loop.
        let global = graph.degreesWithSelfLoops
        XCTAssertEqual(part.degrees.inDegrees, local.map { global.inDegrees[Int($0)] }, file: file, line: line)
        XCTAssertEqual(part.degrees.outDegrees, local.map { global.outDegrees[Int($0)] }, file: file, line: line)
        // Rows carried along.
        let rows = part.innerGlobalIDs.map { Int($0) }
        XCTAssertEqual(part.features, dataset.features.selectingRows(rows), file: file, line: line)
        XCTAssertEqual(part.labels, dataset.labels.selectingRows(rows), file: file, line: line)
        XCTAssertEqual(part.split, dataset.split.selectingRows(rows), file: file, line: line)
        XCTAssertEqual(part.globalSplitCounts, GlobalSplitCounts(dataset.split), file: file, line: line)
    }

    // What r sends to q is, in order, q's halo block from r.
    for r in parts {
        XCTAssertTrue(r.sendLists[r.rank].isEmpty, file: file, line: line)
        for q in parts where q.rank != r.rank {
            let sent = r.sendLists[q.rank].map { r.innerGlobalIDs[Int($0)] }
            XCTAssertEqual(sent, Array(q.haloGlobalIDs[q.haloRanges[r.rank]]), "send \(r.rank)→\(q.rank)", file: file, line: line)
        }
    }
}

/// Asserts the key invariant for both aggregations and every part.
func assertOperatorsMatchGlobal(_ parts: [Part], graph: Graph, width: Int = 5, file: StaticString = #filePath, line: UInt = #line) {
    let x = testMatrix(rows: graph.nodeCount, cols: width)
    for aggregation in Aggregation.allCases {
        let global = graph.aggregationOperator(aggregation).multiplied(by: x)
        for part in parts {
            let op = part.propagationOperator(aggregation)
            XCTAssertNil(op.forward.firstStructuralProblem(), file: file, line: line)
            XCTAssertEqual(op.centralCount, part.centralCount, file: file, line: line)
            XCTAssertEqual(op.haloCount, part.haloCount, file: file, line: line)
            // Central rows read inner columns only.
            for i in 0..<part.centralCount {
                let cols = op.forward.columnIndices[op.forward.rowPointers[i]..<op.forward.rowPointers[i + 1]]
                XCTAssertTrue(cols.allSatisfy { Int($0) < part.innerCount }, "central row \(i) reads a halo column", file: file, line: line)
            }
            let d = operatorDiscrepancy(part, graph: graph, globalProduct: global, x: x, aggregation: aggregation)
            XCTAssertLessThanOrEqual(d, 1e-6, "\(aggregation) operator of part \(part.rank) differs by \(d)", file: file, line: line)
        }
    }
}

/// A fresh temporary directory, removed at the end of the test.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("halo-part-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// The shared datasets folder (`../shared/datasets` from the repository root), if present.
func sharedDataset(_ name: String) -> URL? {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let url = root.deletingLastPathComponent().appendingPathComponent("shared/datasets/\(name)")
    return FileManager.default.fileExists(atPath: url.appendingPathComponent("meta.json").path) ? url : nil
}

/// Rewrites the JSON object in `url` through `edit`.
func editJSON(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
    var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    edit(&object)
    try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]).write(to: url)
}

/// Replaces a part file and records its new size and checksum in the manifest, as a careful forger would, so only
/// the content checks can object.
func replacePartFileConsistently(_ dir: URL, rank: Int, file name: String, with data: Data) throws {
    try data.write(to: dir.appendingPathComponent("part-\(rank)/\(name)"))
    try editJSON(dir.appendingPathComponent("manifest.json")) { m in
        var list = m["part_list"] as! [[String: Any]]
        var files = list[rank]["files"] as! [[String: Any]]
        let i = files.firstIndex { ($0["name"] as! String) == name }!
        files[i]["xxh64"] = XXHash64.hex(data.withUnsafeBytes { XXHash64.hash($0) })
        files[i]["bytes"] = data.count
        list[rank]["files"] = files
        m["part_list"] = list
    }
}
