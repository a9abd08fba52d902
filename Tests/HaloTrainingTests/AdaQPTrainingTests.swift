import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloQuantization
import HaloTensor
@testable import HaloTraining
import HaloTransport
import XCTest

/// AdaQP's modes on ranks as threads: what they send, that senders and receivers agree on every row's width (a
/// disagreement fails decoding), and that the model still learns.
final class AdaQPTrainingTests: XCTestCase {
    private static let data = try! SyntheticGraphSpec(
        parsing: "synthetic:nodes=1200,classes=4,features=24,degree=8,signal=1,seed=6").generate()

    private func configuration(_ method: TrainingMethod, _ assignment: AssignmentScheme = .adaptive, epochs: Int = 12,
                               cycle: Int = 4, precompute: Bool = false) -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 3, hiddenWidth: 32, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: epochs, seed: 9, method: method,
            quantization: QuantizationSettings(assignment: assignment, assignCycle: cycle, groupSize: 16, lambda: 0.5,
                                               precomputeFirstLayer: precompute))
    }

    private func run(_ config: TrainingConfiguration, parts: Int = 3) throws -> (reports: [TrainingReport], parts: [Part]) {
        let data = Self.data
        let partitioning = try Partitioner.partition(graph: data.graph, parts: parts, method: .metis, seed: 1)
        let built = Part.build(dataset: data, partitioning: partitioning)
        let env = RunEnvironment(ranks: parts, threadsPerRank: 1, blasCore: "", hostCores: 1, nodes: data.nodeCount,
                                 edges: data.graph.edgeCount, featureWidth: data.featureWidth, classes: data.classCount)
        let reports = try LocalTransport.run(worldSize: parts) { t in
            try RankTraining.run(part: built[t.rank], transport: t, configuration: config, environment: env, pool: .serial)
        }
        return (reports, built)
    }

    /// Halo bytes of one training step when every row travels at `bits`, from the parts' message sizes: the
    /// rows, and one header per message (every rank sends every other rank one message per site).
    private func expectedHaloBytes(_ parts: [Part], bits: BitWidth, forwardWidths: [Int], backwardWidths: [Int]) -> Int {
        let rows = parts.reduce(0) { $0 + $1.sendCount }
        let messagesPerSite = parts.count * (parts.count - 1)
        let header = messagesPerSite * MessageHeader(rows: 0, bits: .uniform(bits)).byteCount
        let forward = forwardWidths.reduce(0) { $0 + rows * RowQuantizer.encodedSize(width: $1, bits: bits) + header }
        let backward = backwardWidths.reduce(0) { $0 + rows * RowQuantizer.encodedSize(width: $1, bits: bits) + header }
        return forward + backward
    }

    func testOverlapAloneChangesNothingButTheSchedule() throws {
        let vanilla = try run(configuration(.vanilla)).reports[0]
        let overlapped = try run(configuration(.adaqpOverlapOnly)).reports[0]
        XCTAssertEqual(overlapped.epochs.map(\.loss), vanilla.epochs.map(\.loss))
        XCTAssertEqual(overlapped.haloBytesPerEpoch, vanilla.haloBytesPerEpoch)
        XCTAssertNotNil(overlapped.epochs[0].hiddenCommunicationFraction)
    }

    func testUniformWidthsSendExactlyTheFormatsBytes() throws {
        // 24 → 32 → 32 → 4: layer 0 aggregates first (24 < 32) and, as the first layer, sends no gradient back;
        // layer 1 aggregates first (32 = 32); layer 2 transforms first (32 → 4).
        for bits in [BitWidth.two, .four, .eight] {
            let (reports, parts) = try run(configuration(.adaqpQuantizationOnly, .uniform(bits), epochs: 2))
            let expected = expectedHaloBytes(parts, bits: bits, forwardWidths: [24, 32, 4], backwardWidths: [32, 4])
            XCTAssertEqual(reports[0].epochs[1].forwardBytesSent + reports[0].epochs[1].backwardBytesSent, expected, "\(bits)")
        }
        let (vanilla, parts) = try run(configuration(.vanilla, epochs: 2))
        XCTAssertEqual(Int(vanilla[0].haloBytesPerEpoch),
                       expectedHaloBytes(parts, bits: .full, forwardWidths: [24, 32, 4], backwardWidths: [32, 4]))
    }

    func testAdaptiveAssignmentAgreesAcrossRanksAndLearns() throws {
        let (reports, parts) = try run(configuration(.adaqp, epochs: 30, cycle: 5))
        let cycles = try XCTUnwrap(reports[0].assignmentCycles)
        XCTAssertEqual(cycles.map(\.epoch), [5, 10, 15, 20, 25])
        for r in reports {
            // Solve times differ; the decisions may not.
            XCTAssertTrue(r.assignmentCycles?.map(\.sites) == cycles.map(\.sites), "every rank solves the same problem")
        }
        let sites = cycles[0].sites.map(\.site)
        XCTAssertEqual(sites.count, 5, "forward of 3 layers, backward of layers 1 and 2: \(sites)")
        let boundaryRows = parts.reduce(0) { $0 + $1.sendCount }
        for site in cycles[0].sites {
            XCTAssertEqual(site.rowsByBits.values.reduce(0, +), boundaryRows, "every row of \(site.site) gets a width")
        }
        let test = try XCTUnwrap(reports[0].testAccuracyAtBestValidation)
        XCTAssertGreaterThan(test, 0.8)
        XCTAssertNotNil(reports[0].linkProbeSeconds)
    }

    func testRandomAssignmentAgreesAcrossRanks() throws {
        // A sender and receiver that disagreed on a row's width would fail to decode the message.
        let (reports, _) = try run(configuration(.adaqp, .random, epochs: 8, cycle: 3))
        XCTAssertTrue(reports[0].epochs.allSatisfy { $0.loss.isFinite })
        let vanillaBytes = try run(configuration(.vanilla, epochs: 2)).reports[0].haloBytesPerEpoch
        XCTAssertLessThan(reports[0].haloBytesPerEpoch, vanillaBytes / 3)
    }

    func testPrecomputedFirstLayerSendsNothingThereAndMatchesOneProcess() throws {
        let config = configuration(.vanilla, epochs: 8, precompute: true)
        let (reports, parts) = try run(config)
        // Layer 0 neither sends rows nor gradients: only layers 1 and 2 remain.
        XCTAssertEqual(Int(reports[0].haloBytesPerEpoch),
                       expectedHaloBytes(parts, bits: .full, forwardWidths: [32, 4], backwardWidths: [32, 4]))
        let single = try Trainer(configuration: config, shard: .wholeGraph(Self.data, aggregation: .gcn),
                             classCount: Self.data.classCount, pool: .serial)
        try single.precomputeFirstAggregation()
        let reference = try single.train(environment: reports[0].environment)
        for (a, b) in zip(reference.epochs, reports[0].epochs) {
            XCTAssertEqual(b.loss, a.loss, accuracy: 1e-4 * max(1, a.loss))
        }
    }
}
