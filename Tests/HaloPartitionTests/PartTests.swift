import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import XCTest

final class PartTests: XCTestCase {
    func testHandMadeGraphLayout() {
        let data = handMadeDataset()
        let partitioning = GraphPartitioning(partCount: 3, owner: handMadeOwner, method: .contiguous, seed: 0)
        let parts = Part.build(dataset: data, partitioning: partitioning, localityOrder: false)
        assertPartsConsistent(parts, dataset: data, partitioning: partitioning, localityOrder: false)
        assertOperatorsMatchGlobal(parts, graph: data.graph)
        // The default (locality) layout of the same parts is just as consistent.
        let ordered = Part.build(dataset: data, partitioning: partitioning)
        assertPartsConsistent(ordered, dataset: data, partitioning: partitioning)
        assertOperatorsMatchGlobal(ordered, graph: data.graph)

        // Part 0 owns {0, 1, 2}: node 1 reads only node 0 (central); 0 reads 6, 2 reads 3 (marginal).
        XCTAssertEqual(parts[0].innerGlobalIDs, [1, 0, 2])
        XCTAssertEqual(parts[0].centralCount, 1)
        XCTAssertEqual(parts[0].haloGlobalIDs, [3, 6])
        XCTAssertEqual(parts[0].haloRanges, [0..<0, 0..<1, 1..<2])
        XCTAssertEqual(parts[0].receiveRange(from: 2), 4..<5)
        // Local: 1→0, 0→1, 2→2, 3→3, 6→4. Row of node 1 reads node 0; node 0 reads 1 and 6; node 2 reads 1 and 3.
        XCTAssertEqual(parts[0].inPointers, [0, 1, 3, 5])
        XCTAssertEqual(parts[0].inSources, [1, 0, 4, 0, 3])
        XCTAssertEqual(parts[0].sendLists, [[], [2], [2]])
        XCTAssertEqual(parts[1].innerGlobalIDs, [3, 4])
        XCTAssertEqual(parts[1].centralCount, 0)
        XCTAssertEqual(parts[1].haloGlobalIDs, [2, 5])
        XCTAssertEqual(parts[1].sendLists, [[0], [], [1]])
        XCTAssertEqual(parts[2].innerGlobalIDs, [5, 6])
        XCTAssertEqual(parts[2].haloGlobalIDs, [2, 4])
        XCTAssertEqual(parts[2].sendLists, [[1], [0], []])
        // Global degrees with self loop: node 0 has in {1, 6} and out {1}.
        XCTAssertEqual(parts[0].degrees.inDegrees[1], 3)
        XCTAssertEqual(parts[0].degrees.outDegrees[1], 2)
        XCTAssertEqual(parts[0].globalSplitCounts, GlobalSplitCounts(train: 3, validation: 1, test: 2))
        XCTAssertEqual(parts[0].classCount, 3)
        XCTAssertEqual(parts[0].featureWidth, 3)
    }

    func testSyntheticPartsForEveryMethod() throws {
        let data = syntheticDataset()
        for method in PartitionMethod.allCases {
            let partitioning = try Partitioner.partition(graph: data.graph, parts: 4, method: method, seed: 5)
            let parts = Part.build(dataset: data, partitioning: partitioning)
            assertPartsConsistent(parts, dataset: data, partitioning: partitioning)
            assertOperatorsMatchGlobal(parts, graph: data.graph)
            let q = partitioning.quality(of: data.graph)
            // Every crossing edge lands in exactly one part's local CSR with a halo source.
            let haloEdges = parts.reduce(0) { sum, part in
                sum + part.inSources.lazy.filter { Int($0) >= part.innerCount }.count
            }
            XCTAssertEqual(haloEdges, q.cutDirectedEdges, "\(method)")
            XCTAssertEqual(parts.reduce(0) { $0 + $1.edgeCount }, data.graph.edgeCount)
            // On a symmetric graph what a part sends equals what the others receive from it.
            XCTAssertEqual(parts.reduce(0) { $0 + $1.sendCount }, parts.reduce(0) { $0 + $1.haloCount })
        }
    }

