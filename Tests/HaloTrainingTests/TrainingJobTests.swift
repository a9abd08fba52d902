import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor
@testable import HaloTraining
import HaloTransport
import XCTest

/// `TrainingJob`, the library's way to run training: the same model as the trainer driven by hand, on one process,
/// on ranks as threads partitioning a dataset, and on ranks reading parts from a folder; callbacks from rank 0 only.
final class TrainingJobTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("halo-job-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private static let spec = "synthetic:nodes=700,classes=4,features=10,degree=6,signal=1,seed=9"

    private func configuration(epochs: Int = 6) -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: Self.spec,
            model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 16, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: epochs, seed: 2, threads: 1)
    }

    /// Records callbacks, from whichever rank's thread makes them.
    private final class Calls: @unchecked Sendable {
        private let lock = NSLock()
        private var epochs: [Int] = []
        func record(_ epoch: Int) { lock.withLock { epochs.append(epoch) } }
        var seen: [Int] { lock.withLock { epochs } }
    }

    func testOneProcessRanksAndPartsTrainTheSameModel() throws {
        var single = TrainingJob(configuration: configuration(), source: .dataset(Self.spec), ranks: .single)
        single.threadsPerRank = 1
        let reference = try single.run()
        XCTAssertEqual(reference.epochs.count, 6)
        XCTAssertNil(reference.partitioning)

        let calls = Calls()
        var threaded = TrainingJob(configuration: configuration(), source: .dataset(Self.spec), ranks: .threads(3))
        threaded.threadsPerRank = 1
        let ranked = try threaded.run(onEpoch: { calls.record($0.epoch) })
        XCTAssertEqual(calls.seen, Array(0..<6), "one callback per epoch, from one rank (three ranks would give 18)")
        XCTAssertEqual(ranked.partitioning?.parts, 3)
        for (a, b) in zip(reference.epochs, ranked.epochs) {
            XCTAssertEqual(b.loss, a.loss, accuracy: 1e-4 * max(1, abs(a.loss)), "epoch \(a.epoch)")
        }

        // The same partitioning written to a folder: each rank reads its own part, the run is the same.
        let data = try SyntheticGraphSpec(parsing: Self.spec).generate()
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 3, method: .metis, seed: 2)
        let folder = scratch.appendingPathComponent("parts")
        _ = try PartitionStore.write(dataset: data, partitioning: partitioning, to: folder)
        var fromParts = TrainingJob(configuration: configuration(), source: .parts(directory: folder.path), ranks: .threads(3))
        fromParts.threadsPerRank = 1
        let read = try fromParts.run()
        XCTAssertEqual(read.epochs.map(\.loss), ranked.epochs.map(\.loss))
        XCTAssertEqual(read.partitioning?.parts, 3)
    }

    func testMisfitsAreRefusedBeforeTraining() throws {
        let data = try SyntheticGraphSpec(parsing: Self.spec).generate()
        let folder = scratch.appendingPathComponent("two")
        _ = try PartitionStore.write(dataset: data, partitioning: try Partitioner.partition(graph: data.graph, parts: 2, method: .metis, seed: 1), to: folder)
        let wrongCount = TrainingJob(configuration: configuration(), source: .parts(directory: folder.path), ranks: .threads(3))
        XCTAssertThrowsError(try wrongCount.run()) { XCTAssertTrue("\($0)".contains("holds 2 parts but the run has 3 ranks"), "\($0)") }
        let single = TrainingJob(configuration: configuration(), source: .parts(directory: folder.path), ranks: .single)
        XCTAssertThrowsError(try single.run()) { XCTAssertTrue("\($0)".contains("parts are trained by one rank each"), "\($0)") }
        var huge = TrainingJob(configuration: configuration(), source: .dataset("synthetic:nodes=2000000000,classes=4,features=4096,degree=4,seed=1"),
                               ranks: .single)
        huge.memoryHint = "ask for less"
        XCTAssertThrowsError(try huge.run()) { XCTAssertTrue("\($0)".contains("ask for less"), "\($0)") }
    }

    /// A run that fits by its size before partitioning, but not once its halos and messages are known, is refused
    /// after partitioning and before its first epoch, with the estimate; a budget above the estimate trains.
    func testARunThatCannotFitIsRefusedOnceItsPartsAreKnown() throws {
        let data = try SyntheticGraphSpec(parsing: Self.spec).generate()
        let config = configuration(epochs: 2)
        // What the job checks before loading: 3 ranks sharing the rows, no halo, two copies of the features.
        let beforeLoading = MemoryEstimate(model: config.model, rows: data.nodeCount, inputWidth: data.featureWidth,
                                           classes: data.classCount, featureBytes: Double(data.nodeCount * data.featureWidth * 4 * 2),
                                           replicas: 3)
        let parts = Part.build(dataset: data, partitioning: try Partitioner.partition(graph: data.graph, parts: 3, method: .metis, seed: 2))
        let withHalos = MemoryEstimate(
            model: config.model,
            ranks: parts.map { .init(inner: $0.innerCount, halo: $0.haloCount, sent: $0.sendLists.reduce(0) { $0 + $1.count }) },
            inputWidth: data.featureWidth, classes: data.classCount, featureBytes: Double(data.nodeCount * data.featureWidth * 4),
            storedEdges: parts.reduce(0) { $0 + $1.inSources.count + $1.innerCount }, sharedMessages: true, partStructure: true)
        XCTAssertGreaterThan(withHalos.activationBytes, 1.2 * beforeLoading.activationBytes, "a random graph's halos are large")
        XCTAssertGreaterThan(withHalos.totalBytes, beforeLoading.totalBytes)

        var job = TrainingJob(configuration: config, source: .dataset(Self.spec), ranks: .threads(3))
        job.threadsPerRank = 1
        job.memoryBudget = (beforeLoading.totalBytes + withHalos.totalBytes) / 2
        job.memoryHint = "use more machines"
        let lines = LockedLines()
        job.log = { lines.append($0) }
        let epochs = LockedLines()
        XCTAssertThrowsError(try job.run(onEpoch: { epochs.append("\($0.epoch)") })) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("this run needs about "), message)
            XCTAssertTrue(message.contains("at the step's peak ("), message)
            XCTAssertTrue(message.hasSuffix("; use more machines"), message)
        }
        XCTAssertTrue(lines.all.contains { $0.hasPrefix("partitioned into 3 parts") }, "refused after partitioning")
        XCTAssertEqual(epochs.all, [], "refused before the first epoch")

        job.memoryBudget = 1.01 * withHalos.totalBytes
        XCTAssertEqual(try job.run().epochs.count, 2)
    }

    /// A run that does not fit whole is evaluated in the fewest column blocks that fit (`ColumnBlocks`): the same
    /// model as the whole run, the choice logged and reported. A method that cannot cut its messages is refused at
    /// the same budget, and asking it for blocks is a setup error.
    func testTheFewestColumnBlocksThatFitAreChosen() throws {
        var config = configuration(epochs: 2)
        config.model = ModelConfiguration(kind: .sage, layers: 3, hiddenWidth: 64, dropout: 0.5)
        let data = try SyntheticGraphSpec(parsing: Self.spec).generate()
        let parts = Part.build(dataset: data, partitioning: try Partitioner.partition(graph: data.graph, parts: 3, method: .metis, seed: 2))
        func estimate(_ blocks: Int) -> MemoryEstimate {
            MemoryEstimate(
                model: config.model,
                ranks: parts.map { .init(inner: $0.innerCount, halo: $0.haloCount, sent: $0.sendLists.reduce(0) { $0 + $1.count }) },
                inputWidth: data.featureWidth, classes: data.classCount, featureBytes: Double(data.nodeCount * data.featureWidth * 4),
                storedEdges: parts.reduce(0) { $0 + $1.inSources.count + $1.innerCount }, sharedMessages: true,
                partStructure: true, columnBlocks: blocks)
        }
        XCTAssertLessThan(estimate(2).totalBytes, estimate(1).totalBytes, "the 64-wide layer's halo rows dominate")

        var whole = TrainingJob(configuration: config, source: .dataset(Self.spec), ranks: .threads(3))
        whole.threadsPerRank = 1
        whole.memoryBudget = 1.01 * estimate(1).totalBytes
        let lines = LockedLines()
        whole.log = { lines.append($0) }
        let reference = try whole.run()
        XCTAssertFalse(lines.all.contains { $0.contains("column blocks") }, "a run that fits whole is not cut")
        XCTAssertEqual(reference.config.columnBlocks, 1)

        var blocked = whole
        blocked.memoryBudget = (estimate(1).totalBytes + estimate(2).totalBytes) / 2
        let blockedLines = LockedLines()
        blocked.log = { blockedLines.append($0) }
        let report = try blocked.run()
        XCTAssertTrue(blockedLines.all.contains("layers evaluated in 2 column blocks to fit in memory (one exchange and one pass over the graph per block)"),
                      "\(blockedLines.all)")
        XCTAssertEqual(report.config.columnBlocks, 2)
        for (a, b) in zip(reference.epochs, report.epochs) {
            XCTAssertEqual(b.loss, a.loss, accuracy: 1e-4 * max(1, abs(a.loss)), "epoch \(a.epoch)")
        }
        // The same rows travel, in two blocks: each block's message has its own header.
        for (a, b) in zip(reference.epochs, report.epochs) {
            XCTAssertGreaterThan(b.bytesSent, a.bytesSent)
            XCTAssertLessThan(b.bytesSent - a.bytesSent, a.bytesSent / 1000, "epoch \(a.epoch): headers only")
        }

        // AdaQP's quantized messages are not cut: just under its whole estimate it is refused, by that estimate.
        var quantized = blocked
        quantized.configuration.method = .adaqp
        let adaqpWhole = MemoryEstimate(
            model: config.model,
            ranks: parts.map { .init(inner: $0.innerCount, halo: $0.haloCount, sent: $0.sendLists.reduce(0) { $0 + $1.count }) },
            inputWidth: data.featureWidth, classes: data.classCount, featureBytes: Double(data.nodeCount * data.featureWidth * 4),
            storedEdges: parts.reduce(0) { $0 + $1.inSources.count + $1.innerCount }, sharedMessages: true,
            partStructure: true, messageBytesPerValue: 1)
        quantized.memoryBudget = 0.99 * adaqpWhole.totalBytes
        XCTAssertThrowsError(try quantized.run()) {
            XCTAssertTrue("\($0)".hasPrefix("this run needs about "), "\($0)")
            XCTAssertFalse("\($0)".contains("column blocks"), "\($0)")
        }
        quantized.configuration.columnBlocks = 4
        quantized.memoryBudget = nil
        XCTAssertThrowsError(try quantized.run()) {
            XCTAssertTrue("\($0)".contains("adaqp cannot evaluate layers in column blocks (4 asked)"), "\($0)")
        }
    }

    /// One process is checked again once its first-layer plan is known: a precomputed aggregate (the default for
    /// these dense features without a calibration) is held through training, so a budget that fits the run without
    /// it refuses the run with it.
    func testOneProcessIsCheckedWithItsFirstLayerPlan() throws {
        // 40 features into a 16-wide layer: transformed first, so without the precomputed aggregate nothing
        // 40 wide is held beside the features.
        let spec = "synthetic:nodes=700,classes=4,features=40,degree=6,signal=1,seed=9"
        let data = try SyntheticGraphSpec(parsing: spec).generate()
        var config = configuration(epochs: 1)
        config.dataset = spec
        func estimate(precomputed: Bool) -> MemoryEstimate {
            MemoryEstimate(model: config.model, rows: data.nodeCount, inputWidth: data.featureWidth,
                           classes: data.classCount, featureBytes: Double(data.nodeCount * data.featureWidth * 4),
                           storedEdges: data.graph.edgeCount + data.nodeCount, precomputedFirstLayer: precomputed,
                           wholeGraph: true)
        }
        let without = estimate(precomputed: false), with = estimate(precomputed: true)
        XCTAssertGreaterThan(with.totalBytes, without.totalBytes)
        var job = TrainingJob(configuration: config, source: .dataset(spec), ranks: .single)
        job.threadsPerRank = 1
        job.configuration.quantization.precomputeFirstLayer = nil
        job.memoryBudget = (with.totalBytes + without.totalBytes) / 2
        let lines = LockedLines()
        job.log = { lines.append($0) }
        XCTAssertThrowsError(try job.run()) { XCTAssertTrue("\($0)".hasPrefix("this run needs about "), "\($0)") }
        XCTAssertTrue(lines.all.contains { $0.hasPrefix("first-layer plan: dense, aggregate precomputed") }, "\(lines.all)")
        job.memoryBudget = 1.01 * with.totalBytes
        XCTAssertEqual(try job.run().epochs.count, 1)
    }
}

/// Lines appended from several threads.
private final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
