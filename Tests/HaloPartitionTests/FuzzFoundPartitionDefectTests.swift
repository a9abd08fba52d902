import Foundation
import HaloGraph
import HaloPartition
import XCTest

/// Forged partition directories the directory fuzzer (`DirectoryFuzzTests`) found accepted or crashing before the
/// readers were fixed, each rebuilt by hand on a small synthetic partition so it does not depend on the fuzzer's
/// corpus. The comment of each test names the fuzz case that found it (a case number replays with the fuzzer as of
/// the commit that added the test), or the review of what the fuzzer's mutations can reach.
final class FuzzFoundPartitionDefectTests: XCTestCase {
    private let spec = "synthetic:nodes=600,classes=4,features=6,degree=8,seed=9"

    private func write(parts: Int = 3, name: String = "p3") throws -> URL {
        let data = syntheticDataset(spec)
        let partitioning = try Partitioner.partition(graph: data.graph, parts: parts, method: .metis, seed: 2)
        let dir = try temporaryDirectory(self).appendingPathComponent(name)
        try PartitionStore.write(dataset: data, partitioning: partitioning, to: dir)
        return dir
    }

    private func bytes<T: BitwiseCopyable>(_ array: [T]) -> Data { array.withUnsafeBytes { Data($0) } }

    /// Both ways a partition directory is loaded: `readAll`, and the tallies a distributed run gathers.
    private func assertRefusedByEveryReader(
        _ dir: URL, kind: PartitionError.Kind, fileSuffix: String, field: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        func check(_ error: any Error) {
            guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)", file: file, line: line) }
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            XCTAssertTrue(e.file.hasSuffix(fileSuffix), "error names \(e.file), expected …\(fileSuffix): \(e)", file: file, line: line)
            XCTAssertEqual(e.field, field, "\(e)", file: file, line: line)
        }
        XCTAssertThrowsError(try PartitionStore.readAll(directory: dir), file: file, line: line, check)
        XCTAssertThrowsError(try {
            let manifest = try PartitionStore.readManifest(directory: dir)
            let parts = try (0..<manifest.parts).map { try PartitionStore.read(directory: dir, rank: $0) }
            try PartSetTally.verify(parts.map { PartSetTally(bytes: PartSetTally($0).bytes)! }, manifest: manifest,
                                    directory: dir.lastPathComponent)
        }(), file: file, line: line, check)
    }

    /// Seed 20261207, case 374 (2 parts of Cora): one in-edge's source moved to the next owned node (1334 → 1335),
    /// checksums recomputed. The row stays sorted, every count and the total of owned out-degrees still add up, but
    /// the two nodes' out-degrees no longer count their edges: loaded, and trained with wrong normalisation.
    func testEdgeSourceMovedToAnotherOwnedNode() throws {
        let dir = try write()
        let part = try PartitionStore.read(directory: dir, rank: 0)
        var storedOut = [Int32](repeating: 1, count: part.innerCount + part.haloCount)
        for s in part.inSources { storedOut[Int(s)] += 1 }
        // An edge whose source can become the next inner node without breaking any per-part check: the row stays
        // strictly increasing, is not the node's own, and the new source's out-degree has room for one more edge.
        let found = (0..<part.innerCount).lazy.flatMap { row in
            (part.inPointers[row]..<part.inPointers[row + 1]).lazy.map { (row, $0) }
        }.first { row, e in
            let s = Int(part.inSources[e]), moved = s + 1
            let next = e + 1 < part.inPointers[row + 1] ? Int(part.inSources[e + 1]) : Int.max
            return moved < part.innerCount && moved != row && moved < next
                && part.degrees.outDegrees[moved] > storedOut[moved]
        }
        let (row, e) = try XCTUnwrap(found, "no edge of part 0 can be moved unnoticed by the per-part checks")
        var sources = part.inSources
        sources[e] += 1
        try replacePartFileConsistently(dir, rank: 0, file: "in_indices.i32", with: bytes(sources))
        XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: 0), "row \(row): the part alone still looks valid")
        assertRefusedByEveryReader(dir, kind: .inconsistentParts, fileSuffix: "p3/manifest.json",
                                   field: "out_degrees.i32 of owned nodes over all parts")
    }

    /// Seed 1, case 2372 (2 parts of the multi-label dataset): part-1/meta.json `central` set to −2^63, checksums
    /// recomputed. Comparing the part's marginal count (inner − central) with the manifest's overflowed: a trap.
    func testCountsWhoseDifferenceOverflows() throws {
        for (key, value) in [("central", Int.min), ("inner", Int.min)] {
            let dir = try write(name: "p3-\(key)")
            let url = dir.appendingPathComponent("part-1/meta.json")
            try editJSON(url) { $0[key] = value }
            try replacePartFileConsistently(dir, rank: 1, file: "meta.json", with: Data(contentsOf: url))
            XCTAssertThrowsError(try PartitionStore.read(directory: dir, rank: 1), "\(key) = \(value)") { error in
                guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)") }
                XCTAssertEqual(e.kind, .manifestMismatch, "\(e)")
                XCTAssertEqual(e.file, "p3-\(key)/part-1/meta.json", "\(e)")
                XCTAssertEqual(e.field, "`\(key)`", "\(e)")
            }
        }
    }

    /// Found in review of the fuzzer's coordinated edits: `dataset.nodes` in the manifest and `total_nodes` in every
    /// part's meta.json set to 2^31−1 (checksums recomputed). Each part read allocated a 2 GB map of the nodes, and
    /// `readAll` an 8 GB ownership array, before the parts' owned nodes (600 in all) could refute the count.
    func testNodeCountOfTwoToTheThirtyOneMinusOneInEveryFile() throws {
        let dir = try write()
        try editJSON(dir.appendingPathComponent("manifest.json")) { m in
            var dataset = m["dataset"] as! [String: Any]
            dataset["nodes"] = Int(Int32.max)
            m["dataset"] = dataset
        }
        for rank in 0..<3 {
            let url = dir.appendingPathComponent("part-\(rank)/meta.json")
            try editJSON(url) { $0["total_nodes"] = Int(Int32.max) }
            try replacePartFileConsistently(dir, rank: rank, file: "meta.json", with: Data(contentsOf: url))
        }
        let start = Date()
        assertRefusedByEveryReader(dir, kind: .inconsistentParts, fileSuffix: "p3/manifest.json", field: "owned (inner) nodes over all parts")
        // Refused from the parts' own sizes: milliseconds, where touching 2^31 entries takes seconds.
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
    }

    /// Found in review of the fuzzer's label edits (−1 is one of its values): a masked inner node's label set to −1
    /// (checksums recomputed). Labels may be −1 and the masks'
    /// totals still matched, so the part loaded, and training trapped in the loss on class −1.
    func testMaskedNodeWithoutALabel() throws {
        let dir = try write()
        let part = try PartitionStore.read(directory: dir, rank: 1)
        guard case .singleLabel(var classes, _) = part.labels else { return XCTFail("the synthetic dataset is single-label") }
        let i = try XCTUnwrap(part.split.train.firstIndex(of: true))
        classes[i] = -1
        try replacePartFileConsistently(dir, rank: 1, file: "labels.i32", with: bytes(classes))
        XCTAssertThrowsError(try PartitionStore.read(directory: dir, rank: 1)) { error in
            guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)") }
            XCTAssertEqual(e.kind, .maskedUnlabelled, "\(e)")
            XCTAssertEqual(e.file, "p3/part-1/train_mask.u8", "\(e)")
            XCTAssertEqual(e.field, "inner node \(i) (node \(part.innerGlobalIDs[i]))", "\(e)")
        }
    }

    /// Found in review of the fuzzer's element swaps: a training node's bit swapped into a validation node's entry
    /// of train_mask.u8 (checksums recomputed). The masks' totals are unchanged, so the part loaded with a node in two splits.
    func testNodeInTwoMasks() throws {
        let dir = try write()
        let part = try PartitionStore.read(directory: dir, rank: 2)
        let a = try XCTUnwrap(part.split.train.firstIndex(of: true)), b = try XCTUnwrap(part.split.validation.firstIndex(of: true))
        var train = part.split.train
        train.swapAt(a, b)
        try replacePartFileConsistently(dir, rank: 2, file: "train_mask.u8", with: bytes(train.map { UInt8($0 ? 1 : 0) }))
        XCTAssertThrowsError(try PartitionStore.read(directory: dir, rank: 2)) { error in
            guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)") }
            XCTAssertEqual(e.kind, .masksOverlap, "\(e)")
            XCTAssertEqual(e.file, "p3/part-2/val_mask.u8", "\(e)")
            XCTAssertTrue(e.description.contains("in both the train and val masks"), "\(e)")
        }
    }

    /// Found in review of what the fuzzer's element swaps can reach with three parts: two rows exchanged between the
    /// send lists of two peers (send_indices.i32, checksums recomputed). Both lists stay ascending and the rows sent
    /// over all parts are the same multiset, so the order-free degree hash agreed; yet each peer would receive, in
    /// place of a halo node's row, the row of a node it does not have, and train on it silently.
    func testRowsExchangedBetweenTwoPeersSendLists() throws {
        let dir = try write()
        let part = try PartitionStore.read(directory: dir, rank: 0)
        let ids = part.innerGlobalIDs
        let toOne = part.sendLists[1], toTwo = part.sendLists[2]
        // Neighbours in id order, one sent only to peer 1 and the other only to peer 2: exchanging them keeps both
        // lists ascending.
        let merged = (toOne.map { (ids[Int($0)], 1) } + toTwo.map { (ids[Int($0)], 2) }).sorted { $0.0 < $1.0 }
        let shared = Set(toOne).intersection(toTwo).map { ids[Int($0)] }
        let pair = zip(merged, merged.dropFirst()).first { a, b in
            a.1 != b.1 && a.0 != b.0 && !shared.contains(a.0) && !shared.contains(b.0)
        }
        let (a, b) = try XCTUnwrap(pair, "no two rows of part 0 can be exchanged between its send lists")
        func row(_ id: Int32) -> Int32 { Int32(ids.firstIndex(of: id)!) }
        var lists = part.sendLists
        for q in [1, 2] {
            lists[q] = lists[q].map { $0 == row(a.0) ? row(b.0) : $0 == row(b.0) ? row(a.0) : $0 }
        }
        try replacePartFileConsistently(dir, rank: 0, file: "send_indices.i32", with: bytes(lists.flatMap { $0 }))
        XCTAssertNoThrow(try PartitionStore.read(directory: dir, rank: 0), "the part alone still looks valid")
        assertRefusedByEveryReader(dir, kind: .inconsistentParts, fileSuffix: "p3/manifest.json",
                                   field: "halo nodes' ids and degrees over all parts")
    }

    /// Seed 22, case 391 of the command-line sample (`FuzzedDirectoryCommandTests`): `inner` set to 2^63−1 in the
    /// manifest and in every part's meta.json (checksums recomputed). `halo train --partitions` sums the manifest's
    /// counts for its memory estimate before reading any part, and trapped on the overflow; the manifest's counts
    /// are now held to the ranges a part's meta.json allows.
    func testManifestCountsOfTwoToTheSixtyThreeMinusOne() throws {
        let dir = try write()
        try editJSON(dir.appendingPathComponent("manifest.json")) { m in
            var list = m["part_list"] as! [[String: Any]]
            for r in list.indices { list[r]["inner"] = Int.max }
            m["part_list"] = list
        }
        for rank in 0..<3 {
            let url = dir.appendingPathComponent("part-\(rank)/meta.json")
            try editJSON(url) { $0["inner"] = Int.max }
            try replacePartFileConsistently(dir, rank: rank, file: "meta.json", with: Data(contentsOf: url))
        }
        XCTAssertThrowsError(try PartitionStore.readManifest(directory: dir)) { error in
            guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)") }
            XCTAssertEqual(e.kind, .badField, "\(e)")
            XCTAssertEqual(e.file, "p3/manifest.json", "\(e)")
            XCTAssertEqual(e.field, "`part_list[0].inner`", "\(e)")
        }
    }

    /// Seed 52, case 121 of the command-line sample: `global_split_sizes.train` = −1 in every part's meta.json
    /// (checksums recomputed). Each part loaded, and encoding its tally for the other ranks (`PartSetTally.bytes`)
    /// trapped on the negative count before the totals could be compared.
    func testNegativeGlobalSplitSize() throws {
        let dir = try write()
        for rank in 0..<3 {
            let url = dir.appendingPathComponent("part-\(rank)/meta.json")
            try editJSON(url) { meta in
                var sizes = meta["global_split_sizes"] as! [String: Any]
                sizes["train"] = -1
                meta["global_split_sizes"] = sizes
            }
            try replacePartFileConsistently(dir, rank: rank, file: "meta.json", with: Data(contentsOf: url))
        }
        XCTAssertThrowsError(try PartitionStore.read(directory: dir, rank: 0)) { error in
            guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)") }
            XCTAssertEqual(e.kind, .badField, "\(e)")
            XCTAssertEqual(e.file, "p3/part-0/meta.json", "\(e)")
            XCTAssertEqual(e.field, "`global_split_sizes.train`", "\(e)")
        }
    }

    /// Seed 61, case 18: part-0/meta.json `files` = [] (checksums recomputed) was refused as "`files` is , expected
    /// …": an error with nothing where the value found should be.
    func testEmptyFileListIsNamedInTheError() throws {
        let dir = try write()
        let url = dir.appendingPathComponent("part-0/meta.json")
        try editJSON(url) { $0["files"] = [String]() }
        try replacePartFileConsistently(dir, rank: 0, file: "meta.json", with: Data(contentsOf: url))
        XCTAssertThrowsError(try PartitionStore.read(directory: dir, rank: 0)) { error in
            guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)") }
            XCTAssertEqual(e.kind, .fileListMismatch, "\(e)")
            XCTAssertEqual(e.found, "empty", "\(e)")
        }
    }

    /// Found in review of what the command line computes from a manifest before reading a part: a file's byte size
    /// of 2^63−1 in the manifest (one JSON edit) passed the manifest's checks, and `halo train --partitions` summed
    /// the sizes of a part's feature files for its memory estimate, which overflowed with sparse features.
    func testFileSizeOfTwoToTheSixtyThreeMinusOneInTheManifest() throws {
        let dir = try write()
        try editJSON(dir.appendingPathComponent("manifest.json")) { m in
            var list = m["part_list"] as! [[String: Any]]
            var files = list[1]["files"] as! [[String: Any]]
            files[0]["bytes"] = Int.max
            list[1]["files"] = files
            m["part_list"] = list
        }
        XCTAssertThrowsError(try PartitionStore.readManifest(directory: dir)) { error in
            guard let e = error as? PartitionError else { return XCTFail("expected a PartitionError, got \(error)") }
            XCTAssertEqual(e.kind, .badField, "\(e)")
            XCTAssertEqual(e.file, "p3/manifest.json", "\(e)")
            XCTAssertTrue(e.field.hasPrefix("`part_list[1].files."), "\(e)")
        }
    }
}
