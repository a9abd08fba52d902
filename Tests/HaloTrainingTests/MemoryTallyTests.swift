import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor
import HaloTraining
import HaloTransport
import XCTest

/// The memory accounting: known buffers give known byte counts, shared buffers count once, and a run's report
/// carries each rank's peak by kind.
final class MemoryTallyTests: XCTestCase {
    func testSharedBuffersCountOnceAndCopiesTwice() {
        var tally = MemoryTally()
        let a = [Float](repeating: 1, count: 100)
        let alias = a
        tally.add(a, as: .activations)
        tally.add(alias, as: .inputFeatures)
        XCTAssertEqual(tally[.activations], 400)
        XCTAssertEqual(tally[.inputFeatures], 0, "the same buffer under another kind is not counted again")
        var written = a
        written[0] = 2
        tally.add(written, as: .gradients)
        XCTAssertEqual(tally[.gradients], 400, "a written copy has a buffer of its own")
        withExtendedLifetime(a) {}
        tally.add([Int32](repeating: 0, count: 10), as: .graphStructure)
        tally.add([Float](), as: .graphStructure)
        XCTAssertEqual(tally[.graphStructure], 40)
        XCTAssertEqual(tally.total, 840)
        var peak = MemoryTally()
        peak.keepMaximum(tally)
        var smaller = MemoryTally()
        smaller.add([Float](repeating: 0, count: 10), as: .activations)
        peak.keepMaximum(smaller)
        XCTAssertEqual(peak[.activations], 400)
    }

    private static let data = try! SyntheticGraphSpec(
        parsing: "synthetic:nodes=300,classes=3,features=12,degree=5,seed=3").generate()

    private func configuration() -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 8, dropout: 0.5, normalization: .layerNorm),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 2, seed: 1)
    }

    /// A GCN-2 (12 → 8 → 3, LayerNorm) on 300 nodes with dense features, counted exactly where the sizes follow
    /// from the shapes alone.
    func testAWholeGraphRunHoldsWhatItsShapesSay() throws {
        let d = Self.data
        let shard = RankShard.wholeGraph(d, aggregation: .gcn)
        let trainer = try Trainer(configuration: configuration(), shard: shard, classCount: 3, pool: .serial)
        // Two steps: before Adam's first update its two moment arrays share one buffer of zeros.
        _ = try trainer.step(epoch: 0)
        _ = try trainer.step(epoch: 1)
        let tally = trainer.memoryTally()
        // Weights and biases of both layers, LayerNorm's scale and shift.
        let parameters = (12 * 8 + 8 + 8 * 3 + 3 + 8 + 8) * 4
        XCTAssertEqual(tally[.parameters], parameters)
        XCTAssertEqual(tally[.gradients], parameters)
        XCTAssertEqual(tally[.optimizerState], 2 * parameters)
        guard case .dense = shard.features else { return XCTFail("synthetic features are dense") }
        XCTAssertEqual(tally[.inputFeatures], 300 * 12 * 4)
        let op = shard.propagation
        let csr = { (m: SparseMatrix) in m.rowPointers.count * 8 + m.nonZeroCount * 8 }
        XCTAssertEqual(tally[.graphStructure], csr(op.forward) + csr(op.backward))
        // After forward: layer 0 (12 → 8, narrowing) transforms first and keeps only its input (the features,
        // counted as such); the hidden output (300 × 8, also layer 1's input) and LayerNorm's normalised rows and
        // 300 inverse deviations.
        let normRetained = 300 * 8 * 4 + 300 * 4
        XCTAssertEqual(trainer.peakMemory[.activations], 300 * 8 * 4 + normRetained)
        // Backward released what the layers kept; only the normalisation's own buffers stay.
        XCTAssertEqual(tally[.activations], normRetained)
        XCTAssertEqual(tally[.messageBuffers], 0, "one rank sends nothing")
        for kind in MemoryTally.Kind.allCases where kind != .activations {
            XCTAssertEqual(trainer.peakMemory[kind], tally[kind], "\(kind) is held across the step")
        }
    }

    /// Equal-width hidden layers transform first and keep no aggregate: a GCN-3 (12 → 16 → 16 → 3) keeps, after
    /// forward, layer 0's 12-wide aggregate and the two hidden outputs, nothing else; after backward, nothing.
    func testEqualWidthLayersKeepOnlyTheirInputs() throws {
        let d = Self.data
        var config = configuration()
        config.model = ModelConfiguration(kind: .gcn, layers: 3, hiddenWidth: 16, dropout: 0.5)
        let trainer = try Trainer(configuration: config, shard: RankShard.wholeGraph(d, aggregation: .gcn), classCount: 3,
                              pool: ComputePool(threads: 2))
        _ = try trainer.step(epoch: 0)
        XCTAssertEqual(trainer.peakMemory[.activations], 300 * 12 * 4 + 2 * 300 * 16 * 4)
        XCTAssertEqual(trainer.memoryTally()[.activations], 0, "backward released every kept matrix")
        // Each forward serves one backward: the next step works from a fresh forward.
        XCTAssertTrue(try trainer.step(epoch: 1).isFinite)
    }

    func testTheReportCarriesEveryRanksPeakByKind() throws {
        let d = Self.data
        let parts = Part.build(dataset: d, partitioning: try Partitioner.partition(graph: d.graph, parts: 2, method: .metis, seed: 1))
        var pipelined = configuration()
        pipelined.method = .pipegcn
        let config = pipelined
        let env = RunEnvironment(ranks: 2, threadsPerRank: 1, blasCore: BLASRuntime.coreName, hostCores: 1, nodes: d.nodeCount,
                                 edges: d.graph.edgeCount, featureWidth: d.featureWidth, classes: d.classCount)
        let report = try LocalTransport.run(worldSize: 2) { transport in
            try RankTraining.run(part: parts[transport.rank], transport: transport, configuration: config,
                                 environment: env, pool: .serial)
        }[0]
        let byKind = try XCTUnwrap(report.memoryBytesByKind)
        XCTAssertEqual(Set(byKind.keys), Set(MemoryTally.Kind.allCases.map(\.rawValue)))
        for (kind, perRank) in byKind { XCTAssertEqual(perRank.count, 2, kind) }
        XCTAssertTrue(byKind["message_buffers"]!.allSatisfy { $0 > 0 }, "pipelined caches are held between epochs")
        XCTAssertEqual(byKind["parameters"]![0], byKind["parameters"]![1], "every rank holds the same model")
    }
}
