import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor
@testable import HaloTraining
import HaloTransport
import XCTest

/// The invariant every distributed method is built on: vanilla distributed training computes the same model as
/// one process. Ranks differ from the single process only in the order floating-point sums are taken (local
/// column numbering, all-reduce of per-rank partial gradients), so losses agree to within float rounding.
final class DistributedEquivalenceTests: XCTestCase {
    /// Relative tolerance on the per-epoch loss; float32 summation order alone moves it by ~1e-6 per epoch.
    static let lossTolerance = 1e-4

    private func configuration(_ kind: ModelConfiguration.Kind, epochs: Int, layers: Int = 2) -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "test",
            model: ModelConfiguration(kind: kind, layers: layers, hiddenWidth: 24, dropout: 0.5, inputDropout: 0.2),
            optimizer: Adam.Hyperparameters(learningRate: 0.01, weightDecay: 5e-4), epochs: epochs, seed: 11)
    }

    private func environment(_ d: Dataset, ranks: Int) -> RunEnvironment {
        RunEnvironment(ranks: ranks, threadsPerRank: 1, blasCore: BLASRuntime.coreName, hostCores: 1, nodes: d.nodeCount,
                       edges: d.graph.edgeCount, featureWidth: d.featureWidth, classes: d.classCount)
    }

    private func singleProcess(_ data: Dataset, _ config: TrainingConfiguration) throws -> TrainingReport {
        try Trainer(configuration: config, shard: .wholeGraph(data, aggregation: config.model.kind.aggregation),
                    classCount: data.classCount, pool: .serial)
            .train(environment: environment(data, ranks: 1))
    }

    private func distributed(_ data: Dataset, _ config: TrainingConfiguration, parts: Int,
                             method: PartitionMethod) throws -> [TrainingReport] {
        let partitioning = try Partitioner.partition(graph: data.graph, parts: parts, method: method, seed: 1)
        let allParts = Part.build(dataset: data, partitioning: partitioning)
        let env = environment(data, ranks: parts)
        return try LocalTransport.run(worldSize: parts) { transport in
            try RankTraining.run(part: allParts[transport.rank], transport: transport, configuration: config,
                                 environment: env, pool: .serial)
        }
    }

    private func assertSameRun(_ reference: TrainingReport, _ reports: [TrainingReport], _ label: String) {
        for (rank, report) in reports.enumerated() {
            XCTAssertEqual(report.epochs.count, reference.epochs.count)
            for (a, b) in zip(reference.epochs, report.epochs) {
                XCTAssertEqual(b.loss, a.loss, accuracy: Self.lossTolerance * max(1, abs(a.loss)),
                               "\(label) rank \(rank) epoch \(a.epoch) loss")
                // Accuracies are counts over hundreds of nodes: a rounding-level logit change can flip at most
                // a prediction sitting exactly on a decision boundary.
                for (x, y) in [(a.trainAccuracy, b.trainAccuracy), (a.validationAccuracy, b.validationAccuracy),
                               (a.testAccuracy, b.testAccuracy)] {
                    XCTAssertEqual(y ?? -1, x ?? -1, accuracy: 0.003, "\(label) rank \(rank) epoch \(a.epoch) accuracy")
                }
            }
            // Every rank reports the same global numbers.
            XCTAssertEqual(report.epochs.map(\.loss), reports[0].epochs.map(\.loss), "\(label): ranks disagree")
        }
    }

    func testVanillaEqualsSingleProcessOnSyntheticGraph() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=1200,classes=5,features=20,degree=8,signal=1,seed=4").generate()
        for kind in ModelConfiguration.Kind.allCases {
            let config = configuration(kind, epochs: 30, layers: 3)
            let reference = try singleProcess(data, config)
            for parts in [1, 2, 4] {
                assertSameRun(reference, try distributed(data, config, parts: parts, method: .metis), "\(kind) P=\(parts) metis")
            }
            assertSameRun(reference, try distributed(data, config, parts: 3, method: .random), "\(kind) P=3 random")
        }
    }

    func testVanillaEqualsSingleProcessOnCora() throws {
        let cora = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/datasets/cora")
        guard FileManager.default.fileExists(atPath: cora.path) else { throw XCTSkip("no ../shared/datasets/cora") }
        var data = try DatasetFormat.read(directory: cora)
        data.features = data.features.rowNormalized()
        let config = configuration(.gcn, epochs: 50)
        let reference = try singleProcess(data, config)
        for parts in [2, 4] {
            assertSameRun(reference, try distributed(data, config, parts: parts, method: .metis), "cora P=\(parts)")
        }
    }

    /// Parts of very different feature density: one dense enough for GEMM on its own, one sparse enough for CSR.
    /// Ranks choose the first layer's representation from all parts together, so they agree, and the run is the
    /// single process's (a dense rank aggregates first, a sparse one transforms first: mixed, they would exchange
    /// rows of different widths).
    func testRanksAgreeOnFeatureRepresentationWhenPartsDiffer() throws {
        var data = try SyntheticGraphSpec(parsing: "synthetic:nodes=800,classes=4,features=20,degree=8,signal=1,seed=9").generate()
        guard case .dense(let x) = data.features else { throw XCTSkip("synthetic features are dense") }
        // Rows of the first half keep their positive entries (~50%), the second half only those above 1.6 (~5%).
        var triplets: [(row: Int, col: Int, value: Float)] = []
        for i in 0..<x.rows {
            for j in 0..<x.cols where x[i, j] > (i < x.rows / 2 ? 0 : 1.6) { triplets.append((i, j, x[i, j])) }
        }
        let sparse = SparseMatrix(rows: x.rows, cols: x.cols, triplets: triplets)
        data.features = .sparse(sparse)
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 2, method: .contiguous, seed: 1)
        let parts = Part.build(dataset: data, partitioning: partitioning)
        let local = parts.map { FeatureStatistics($0.features).representation(inputDropout: true) }
        XCTAssertEqual(local, [.dense, .csr], "the parts alone would choose differently")
        let global = FeatureStatistics.combining(parts.map { FeatureStatistics($0.features) })
        XCTAssertEqual(global.representation(inputDropout: true), FeatureStatistics(data.features).representation(inputDropout: true))

        let config = configuration(.gcn, epochs: 10)
        let reference = try singleProcess(data, config)
        let env = environment(data, ranks: 2)
        let reports = try LocalTransport.run(worldSize: 2) { transport in
            try RankTraining.run(part: parts[transport.rank], transport: transport, configuration: config,
                                 environment: env, pool: .serial)
        }
        assertSameRun(reference, reports, "mixed-density parts")
    }

    func testHaloTrafficIsCountedExactly() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=600,classes=3,features=8,degree=6,seed=2").generate()
        let config = configuration(.gcn, epochs: 2)
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 3, method: .random, seed: 1)
        let parts = Part.build(dataset: data, partitioning: partitioning)
        let reports = try distributed(data, config, parts: 3, method: .random)
        // Layer 0 (8 → 24, wider) aggregates its input first: it sends 8-wide rows forward and, having no input
        // gradient to return, nothing back. Layer 1 (24 → 3) transforms first: 3-wide rows forward and back.
        let boundaryRows = parts.reduce(0) { $0 + $1.sendLists.reduce(0) { $0 + $1.count } }
        // Every rank sends each other rank one message per site (three sites), each behind a 10-byte header
        // (row count, drift, one width for all rows).
        let headerBytes = 3 * 2 * 3 * 10
        let haloBytes = boundaryRows * (8 + 3 + 3) * 4 + headerBytes
        let parameterCount = 8 * 24 + 24 + 24 * 3 + 3   // conv0, conv1 (no normalisation layer by default)
        // Gradient all-reduce (floats) and the loss all-reduce (one double) per rank.
        let allReduceBytes = 3 * (parameterCount * 4 + 8)
        XCTAssertEqual(reports[0].epochs[0].bytesSent, haloBytes + allReduceBytes)
    }

    /// A trainer asked for column blocks with an exchange that sends whole quantized rows refuses with a message
    /// (the CLI and `TrainingJob` refuse earlier; a library caller building a `Trainer` gets the same reason).
    func testColumnBlocksWithAWholeRowExchangeAreRefused() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=300,classes=3,features=8,degree=6,seed=2").generate()
        var blocked = configuration(.gcn, epochs: 1, layers: 2)
        blocked.method = .adaqp
        blocked.columnBlocks = 2
        let config = blocked
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 2, method: .metis, seed: 1)
        let parts = Part.build(dataset: data, partitioning: partitioning)
        let messages = try LocalTransport.run(worldSize: 2) { transport -> String in
            let part = parts[transport.rank]
            let shard = RankShard(part: part, aggregation: .gcn, featureRepresentation: .dense)
            do {
                _ = try Trainer(configuration: config, shard: shard, classCount: part.classCount,
                                exchange: try ExchangeFactory.make(part, transport, config),
                                collectives: TransportCollectives(transport), pool: .serial)
                return "built"
            } catch let error as TrainingSetupError {
                return error.message
            }
        }
        for m in messages { XCTAssertTrue(m.contains("adaqp exchanges whole rows") && m.contains("(2)"), m) }
    }

    /// The gradient all-reduce is bucketed by layer and started during backward, last layer first: each layer's
    /// neighbour weight in its pieces of rows as backward forms them (`WeightGradientPieces`; here the first layer's
    /// is cut in three), then a bucket of the layer's other parameters; every epoch reports the reduction's span.
    func testGradientReductionStartsWeightPiecesThenALayerBucketLastLayerFirst() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=400,classes=3,features=450,degree=6,seed=2").generate()
        let config = configuration(.sage, epochs: 2, layers: 3)
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 2, method: .metis, seed: 1)
        let parts = Part.build(dataset: data, partitioning: partitioning)
        let env = environment(data, ranks: 2)
        let results = try LocalTransport.run(worldSize: 2) { transport -> ([Int], [Int], [Double?]) in
            let part = parts[transport.rank]
            let shard = RankShard(part: part, aggregation: config.model.kind.aggregation,
                                  featureRepresentation: FeatureStatistics(part.features).representation(inputDropout: true))
            let recorder = RecordingCollectives(TransportCollectives(transport))
            let trainer = try Trainer(configuration: config, shard: shard, classCount: part.classCount,
                                  exchange: try ExchangeFactory.make(part, transport, config), collectives: recorder,
                                  pool: .serial)
            let first = trainer.model.convolutions[0]
            first.weightGradientPieces = WeightGradientPieces(rows: first.inputWidth, rowsPerPiece: WeightGradientPieces.rowTile)
            let report = try trainer.train(environment: env)
            // Per step: for each layer, last first, its weight's pieces and then the rest of the layer.
            let step = (0..<3).reversed().flatMap { l -> [Int] in
                let conv = trainer.model.convolutions[l]
                let pieces = conv.weightGradientPieces.ranges.map { $0.count * conv.outputWidth }
                let rest = trainer.model.parameters(ofLayer: l).reduce(0) { $0 + $1.count } - conv.neighborWeight.count
                return pieces + [rest]
            }
            // Each rank's own blocked time is its slot of the by-rank list, which every rank sees whole.
            for record in report.epochs {
                XCTAssertEqual(record.allReduceTimeByRank?.count, 2)
                XCTAssertEqual(record.allReduceTimeByRank?[transport.rank], record.allReduceTime)
            }
            return (recorder.started, step, report.epochs.map(\.gradientReductionSpan))
        }
        for (started, step, spans) in results {
            XCTAssertEqual(step.count, (3 + 1) + 2 + 2, "three pieces of the first layer's weight, one of the others'")
            XCTAssertEqual(started, Array(repeating: step, count: 2).flatMap { $0 })
            XCTAssertTrue(spans.allSatisfy { ($0 ?? -1) >= 0 }, "every epoch reports the span: \(spans)")
        }
    }

    /// A plan with a cut measured before training (`WeightGradientSchedule`): the first two epochs sum the first
    /// layer's weight in that cut's pieces, the cut is decided again after the second from the products as they ran,
    /// and the later epochs sum it in the refined cut's pieces, which the report records with the first cut; the
    /// model is the whole gradient's, bit for bit.
    func testTheMeasuredCutIsTheOneSummedAndIsRefinedAfterTheSecondEpoch() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=400,classes=3,features=600,degree=6,seed=2").generate()
        let config = TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 256, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 4, seed: 11)
        let parts = Part.build(dataset: data, partitioning: try Partitioner.partition(graph: data.graph, parts: 2, method: .metis, seed: 1))
        let env = environment(data, ranks: 2)
        // A fast sum next to the product, free passes: three pieces of the 600 × 256 weight, in 192-row tiles, the
        // last short.
        let initial = try XCTUnwrap(WeightGradientSchedule.choosing(
            rows: 600, columns: 256, productSeconds: 0.01, pieceSeconds: 0, sumLatencySeconds: 0, sumSecondsPerValue: 1e-8,
            calibratedPieces: 1))
        XCTAssertEqual(initial.rowsPerPiece, [384, 192, 24])
        func run(_ schedule: WeightGradientSchedule?) throws -> [(started: [Int], report: TrainingReport, refinedPlans: [FirstLayerPlan])] {
            try LocalTransport.run(worldSize: 2) { transport in
                final class Plans: @unchecked Sendable { var seen: [FirstLayerPlan] = [] }
                let refinedPlans = Plans()
                let part = parts[transport.rank]
                let representation = FeatureStatistics(part.features).representation(inputDropout: false)
                let recorder = RecordingCollectives(TransportCollectives(transport))
                let trainer = try Trainer(configuration: config, shard: RankShard(part: part, aggregation: .gcn, featureRepresentation: representation),
                                          classCount: part.classCount, exchange: try ExchangeFactory.make(part, transport, config),
                                          collectives: recorder, pool: .serial)
                var plan = FirstLayerPlan(basis: .calibrated, representation: representation, precompute: false)
                plan.weightGradientSchedule = schedule
                let report = try trainer.train(firstLayerPlan: plan, onRefinedPlan: { refinedPlans.seen.append($0) },
                                               environment: env, stopRequest: nil, checkpoints: nil,
                                               onEpoch: { _ in }, onProgress: { _ in })
                return (recorder.started, report, refinedPlans.seen)
            }
        }
        let measured = try run(initial)
        let refined = try XCTUnwrap(measured[0].report.firstLayerPlan?.weightGradientSchedule)
        XCTAssertEqual(refined.initialRowsPerPiece, initial.rowsPerPiece)
        XCTAssertNotNil(refined.measuredProductSeconds)
        XCTAssertEqual(measured[1].report.firstLayerPlan?.weightGradientSchedule, refined)
        // The refinement is announced once, with the plan the report ends with.
        for rank in measured { XCTAssertEqual(rank.refinedPlans, [rank.report.firstLayerPlan!]) }
        // Per step: the second layer's weight (256 × 3) and bias, then the first layer's pieces and bias.
        func step(_ rows: [Int]) -> [Int] { [256 * 3, 3] + rows.map { $0 * 256 } + [256] }
        let expected = [step(initial.rowsPerPiece), step(initial.rowsPerPiece)]
            + Array(repeating: step(refined.rowsPerPiece), count: 2)
        for rank in measured { XCTAssertEqual(rank.started, expected.flatMap { $0 }) }
        let whole = try run(nil)
        XCTAssertEqual(measured.map { $0.report.epochs.map(\.loss) }, whole.map { $0.report.epochs.map(\.loss) })
    }

    /// `overlapsGradientReduction: false` (`--no-overlap-allreduce`) starts the same buckets after backward and
    /// trains the same model, bit for bit: only when the sums start differs. The first layer's weight goes in
    /// three pieces.
    func testUnoverlappedGradientReductionTrainsTheSameModel() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=400,classes=3,features=450,degree=6,seed=2").generate()
        let parts = Part.build(dataset: data, partitioning: try Partitioner.partition(graph: data.graph, parts: 2, method: .metis, seed: 1))
        let env = environment(data, ranks: 2)
        func losses(overlapping: Bool) throws -> [[Double]] {
            var settings = configuration(.gcn, epochs: 3, layers: 3)
            settings.overlapsGradientReduction = overlapping
            let config = settings
            return try LocalTransport.run(worldSize: 2) { transport -> [Double] in
                let part = parts[transport.rank]
                let shard = RankShard(part: part, aggregation: config.model.kind.aggregation,
                                      featureRepresentation: FeatureStatistics(part.features).representation(inputDropout: true))
                let trainer = try Trainer(configuration: config, shard: shard, classCount: part.classCount,
                                          exchange: try ExchangeFactory.make(part, transport, config),
                                          collectives: TransportCollectives(transport), pool: .serial)
                let first = trainer.model.convolutions[0]
                first.weightGradientPieces = WeightGradientPieces(rows: first.inputWidth, rowsPerPiece: WeightGradientPieces.rowTile)
                return try trainer.train(environment: env).epochs.map(\.loss)
            }
        }
        XCTAssertEqual(try losses(overlapping: false), try losses(overlapping: true))
    }
}

/// Forwards to a transport's collectives, recording the length of every reduction started.
private final class RecordingCollectives: Collectives {
    private let inner: TransportCollectives
    private(set) var started: [Int] = []
    init(_ inner: TransportCollectives) { self.inner = inner }
    var rank: Int { inner.rank }
    var worldSize: Int { inner.worldSize }
    func allReduceSum(_ values: inout [Float]) throws { try inner.allReduceSum(&values) }
    func allReduceSum(_ values: inout [Double]) throws { try inner.allReduceSum(&values) }
    func startAllReduceSum(_ values: [Float]) throws -> any PendingReduction {
        started.append(values.count)
        return try inner.startAllReduceSum(values)
    }
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { try inner.allGather(bytes) }
    func takeStatistics() -> CommunicationStatistics { inner.takeStatistics() }
    var channels: (any MessageChannels)? { inner.channels }
    func record(_ cost: CommunicationStatistics) { inner.record(cost) }
}
