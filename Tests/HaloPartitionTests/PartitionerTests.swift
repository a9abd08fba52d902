import HaloGraph
import HaloPartition
import HaloTensor
import XCTest

final class PartitionerTests: XCTestCase {
    func testEveryMethodOwnsEveryNodeOnceAndIsDeterministic() throws {
        let data = syntheticDataset()
        for method in PartitionMethod.allCases {
            let a = try Partitioner.partition(graph: data.graph, parts: 4, method: method, seed: 7)
            let b = try Partitioner.partition(graph: data.graph, parts: 4, method: method, seed: 7)
            XCTAssertEqual(a, b, "\(method) must be deterministic")
            XCTAssertEqual(a.owner.count, data.nodeCount)
            XCTAssertTrue(a.owner.allSatisfy { (0..<4).contains($0) })
            XCTAssertEqual(a.partSizes.reduce(0, +), data.nodeCount)
            XCTAssertTrue(a.partSizes.allSatisfy { $0 > 0 }, "\(method) left a part empty: \(a.partSizes)")
            let q = a.quality(of: data.graph)
            XCTAssertLessThan(q.balance, method == .contiguous ? 1.0001 : 1.15, "\(method) balance \(q.balance)")
        }
    }

    func testMetisCutsFarFewerEdgesThanRandom() throws {
        let data = syntheticDataset()
        let metis = try Partitioner.partition(graph: data.graph, parts: 4, method: .metis, seed: 1).quality(of: data.graph)
        let random = try Partitioner.partition(graph: data.graph, parts: 4, method: .random, seed: 1).quality(of: data.graph)
        // Random assignment cuts about (P−1)/P of the edges.
        XCTAssertEqual(random.cutFraction, 0.75, accuracy: 0.03)
        XCTAssertLessThan(Double(metis.cutEdges), 0.6 * Double(random.cutEdges),
                          "METIS cut \(metis.cutEdges) vs random \(random.cutEdges)")
        // Symmetric graph: each cut pair is two crossing directed edges.
        XCTAssertEqual(metis.cutDirectedEdges, 2 * metis.cutEdges)
        XCTAssertEqual(random.cutDirectedEdges, 2 * random.cutEdges)
    }

    func testRandomSeedChangesAssignment() throws {
        let data = syntheticDataset()
        let a = try Partitioner.partition(graph: data.graph, parts: 3, method: .random, seed: 1)
        let b = try Partitioner.partition(graph: data.graph, parts: 3, method: .random, seed: 2)
        XCTAssertNotEqual(a.owner, b.owner)
    }

