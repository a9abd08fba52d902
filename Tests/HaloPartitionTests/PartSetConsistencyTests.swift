import Foundation
import HaloGraph
import HaloPartition
import XCTest

/// Parts that each pass their own checks (checksums recomputed after the edit) but do not fit together: refused by
/// the partitioning id (one part against the manifest) and by the cross-part checks (`readAll`, and the tallies a
/// distributed run gathers), never trained on.
final class PartSetConsistencyTests: XCTestCase {
    private let spec = "synthetic:nodes=600,classes=4,features=6,degree=8,seed=9"

    /// Writes 3 parts of the small synthetic dataset with `method`; returns the directory.
    private func write(_ method: PartitionMethod, seed: UInt64, name: String) throws -> URL {
        let data = syntheticDataset(spec)
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 3, method: method, seed: seed)
        let dir = try temporaryDirectory(self).appendingPathComponent(name)
        try PartitionStore.write(dataset: data, partitioning: partitioning, to: dir)
        return dir
    }

    private func editMetaConsistently(_ dir: URL, rank: Int, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("part-\(rank)/meta.json")
        try editJSON(url, edit)
        try replacePartFileConsistently(dir, rank: rank, file: "meta.json", with: Data(contentsOf: url))
    }

    private func bytes<T: BitwiseCopyable>(_ array: [T]) -> Data { array.withUnsafeBytes { Data($0) } }

    private func assertRefused(
        _ kind: PartitionError.Kind, file fileSuffix: String, field: String, mentioning words: [String] = [],
        _ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)", file: file, line: line) }
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            XCTAssertTrue(e.file.hasSuffix(fileSuffix), "error names \(e.file), expected …\(fileSuffix): \(e)", file: file, line: line)
            XCTAssertEqual(e.field, field, "\(e)", file: file, line: line)
            for word in words { XCTAssertTrue(e.description.contains(word), "\(e) should mention \(word)", file: file, line: line) }
        }
    }

    /// The verdict a distributed run reaches from the parts' tallies alone.
    private func verifyTallies(_ dir: URL) throws {
        let manifest = try PartitionStore.readManifest(directory: dir)
        let parts = try (0..<manifest.parts).map { try PartitionStore.read(directory: dir, rank: $0) }
        let gathered = parts.map { PartSetTally(bytes: PartSetTally($0).bytes)! }
        XCTAssertEqual(gathered, parts.map(PartSetTally.init))
        try PartSetTally.verify(gathered, manifest: manifest, directory: dir.lastPathComponent)
    }

    func testIntactPartsPassEveryCrossCheck() throws {
        let dir = try write(.metis, seed: 2, name: "p3")
        let manifest = try PartitionStore.readManifest(directory: dir)
        XCTAssertNotNil(manifest.partitioningID)
        XCTAssertEqual(try PartitionStore.readAll(directory: dir).count, 3)
        XCTAssertNoThrow(try verifyTallies(dir))
        // The id depends on the content only: writing the same parts again gives the same one.
        let again = try write(.metis, seed: 2, name: "again")
        XCTAssertEqual(try PartitionStore.readManifest(directory: again).partitioningID, manifest.partitioningID)
        XCTAssertNotEqual(try PartitionStore.readManifest(directory: try write(.random, seed: 2, name: "other")).partitioningID,
                          manifest.partitioningID)
    }

    func testTwoPartsOwningTheSameNode() throws {
        let dir = try write(.metis, seed: 2, name: "p3")
        let part0 = try PartitionStore.read(directory: dir, rank: 0), part1 = try PartitionStore.read(directory: dir, rank: 1)
        // Part 1 claims one of part 0's nodes instead of one of its own (one it sends nowhere and that is not in its
        // halo, so part 1 alone still looks valid).
        let sent = Set(part1.sendLists.joined())
        let k = try XCTUnwrap((0..<part1.innerCount).first { !sent.contains(Int32($0)) })
        let stolen = try XCTUnwrap(part0.innerGlobalIDs.first { !part1.haloGlobalIDs.contains($0) })
        var ids = part1.innerGlobalIDs
        ids[k] = stolen
        try replacePartFileConsistently(dir, rank: 1, file: "inner_ids.i32", with: bytes(ids))
        XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: 1))

        assertRefused(.inconsistentParts, file: "p3/part-1/inner_ids.i32", field: "entry \(k)", mentioning: ["node \(stolen)", "part-0"]) {
            try PartitionStore.readAll(directory: dir)
        }
        assertRefused(.inconsistentParts, file: "p3/manifest.json", field: "owned (inner) node ids over all parts",
                      mentioning: ["owned by two parts"]) { try self.verifyTallies(dir) }
    }

    func testOutDegreeOfTwoToTheThirtyOneMinusOne() throws {
        let dir = try write(.metis, seed: 2, name: "p3")
        var out = try PartitionStore.read(directory: dir, rank: 2).degrees.outDegrees
        out[0] = Int32.max
        try replacePartFileConsistently(dir, rank: 2, file: "out_degrees.i32", with: bytes(out))
        assertRefused(.badDegree, file: "p3/part-2/out_degrees.i32", field: "degree of local node 0", mentioning: ["2147483647", "at most 600"]) {
            try PartitionStore.read(directory: dir, rank: 2)
        }
    }

    func testOutDegreeBelowTheEdgesThePartStores() throws {
        let dir = try write(.metis, seed: 2, name: "p3")
        let part = try PartitionStore.read(directory: dir, rank: 0)
        var out = part.degrees.outDegrees
        let source = Int(part.inSources[0])
        out[source] = 1
        try replacePartFileConsistently(dir, rank: 0, file: "out_degrees.i32", with: bytes(out))
        assertRefused(.badDegree, file: "p3/part-0/out_degrees.i32", field: "degree of local node \(source)", mentioning: ["is 1,", "stored in this part"]) {
            try PartitionStore.read(directory: dir, rank: 0)
        }
    }

    func testPlausibleDegreesThatDisagreeAcrossParts() throws {
        // An owned node's out-degree one higher: in range, above the part's own edges, but the edges no longer add up.
        let dir = try write(.metis, seed: 2, name: "p3")
        let part = try PartitionStore.read(directory: dir, rank: 1)
        var out = part.degrees.outDegrees
        out[0] += 1
        try replacePartFileConsistently(dir, rank: 1, file: "out_degrees.i32", with: bytes(out))
        XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: 1))
        assertRefused(.inconsistentParts, file: "p3/manifest.json", field: "out_degrees.i32 of owned nodes over all parts") {
            try PartitionStore.readAll(directory: dir)
        }

        // A halo node's degree one higher than its owner's.
        let other = try write(.metis, seed: 2, name: "q3")
        let halo = try PartitionStore.read(directory: other, rank: 2)
        XCTAssertGreaterThan(halo.haloCount, 0)
        var inDegrees = halo.degrees.inDegrees
        inDegrees[halo.innerCount] += 1
        try replacePartFileConsistently(other, rank: 2, file: "in_degrees.i32", with: bytes(inDegrees))
        XCTAssertNoThrow(try PartitionStore.read(directory: other, rank: 2))
        assertRefused(.inconsistentParts, file: "q3/manifest.json", field: "halo nodes' ids and degrees over all parts") {
            try PartitionStore.readAll(directory: other)
        }
        assertRefused(.inconsistentParts, file: "q3/manifest.json", field: "halo nodes' ids and degrees over all parts") {
            try self.verifyTallies(other)
        }
    }

    func testTrainMaskNotMatchingGlobalSplitSizes() throws {
        let dir = try write(.metis, seed: 2, name: "p3")
        let part = try PartitionStore.read(directory: dir, rank: 0)
        var train = part.split.train.map { UInt8($0 ? 1 : 0) }
        // A training node dropped from the split (adding one would put a node in two masks, which the part refuses).
        let k = try XCTUnwrap(train.firstIndex(of: 1))
        train[k] = 0
        try replacePartFileConsistently(dir, rank: 0, file: "train_mask.u8", with: Data(train))
        XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: 0))
        let expected = part.globalSplitCounts.train
        assertRefused(.inconsistentParts, file: "p3/manifest.json", field: "train_mask.u8 over all parts",
                      mentioning: ["\(expected - 1) nodes", "expected \(expected)", "global_split_sizes.train"]) {
            try PartitionStore.readAll(directory: dir)
        }
        assertRefused(.inconsistentParts, file: "p3/manifest.json", field: "train_mask.u8 over all parts") { try self.verifyTallies(dir) }
    }

    func testGlobalSplitSizesDifferingBetweenParts() throws {
        let dir = try write(.metis, seed: 2, name: "p3")
        try editMetaConsistently(dir, rank: 2) { meta in
            var sizes = meta["global_split_sizes"] as! [String: Any]
            sizes["val"] = (sizes["val"] as! Int) + 3
            meta["global_split_sizes"] = sizes
        }
        XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: 2))
        assertRefused(.inconsistentParts, file: "p3/part-2/meta.json", field: "`global_split_sizes`") {
            try PartitionStore.readAll(directory: dir)
        }
    }

    func testPartsOfTwoPartitioningsMixed() throws {
        let a = try write(.metis, seed: 2, name: "a3"), b = try write(.random, seed: 7, name: "b3")
        let idA = try XCTUnwrap(PartitionStore.readManifest(directory: a).partitioningID)
        let idB = try XCTUnwrap(PartitionStore.readManifest(directory: b).partitioningID)
        XCTAssertNotEqual(idA, idB)
        // b's part 1, with its manifest entry (so sizes and checksums match), moved into a.
        try FileManager.default.removeItem(at: a.appendingPathComponent("part-1"))
        try FileManager.default.copyItem(at: b.appendingPathComponent("part-1"), to: a.appendingPathComponent("part-1"))
        let bManifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: b.appendingPathComponent("manifest.json"))) as? [String: Any])
        try editJSON(a.appendingPathComponent("manifest.json")) { m in
            var list = m["part_list"] as! [[String: Any]]
            list[1] = (bManifest["part_list"] as! [[String: Any]])[1]
            m["part_list"] = list
        }
        XCTAssertNoThrow(try PartitionStore.read(directory: a, rank: 0))
        assertRefused(.partitioningMismatch, file: "a3/part-1/meta.json", field: "`partitioning_id`", mentioning: [idA.hex, idB.hex]) {
            try PartitionStore.read(directory: a, rank: 1)
        }
        assertRefused(.partitioningMismatch, file: "a3/part-1/meta.json", field: "`partitioning_id`") { try PartitionStore.readAll(directory: a) }

        // Without the ids (format version 1), the cross-part checks still refuse the mix.
        try editJSON(a.appendingPathComponent("manifest.json")) { $0["format_version"] = 1; $0.removeValue(forKey: "partitioning_id") }
        for r in 0..<3 {
            try editMetaConsistently(a, rank: r) { $0["format_version"] = 1; $0.removeValue(forKey: "partitioning_id") }
        }
        XCTAssertNoThrow(try PartitionStore.read(directory: a, rank: 1))
        XCTAssertThrowsError(try PartitionStore.readAll(directory: a)) { error in
            XCTAssertEqual((error as? PartitionError)?.kind, .inconsistentParts, "\(error)")
        }
    }

    func testVersionOnePartitionsWithoutAnIDStillLoad() throws {
        let dir = try write(.metis, seed: 2, name: "p3")
        let parts = try PartitionStore.readAll(directory: dir)
        try editJSON(dir.appendingPathComponent("manifest.json")) { $0["format_version"] = 1; $0.removeValue(forKey: "partitioning_id") }
        for r in 0..<3 {
            try editMetaConsistently(dir, rank: r) { $0["format_version"] = 1; $0.removeValue(forKey: "partitioning_id") }
        }
        XCTAssertNil(try PartitionStore.readManifest(directory: dir).partitioningID)
        XCTAssertEqual(try PartitionStore.readAll(directory: dir), parts)

        // Version 2 requires the id.
        try editJSON(dir.appendingPathComponent("manifest.json")) { $0["format_version"] = 2 }
        assertRefused(.missingField, file: "p3/manifest.json", field: "`partitioning_id`") { try PartitionStore.readManifest(directory: dir) }
    }
}
