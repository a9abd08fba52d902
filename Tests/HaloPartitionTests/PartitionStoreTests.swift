import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import XCTest

final class PartitionStoreTests: XCTestCase {
    /// Writes 3 METIS parts of the small synthetic dataset; returns the directory and the parts.
    private func writeSynthetic() throws -> (URL, [Part], PartitionManifest) {
        let data = syntheticDataset("synthetic:nodes=600,classes=4,features=6,degree=8,seed=9")
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 3, method: .metis, seed: 2)
        let parts = Part.build(dataset: data, partitioning: partitioning)
        let dir = try temporaryDirectory(self).appendingPathComponent("p3")
        let manifest = try PartitionStore.write(
            parts: parts, partitioning: partitioning, quality: partitioning.quality(of: data.graph),
            fingerprint: DatasetFingerprint(data), to: dir)
        return (dir, parts, manifest)
    }

    private func assertError(
        _ kind: PartitionError.Kind, fileSuffix: String, _ body: () throws -> Part,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let e = error as? PartitionError else {
                return XCTFail("expected a PartitionError, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            XCTAssertTrue(e.file.hasSuffix(fileSuffix), "error names \(e.file), expected …\(fileSuffix): \(e)", file: file, line: line)
            XCTAssertFalse(e.description.isEmpty, file: file, line: line)
        }
    }

    /// Rewrites manifest.json through `edit`.
    private func editManifest(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        try editJSON(dir.appendingPathComponent("manifest.json"), edit)
    }

    func testRoundTrip() throws {
        let (dir, parts, manifest) = try writeSynthetic()
        XCTAssertEqual(try PartitionStore.readManifest(directory: dir), manifest)
        XCTAssertEqual(manifest.parts, 3)
        XCTAssertEqual(manifest.method, .metis)
        XCTAssertEqual(manifest.seed, 2)
        XCTAssertEqual(manifest.partList.map(\.inner), parts.map(\.innerCount))
        XCTAssertEqual(manifest.partList.map(\.halo), parts.map(\.haloCount))
        for part in parts {
            XCTAssertEqual(try PartitionStore.read(directory: dir, rank: part.rank), part)
        }
        // Rewriting into the same directory replaces it.
        let again = try PartitionStore.write(
            parts: Array(parts), partitioning: GraphPartitioning(partCount: 3, owner: [Int32](repeating: 0, count: 600), method: .metis, seed: 2),
            quality: PartitionQuality(partSizes: [1], cutEdges: 0, cutDirectedEdges: 0, directedEdgeCount: 0),
            fingerprint: manifest.dataset.fingerprint, to: dir)
        XCTAssertEqual(again.partList, manifest.partList)
    }

    func testRoundTripSparseMultiLabelAndHandMade() throws {
        let data = handMadeDataset()
        var sparse = data
        sparse.features = .sparse(SparseMatrix(rows: 7, cols: 4, triplets: [(0, 1, 1), (2, 3, 0.5), (6, 0, -2)]))
        sparse.labels = .multiLabel(targets: (0..<21).map { UInt8($0 % 2) }, classCount: 3)
        for dataset in [data, sparse] {
            let partitioning = GraphPartitioning(partCount: 3, owner: handMadeOwner, method: .contiguous, seed: UInt64.max - 5)
            let dir = try temporaryDirectory(self)
            let manifest = try PartitionStore.write(dataset: dataset, partitioning: partitioning, to: dir)
            XCTAssertEqual(try PartitionStore.readManifest(directory: dir).seed, UInt64.max - 5)
            XCTAssertEqual(manifest.dataset.fingerprint, DatasetFingerprint(dataset))
            XCTAssertEqual(manifest.edgeCut, partitioning.quality(of: dataset.graph).cutEdges)
            let parts = Part.build(dataset: dataset, partitioning: partitioning)
            for r in 0..<3 { XCTAssertEqual(try PartitionStore.read(directory: dir.path, rank: r), parts[r]) }
        }
    }

    func testEmptyPartsAndSingleNodeParts() throws {
        // Part 1 owns nothing; parts 0 and 3 own one node each.
        let data = handMadeDataset()
        let partitioning = GraphPartitioning(partCount: 4, owner: [0, 2, 2, 2, 3, 2, 2], method: .contiguous, seed: 0)
        let parts = Part.build(dataset: data, partitioning: partitioning)
        assertPartsConsistent(parts, dataset: data, partitioning: partitioning)
        assertOperatorsMatchGlobal(parts, graph: data.graph)
        XCTAssertEqual(parts[1].innerCount, 0)
        XCTAssertEqual(parts[1].propagationOperator(.gcn).forward.rows, 0)
        let dir = try temporaryDirectory(self)
        try PartitionStore.write(dataset: data, partitioning: partitioning, to: dir)
        for r in 0..<4 { XCTAssertEqual(try PartitionStore.read(directory: dir, rank: r), parts[r]) }
    }

    func testMissingFile() throws {
        let (dir, _, _) = try writeSynthetic()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("part-1/in_indices.i32"))
        assertError(.missingFile, fileSuffix: "p3/part-1/in_indices.i32") { try PartitionStore.read(directory: dir, rank: 1) }
        // Other ranks still load: a rank reads only its own part.
        XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: 0))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("manifest.json"))
        assertError(.missingFile, fileSuffix: "p3/manifest.json") { try PartitionStore.read(directory: dir, rank: 0) }
    }

    func testTruncatedFile() throws {
        let (dir, _, _) = try writeSynthetic()
        let url = dir.appendingPathComponent("part-0/halo_ids.i32")
        let data = try Data(contentsOf: url)
        try data.dropLast(4).write(to: url)
        assertError(.sizeMismatch, fileSuffix: "part-0/halo_ids.i32") { try PartitionStore.read(directory: dir, rank: 0) }
    }

    func testFlippedByteIsAChecksumError() throws {
        let (dir, _, _) = try writeSynthetic()
        for name in ["features.f32", "in_indices.i32", "meta.json", "send_indices.i32"] {
            let url = dir.appendingPathComponent("part-2/\(name)")
            var data = try Data(contentsOf: url)
            data[data.count / 2] ^= 0x10
            try data.write(to: url)
            assertError(.checksumMismatch, fileSuffix: "part-2/\(name)") { try PartitionStore.read(directory: dir, rank: 2) }
            data[data.count / 2] ^= 0x10
            try data.write(to: url)
            XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: 2))
        }
    }

    func testWrongFormatAndVersion() throws {
        let (dir, _, _) = try writeSynthetic()
        try editManifest(dir) { $0["format_version"] = 3 }
        assertError(.unsupportedVersion, fileSuffix: "p3/manifest.json") { try PartitionStore.read(directory: dir, rank: 0) }
        try editManifest(dir) { $0["format_version"] = 1; $0["format"] = "halo-dataset" }
        assertError(.wrongFormat, fileSuffix: "p3/manifest.json") { try PartitionStore.read(directory: dir, rank: 0) }
        try editManifest(dir) { $0["format"] = "halo-partitions"; $0.removeValue(forKey: "seed") }
        assertError(.missingField, fileSuffix: "p3/manifest.json") { try PartitionStore.read(directory: dir, rank: 0) }
        try "not json".write(to: dir.appendingPathComponent("manifest.json"), atomically: true, encoding: .utf8)
        assertError(.badJSON, fileSuffix: "p3/manifest.json") { try PartitionStore.read(directory: dir, rank: 0) }
    }

    func testRankOutOfRange() throws {
        let (dir, _, _) = try writeSynthetic()
        assertError(.rankOutOfRange, fileSuffix: "p3/manifest.json") { try PartitionStore.read(directory: dir, rank: 3) }
        assertError(.rankOutOfRange, fileSuffix: "p3/manifest.json") { try PartitionStore.read(directory: dir, rank: -1) }
    }

    func testManifestAndPartMismatch() throws {
        let (dir, _, manifest) = try writeSynthetic()
        try editManifest(dir) { m in
            var list = m["part_list"] as! [[String: Any]]
            list[1]["inner"] = (list[1]["inner"] as! Int) + 1
            m["part_list"] = list
        }
        assertError(.manifestMismatch, fileSuffix: "part-1/meta.json") { try PartitionStore.read(directory: dir, rank: 1) }
        XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: 0))

        // Parts of another dataset: the fingerprints differ.
        let (other, _, _) = try writeSynthetic()
        try editManifest(other) { m in
            var dataset = m["dataset"] as! [String: Any]
            dataset["fingerprint"] = "0123456789abcdef"
            m["dataset"] = dataset
        }
        XCTAssertNotEqual(manifest.dataset.fingerprint.hex, "0123456789abcdef")
        assertError(.manifestMismatch, fileSuffix: "part-0/meta.json") { try PartitionStore.read(directory: other, rank: 0) }

        // A part count that disagrees with the part list.
        try editManifest(other) { $0["parts"] = 4 }
        assertError(.manifestMismatch, fileSuffix: "p3/manifest.json") { try PartitionStore.read(directory: other, rank: 0) }
    }

    func testContentChecksBehindValidChecksums() throws {
        let (dir, parts, _) = try writeSynthetic()
        let part = parts[0]
        func i32(_ a: [Int32]) -> Data { a.withUnsafeBytes { Data($0) } }

        // A source outside the local nodes.
        var sources = part.inSources
        sources[0] = Int32(part.innerCount + part.haloCount)
        try replacePartFileConsistently(dir, rank: 0, file: "in_indices.i32", with: i32(sources))
        assertError(.badCSR, fileSuffix: "part-0/in_indices.i32") { try PartitionStore.read(directory: dir, rank: 0) }
        try replacePartFileConsistently(dir, rank: 0, file: "in_indices.i32", with: i32(part.inSources))

        // A send index beyond the inner rows.
        var send = part.sendLists.flatMap { $0 }
        send[send.count - 1] = Int32(part.innerCount)
        try replacePartFileConsistently(dir, rank: 0, file: "send_indices.i32", with: i32(send))
        assertError(.badSendList, fileSuffix: "part-0/send_indices.i32") { try PartitionStore.read(directory: dir, rank: 0) }
        try replacePartFileConsistently(dir, rank: 0, file: "send_indices.i32", with: i32(part.sendLists.flatMap { $0 }))

        // Halo ids out of order inside a block, and an inner id out of range.
        var halo = part.haloGlobalIDs
        let block = part.haloRanges.first { $0.count >= 2 }!
        halo.swapAt(block.lowerBound, block.lowerBound + 1)
        try replacePartFileConsistently(dir, rank: 0, file: "halo_ids.i32", with: i32(halo))
        assertError(.unsortedIDs, fileSuffix: "part-0/halo_ids.i32") { try PartitionStore.read(directory: dir, rank: 0) }
        try replacePartFileConsistently(dir, rank: 0, file: "halo_ids.i32", with: i32(part.haloGlobalIDs))
        var inner = part.innerGlobalIDs
        inner[inner.count - 1] = 600
        try replacePartFileConsistently(dir, rank: 0, file: "inner_ids.i32", with: i32(inner))
        assertError(.idOutOfRange, fileSuffix: "part-0/inner_ids.i32") { try PartitionStore.read(directory: dir, rank: 0) }
        try replacePartFileConsistently(dir, rank: 0, file: "inner_ids.i32", with: i32(part.innerGlobalIDs))

        // A degree that does not match the stored in-edges.
        var degrees = part.degrees.inDegrees
        degrees[0] += 1
        try replacePartFileConsistently(dir, rank: 0, file: "in_degrees.i32", with: i32(degrees))
        assertError(.badDegree, fileSuffix: "part-0/in_degrees.i32") { try PartitionStore.read(directory: dir, rank: 0) }
        try replacePartFileConsistently(dir, rank: 0, file: "in_degrees.i32", with: i32(part.degrees.inDegrees))

        XCTAssertEqual(try PartitionStore.read(directory: dir, rank: 0), part)
    }

    /// Issue 12, defect 2: a middle entry of an offset array past the end used to index out of range (SIGILL) before
    /// any check saw it. Every offset array is now checked whole first: the error names the file and the entry.
    func testOffsetArraysAreCheckedWholeBeforeUse() throws {
        let (dir, parts, _) = try writeSynthetic()
        let part = parts[0]
        func i64(_ a: [Int64]) -> Data { a.withUnsafeBytes { Data($0) } }
        var sendPointers: [Int64] = [0]
        for list in part.sendLists { sendPointers.append(sendPointers.last! + Int64(list.count)) }
        XCTAssertEqual(sendPointers.count, 4)
        let haloOffsets = part.haloRanges.map { Int64($0.lowerBound) } + [Int64(part.haloCount)]
        let inPointers = part.inPointers.map { Int64($0) }

        func assertRefused(_ name: String, _ values: [Int64], _ kind: PartitionError.Kind, entry: Int, line: UInt = #line) throws {
            try replacePartFileConsistently(dir, rank: 0, file: name, with: i64(values))
            XCTAssertThrowsError(try PartitionStore.read(directory: dir, rank: 0), line: line) { error in
                guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)", line: line) }
                XCTAssertEqual(e.kind, kind, "\(e)", line: line)
                XCTAssertTrue(e.file.hasSuffix("part-0/\(name)"), "\(e)", line: line)
                XCTAssertTrue(e.field.hasPrefix("entry \(entry) "), "\(e)", line: line)
            }
            let original = name == "send_indptr.i64" ? sendPointers : name == "in_indptr.i64" ? inPointers : haloOffsets
            try replacePartFileConsistently(dir, rank: 0, file: name, with: i64(original))
        }

        // A middle entry far past the end (the crash of the issue), in each offset array.
        var damaged = sendPointers
        damaged[1] = sendPointers[3] + 1000
        try assertRefused("send_indptr.i64", damaged, .badSendList, entry: 1)
        damaged = inPointers
        damaged[part.innerCount / 2] = Int64(part.edgeCount) + 1
        try assertRefused("in_indptr.i64", damaged, .badCSR, entry: part.innerCount / 2)
        damaged = haloOffsets
        damaged[1] = Int64(part.haloCount) + 5
        try assertRefused("halo_offsets.i64", damaged, .inconsistentHalo, entry: 1)

        // Decreasing in the middle, with both ends right.
        damaged = sendPointers
        damaged[1] = sendPointers[3]
        damaged[2] = 0
        try assertRefused("send_indptr.i64", damaged, .badSendList, entry: 2)
        damaged = inPointers
        damaged[2] = inPointers[4]
        damaged[3] = 0
        try assertRefused("in_indptr.i64", damaged, .badCSR, entry: 3)
        // A wrong first entry.
        damaged = inPointers
        damaged[0] = -1
        try assertRefused("in_indptr.i64", damaged, .badCSR, entry: 0)

        XCTAssertEqual(try PartitionStore.read(directory: dir, rank: 0), part)
    }

    /// The same for sparse features: a middle `feat_indptr` entry past feature_nnz.
    func testSparseFeatureOffsetsAreCheckedWholeBeforeUse() throws {
        var data = syntheticDataset("synthetic:nodes=200,classes=3,features=5,degree=6,seed=4")
        guard case .dense(let m) = data.features else { return XCTFail("the synthetic features are dense") }
        // Every other entry kept, so rows hold different numbers of non-zeros.
        let triplets = (0..<m.rows * m.cols).filter { $0 % 2 == 0 }.map { (row: $0 / m.cols, col: $0 % m.cols, value: m.storage[$0]) }
        data.features = .sparse(SparseMatrix(rows: m.rows, cols: m.cols, triplets: triplets))
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 2, method: .metis, seed: 1)
        let dir = try temporaryDirectory(self).appendingPathComponent("p2")
        try PartitionStore.write(dataset: data, partitioning: partitioning, to: dir)
        let part = try PartitionStore.read(directory: dir, rank: 1)
        guard case .sparse(let s) = part.features else { return XCTFail("expected sparse part features") }
        var pointers = s.rowPointers.map { Int64($0) }
        pointers[1] = Int64(s.nonZeroCount) + 7
        try replacePartFileConsistently(dir, rank: 1, file: "feat_indptr.i64", with: pointers.withUnsafeBytes { Data($0) })
        XCTAssertThrowsError(try PartitionStore.read(directory: dir, rank: 1)) { error in
            let e = error as? PartitionError
            XCTAssertEqual(e?.kind, .badCSR, "\(error)")
            XCTAssertEqual(e?.file, "p2/part-1/feat_indptr.i64", "\(error)")
            XCTAssertEqual(e?.field, "entry 1 (end of row 0)", "\(error)")
        }
    }

    func testRefusesToOverwriteForeignDirectory() throws {
        let dir = try temporaryDirectory(self)
        try "keep me".write(to: dir.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let data = handMadeDataset()
        let partitioning = GraphPartitioning(partCount: 3, owner: handMadeOwner, method: .contiguous, seed: 0)
        XCTAssertThrowsError(try PartitionStore.write(dataset: data, partitioning: partitioning, to: dir)) { error in
            XCTAssertEqual((error as? PartitionError)?.kind, .notAPartitionDirectory)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("notes.txt").path))
    }
}