    func testContiguousBlocks() throws {
        let graph = Graph(nodeCount: 10, sources: [0, 1], destinations: [1, 0])
        let p = try Partitioner.partition(graph: graph, parts: 3, method: .contiguous)
        XCTAssertEqual(p.owner, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    }

    func testOnePartIsEverythingInPartZero() throws {
        let data = syntheticDataset()
        for method in PartitionMethod.allCases {
            let p = try Partitioner.partition(graph: data.graph, parts: 1, method: method)
            XCTAssertEqual(p.owner, [Int32](repeating: 0, count: data.nodeCount))
            XCTAssertEqual(p.quality(of: data.graph).cutEdges, 0)
            XCTAssertEqual(p.quality(of: data.graph).balance, 1)
        }
    }

    func testInvalidPartCountsThrow() {
        let graph = Graph(nodeCount: 3, sources: [0], destinations: [1])
        XCTAssertThrowsError(try Partitioner.partition(graph: graph, parts: 0, method: .metis)) { error in
            XCTAssertEqual(error as? PartitionerError, .invalidPartCount(parts: 0, nodes: 3))
        }
        XCTAssertThrowsError(try Partitioner.partition(graph: graph, parts: 4, method: .random)) { error in
            XCTAssertEqual(error as? PartitionerError, .invalidPartCount(parts: 4, nodes: 3))
        }
    }

    func testMetisOnDirectedGraphWithIsolatedNodes() throws {
        // Two directed chains joined by one edge, plus isolated nodes: METIS sees the symmetrised graph.
        var sources: [Int32] = [], destinations: [Int32] = []
        for v in 0..<19 where v != 9 {
            sources.append(Int32(v))
            destinations.append(Int32(v + 1))
        }
        sources.append(9)
        destinations.append(10)
        let graph = Graph(nodeCount: 24, sources: sources, destinations: destinations)
        XCTAssertFalse(graph.isSymmetric)
        let p = try Partitioner.partition(graph: graph, parts: 2, method: .metis, seed: 0)
        let q = p.quality(of: graph)
        XCTAssertLessThanOrEqual(q.cutEdges, 2, "a path splits with a cut of 1 (or 2 with isolated nodes placed badly)")
        XCTAssertEqual(q.cutEdges, q.cutDirectedEdges, "no edge has its reverse")
        XCTAssertEqual(p.partSizes.reduce(0, +), 24)
    }

    func testMetisWithoutEdges() throws {
        let graph = Graph(nodeCount: 10, sources: [], destinations: [])
        let p = try Partitioner.partition(graph: graph, parts: 2, method: .metis)
        XCTAssertEqual(p.owner.count, 10)
        XCTAssertEqual(p.quality(of: graph).cutEdges, 0)
    }

    func testQualityCountsMixedDirections() {
        // 0↔1 symmetric, 1→2 one way, 3 isolated; parts {0}, {1, 2, 3}.
        let graph = Graph(nodeCount: 4, sources: [0, 1, 1], destinations: [1, 0, 2])
        let p = GraphPartitioning(partCount: 2, owner: [0, 1, 1, 1], method: .contiguous, seed: 0)
        let q = p.quality(of: graph)
        XCTAssertEqual(q.cutDirectedEdges, 2)
        XCTAssertEqual(q.cutEdges, 1)
        XCTAssertEqual(q.partSizes, [1, 3])
        XCTAssertEqual(q.balance, 1.5)
        XCTAssertEqual(q.cutFraction, 2.0 / 3.0, accuracy: 1e-12)
    }

    func testXXHash64KnownValues() {
        // Reference values from the xxHash library (XXH64, seed 0 and seed 2654435761).
        func h(_ s: [UInt8], _ seed: UInt64 = 0) -> UInt64 { XXHash64.hash(s, seed: seed) }
        XCTAssertEqual(h([]), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(h([], 2_654_435_761), 0xAC75_FDA2_929B_17EF)
        XCTAssertEqual(h(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(h(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(h(Array("abc".utf8), 2_654_435_761), 0x1318_DF30_094A_85FD)
        XCTAssertEqual(h(Array("Nobody inspects the spammish repetition".utf8)), 0xFBCE_A83C_8A37_8BF1)
        let long = (0..<3).flatMap { _ in (0..<256).map { UInt8($0) } } + Array("xyz12".utf8)
        XCTAssertEqual(h(long), 0x9B7D_50C0_4781_8B1B)
        XCTAssertEqual(h(long, 2_654_435_761), 0x83FD_F74C_4C91_87AF)
        XCTAssertEqual(XXHash64.hex(0xAB), "00000000000000ab")
    }

    func testFingerprintSeesEveryComponent() {
        let base = handMadeDataset()
        let fp = DatasetFingerprint(base)
        XCTAssertEqual(fp, DatasetFingerprint(base))
        XCTAssertEqual(DatasetFingerprint(hex: fp.hex), fp)
        var renamed = base
        renamed.name = "other"
        XCTAssertEqual(DatasetFingerprint(renamed), fp, "the name is not content")
        var edges = base
        edges.graph = Graph(nodeCount: 7, sources: [0, 1], destinations: [1, 0])
        var features = base
        features.features = .dense(Matrix(rows: 7, cols: 3, repeating: 0.5))
        var labels = base
        labels.labels = .singleLabel(classes: [1, 1, 2, 0, 1, 2, -1], classCount: 3)
        var split = base
        split.split.train[0] = false
        for (name, changed) in [("edges", edges), ("features", features), ("labels", labels), ("split", split)] {
            XCTAssertNotEqual(DatasetFingerprint(changed), fp, "changing the \(name) must change the fingerprint")
        }
    }
}