    func testSparseFeaturesAndDirectedGraphWithManyParts() throws {
        // A directed random graph with sparse features, 5 random parts (some nodes with no in-edges at all).
        let n = 300
        var sources: [Int32] = [], destinations: [Int32] = []
        let rng = CounterRandom(seed: 11)
        for e in 0..<900 {
            sources.append(Int32(rng.word64(.synthetic, 0, 0, UInt32(e), index: 0) % UInt64(n)))
            destinations.append(Int32(rng.word64(.synthetic, 0, 0, UInt32(e), index: 1) % UInt64(n / 2)))
        }
        let graph = Graph(nodeCount: n, sources: sources, destinations: destinations)
        var triplets: [(row: Int, col: Int, value: Float)] = []
        for v in 0..<n where v % 3 != 0 { triplets.append((v, v % 17, Float(v) / 10)) }
        let data = Dataset(
            name: "directed", graph: graph, features: .sparse(SparseMatrix(rows: n, cols: 17, triplets: triplets)),
            labels: .multiLabel(targets: (0..<(n * 4)).map { UInt8($0 % 3 == 0 ? 1 : 0) }, classCount: 4),
            split: NodeSplit(train: (0..<n).map { $0 % 2 == 0 }, validation: (0..<n).map { $0 % 4 == 1 },
                             test: (0..<n).map { $0 % 4 == 3 }))
        for method in [PartitionMethod.random, .metis] {
            let partitioning = try Partitioner.partition(graph: graph, parts: 5, method: method, seed: 3)
            let parts = Part.build(dataset: data, partitioning: partitioning)
            assertPartsConsistent(parts, dataset: data, partitioning: partitioning)
            assertOperatorsMatchGlobal(parts, graph: graph)
        }
    }

    func testOnePartIsTheWholeGraph() throws {
        let data = syntheticDataset()
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 1, method: .metis)
        let parts = Part.build(dataset: data, partitioning: partitioning, localityOrder: false)
        XCTAssertEqual(parts.count, 1)
        let part = parts[0]
        XCTAssertEqual(part.innerGlobalIDs, (0..<Int32(data.nodeCount)).map { $0 })
        XCTAssertEqual(part.centralCount, data.nodeCount)
        XCTAssertEqual(part.haloCount, 0)
        XCTAssertEqual(part.sendLists, [[]])
        XCTAssertEqual(part.inPointers, data.graph.inPointers)
        XCTAssertEqual(part.inSources, data.graph.inSources)
        XCTAssertEqual(part.features, data.features)
        for aggregation in Aggregation.allCases {
            XCTAssertEqual(part.propagationOperator(aggregation).forward, data.graph.aggregationOperator(aggregation))
        }
        // In locality order the single part is the dataset renumbered by reverse Cuthill–McKee.
        let order = data.graph.reverseCuthillMcKeeOrder()
        let ordered = Part.build(dataset: data, partitioning: partitioning)[0], renumbered = data.renumbered(order)
        XCTAssertEqual(ordered.innerGlobalIDs, order.map { Int32($0) })
        XCTAssertEqual(ordered.features, renumbered.features)
        XCTAssertEqual(ordered.propagationOperator(.gcn).forward, renumbered.graph.aggregationOperator(.gcn))
    }

    func testCoraFourMetisParts() throws {
        guard let url = sharedDataset("cora") else { throw XCTSkip("../shared/datasets/cora is absent") }
        let data = try DatasetFormat.read(directory: url)
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 4, method: .metis, seed: 0)
        let parts = Part.build(dataset: data, partitioning: partitioning)
        assertPartsConsistent(parts, dataset: data, partitioning: partitioning)
        assertOperatorsMatchGlobal(parts, graph: data.graph, width: 8)
        let metis = partitioning.quality(of: data.graph)
        let random = try Partitioner.partition(graph: data.graph, parts: 4, method: .random, seed: 0).quality(of: data.graph)
        XCTAssertLessThan(metis.cutFraction, 0.5 * random.cutFraction)
        XCTAssertLessThan(metis.balance, 1.1)
    }
}
