import Foundation
import HaloGraph
import HaloNN
import HaloPartition
@testable import HaloTraining
import HaloTransport
import XCTest

/// AdaQP's assignment state in a checkpoint: what it takes back, and what a forged file may not smuggle into the
/// solver (found by CheckpointFuzzTests: a site's row width of 2⁴⁰ overflowed the solver's byte counts).
final class AdaptivePrecisionStateTests: XCTestCase {
    private static let data = try! SyntheticGraphSpec(
        parsing: "synthetic:nodes=200,classes=3,features=6,degree=5,seed=4").generate()

    private static let configuration = TrainingConfiguration(
        dataset: "state", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 8, dropout: 0),
        optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 4, seed: 1, method: .adaqp,
        quantization: QuantizationSettings(assignCycle: 2))

    private static let site = MessageSite(layer: LayerIndex(1), direction: .forward)

    /// Each rank's state after one traced message per peer at `site`, `width` wide.
    private func savedStates(width: Int) throws -> [[UInt8]] {
        let parts = Part.build(dataset: Self.data, partitioning: try Partitioner.partition(
            graph: Self.data.graph, parts: 2, method: .metis, seed: 1))
        return try LocalTransport.run(worldSize: 2) { transport in
            let part = parts[transport.rank]
            let policy = try AdaptivePrecision(part: part, transport: transport, configuration: Self.configuration)
            let peer = 1 - transport.rank
            policy.didEncode(Self.site, to: peer, ranges: Array(repeating: 0.5, count: part.sendLists[peer].count), width: width)
            var writer = ByteWriter()
            try policy.saveState(into: &writer)
            return writer.bytes
        }
    }

    /// The byte offset of `site`'s width word in a saved state (links and cycles first, then the site count).
    private func widthOffset(in state: [UInt8]) throws -> Int {
        var reader = ByteReader(state)
        _ = try reader.readElements(of: UInt8.self)
        _ = try reader.readElements(of: UInt8.self)
        let sites: Int = try reader.read()
        XCTAssertEqual(sites, 1)
        XCTAssertEqual(try MessageSite(from: &reader), Self.site)
        return state.count - reader.remaining
    }

    private func restore(_ states: [[UInt8]]) throws {
        let parts = Part.build(dataset: Self.data, partitioning: try Partitioner.partition(
            graph: Self.data.graph, parts: 2, method: .metis, seed: 1))
        _ = try LocalTransport.run(worldSize: 2) { transport in
            let policy = try AdaptivePrecision(part: parts[transport.rank], transport: transport, configuration: Self.configuration)
            var reader = ByteReader(states[transport.rank])
            try policy.restoreState(from: &reader)
            // The restored state must be usable by the next cycle (collective: both ranks reassign).
            try policy.beginEpoch(2)
        }
    }

    func testAStateOfTheModelsWidthsIsTakenBack() throws {
        try restore(try savedStates(width: 8))
    }

    func testForgedRowWidthsAreRefusedBeforeTheSolverSeesThem() throws {
        let states = try savedStates(width: 8)
        for forged in [0, -1, 9, 1 << 40, Int.max] {
            var bad = states
            let at = try widthOffset(in: bad[1])
            withUnsafeBytes(of: Int64(forged).littleEndian) { for (i, b) in $0.enumerated() { bad[1][at + i] = b } }
            XCTAssertThrowsError(try restore(bad), "width \(forged)") { error in
                XCTAssertTrue(String(describing: error).contains("row width \(forged)"), "\(error)")
            }
        }
    }
}
