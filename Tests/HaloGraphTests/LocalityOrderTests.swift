import HaloGraph
import HaloTensor
import HaloTestSupport
import XCTest

final class LocalityOrderTests: XCTestCase {
    /// Largest |i − j| over edges (i, j): the bandwidth of the adjacency matrix in this numbering.
    private func bandwidth(_ g: Graph) -> Int {
        var widest = 0
        for v in 0..<g.nodeCount {
            for u in g.inNeighbors(v) { widest = max(widest, abs(Int(u) - v)) }
        }
        return widest
    }

    /// A 30 × 30 grid whose node ids are shuffled: reverse Cuthill–McKee must bring the bandwidth back near the
    /// grid's natural 30.
    func testShuffledGridGetsANarrowBand() {
        var rng = TestRNG(seed: 61)
        let side = 30, n = side * side
        let label = Array((0..<n).shuffled(using: &rng))
        var sources = [Int32](), destinations = [Int32]()
        for r in 0..<side {
            for c in 0..<side {
                let v = r * side + c
                for u in [c + 1 < side ? v + 1 : -1, r + 1 < side ? v + side : -1] where u >= 0 {
                    sources += [Int32(label[v]), Int32(label[u])]
                    destinations += [Int32(label[u]), Int32(label[v])]
                }
            }
        }
        let shuffled = Graph(nodeCount: n, sources: sources, destinations: destinations)
        XCTAssertGreaterThan(bandwidth(shuffled), n / 2)
        let order = shuffled.reverseCuthillMcKeeOrder()
        XCTAssertEqual(order.sorted(), Array(0..<n), "an order is a permutation")
        let ordered = shuffled.renumbered(order)
        XCTAssertLessThanOrEqual(bandwidth(ordered), 2 * side)
        XCTAssertEqual(ordered.edgeCount, shuffled.edgeCount)
        XCTAssertEqual(order, shuffled.reverseCuthillMcKeeOrder(), "deterministic")
    }

    /// Renumbering keeps every edge (under the new names), covers isolated nodes and directed edges, and carries
    /// features, labels and masks along with their nodes.
    func testRenumberedDatasetKeepsEveryNodeWithItsData() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=300,classes=3,features=5,degree=4,seed=4").generate()
        // Add an isolated node's worth of variety: a directed graph with a node that has no edges at all.
        let directed = Graph(nodeCount: 6, sources: [0, 1, 3], destinations: [1, 2, 4])
        for graph in [data.graph, directed] {
            let order = graph.reverseCuthillMcKeeOrder()
            XCTAssertEqual(order.sorted(), Array(0..<graph.nodeCount))
            var newIndex = [Int](repeating: 0, count: order.count)
            for (i, v) in order.enumerated() { newIndex[v] = i }
            let renamed = graph.renumbered(order)
            for v in 0..<graph.nodeCount {
                let expected = graph.inNeighbors(v).map { newIndex[Int($0)] }.sorted()
                XCTAssertEqual(renamed.inNeighbors(newIndex[v]).map { Int($0) }, expected, "in-neighbours of node \(v)")
            }
        }
        let order = data.graph.reverseCuthillMcKeeOrder()
        let renamed = data.renumbered(order)
        let features = data.features.denseMatrix(), renamedFeatures = renamed.features.denseMatrix()
        for (i, v) in order.enumerated() {
            XCTAssertEqual(renamedFeatures.row(i), features.row(v))
            XCTAssertEqual(renamed.split.train[i], data.split.train[v])
            XCTAssertEqual(renamed.split.test[i], data.split.test[v])
        }
        XCTAssertEqual(renamed.labels.selectingRows(Array(0..<renamed.nodeCount)), data.labels.selectingRows(order))
    }
}
