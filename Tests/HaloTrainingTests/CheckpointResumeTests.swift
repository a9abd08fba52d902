import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloQuantization
import HaloTensor
@testable import HaloTraining
import HaloTransport
import XCTest

/// Checkpoints: a run stopped after some epochs and resumed from its checkpoint computes what the uninterrupted
/// run computes (every method whose arithmetic does not depend on timing: vanilla, AdaQP, PipeGCN), and a
/// checkpoint that does not fit the run (other settings, data, rank count, damaged files) is refused by name.
final class CheckpointResumeTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("halo-checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private static let data = try! SyntheticGraphSpec(
        parsing: "synthetic:nodes=900,classes=4,features=16,degree=8,signal=1,seed=6").generate()

    private func configuration(_ method: TrainingMethod, epochs: Int, hidden: Int = 16,
                               assignment: AssignmentScheme = .adaptive,
                               compression: GradientCompression = .none) -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "test",
            model: ModelConfiguration(kind: .gcn, layers: 3, hiddenWidth: hidden, dropout: 0.5, inputDropout: 0.1),
            optimizer: Adam.Hyperparameters(learningRate: 0.01, weightDecay: 5e-4), epochs: epochs, seed: 3,
            method: method, quantization: QuantizationSettings(assignment: assignment, assignCycle: 3),
            pipeline: PipelineSettings(smoothing: method.defaultSmoothing), gradientCompression: compression)
    }

    private func environment(ranks: Int) -> RunEnvironment {
        let d = Self.data
        return RunEnvironment(ranks: ranks, threadsPerRank: 1, blasCore: BLASRuntime.coreName, hostCores: 1,
                              nodes: d.nodeCount, edges: d.graph.edgeCount, featureWidth: d.featureWidth, classes: d.classCount)
    }

    private func parts(_ count: Int, seed: UInt64 = 1) throws -> [Part] {
        let partitioning = try Partitioner.partition(graph: Self.data.graph, parts: count, method: .metis, seed: seed)
        return Part.build(dataset: Self.data, partitioning: partitioning)
    }

    /// Runs `config` on `parts` (one rank per part, threads of this process), keeping checkpoints in `folder`.
    private func run(_ config: TrainingConfiguration, parts: [Part], folder: URL?, every: Int = 2,
                     resume: Bool = false) throws -> TrainingReport {
        let plan = try folder.map {
            CheckpointPlan(directory: try CheckpointDirectory(path: $0.path, resuming: resume), every: every, resume: resume)
        }
        let env = environment(ranks: parts.count)
        return try LocalTransport.run(worldSize: parts.count) { transport in
            try RankTraining.run(part: parts[transport.rank], transport: transport, configuration: config,
                                 environment: env, pool: .serial, checkpoints: plan)
        }[0]
    }

    /// The parameters of `folder`'s checkpoint, by rank.
    private func savedParameters(_ folder: URL) throws -> [[RankCheckpoint.SavedParameter]] {
        let directory = try CheckpointDirectory(path: folder.path, resuming: true)
        let manifest = try directory.readManifest()
        return try (0..<manifest.worldSize).map { try directory.readState(epochsDone: manifest.epochsDone, rank: $0).parameters }
    }

    /// Trains `total` epochs at once, and `stopAt` epochs then the rest resumed: same losses, scores, parameters.
    private func assertResumeIsExact(_ method: TrainingMethod, ranks: Int, stopAt: Int, total: Int,
                                     assignment: AssignmentScheme = .adaptive,
                                     compression: GradientCompression = .none) throws {
        let pieces = try parts(ranks)
        let whole = scratch.appendingPathComponent("\(method)-\(compression)-P\(ranks)-whole")
        let split = scratch.appendingPathComponent("\(method)-\(compression)-P\(ranks)-split")
        func config(_ epochs: Int) -> TrainingConfiguration {
            configuration(method, epochs: epochs, assignment: assignment, compression: compression)
        }
        let reference = try run(config(total), parts: pieces, folder: whole)
        let first = try run(config(stopAt), parts: pieces, folder: split)
        XCTAssertEqual(first.epochs.count, stopAt)
        let resumed = try run(config(total), parts: pieces, folder: split, resume: true)
        XCTAssertEqual(resumed.epochs.map(\.epoch), Array(0..<total), "\(method): the report holds every epoch")
        XCTAssertEqual(resumed.epochs.map(\.loss), reference.epochs.map(\.loss), "\(method) P=\(ranks): losses")
        XCTAssertEqual(resumed.epochs.map(\.validationAccuracy), reference.epochs.map(\.validationAccuracy), "\(method)")
        XCTAssertEqual(resumed.bestValidationEpoch, reference.bestValidationEpoch, "\(method)")
        XCTAssertEqual(resumed.testAccuracyAtBestValidation, reference.testAccuracyAtBestValidation, "\(method)")
        XCTAssertTrue(resumed.complete)
        // Compared as a whole, reported as a count (the arrays would flood the log).
        let (a, b) = (try savedParameters(split), try savedParameters(whole))
        XCTAssertTrue(a == b, "\(method) P=\(ranks): final parameters differ in \(zip(a, b).filter { $0 != $1 }.count) rank(s)")
        XCTAssertEqual(try CheckpointDirectory(path: split.path, resuming: true).readManifest().epochsDone, total)
    }

    func testVanillaResumedEqualsTheUninterruptedRun() throws {
        for ranks in [1, 3] { try assertResumeIsExact(.vanilla, ranks: ranks, stopAt: 5, total: 9) }
    }

    /// AdaQP with seeded random widths: exact, as its stochastic rounding is keyed by (seed, epoch, layer, node).
    func testAdaQPResumedEqualsTheUninterruptedRun() throws {
        try assertResumeIsExact(.adaqp, ranks: 3, stopAt: 4, total: 9, assignment: .random)
    }

    /// AdaQP's adaptive widths come from link costs measured by timing, so two runs may differ; what a resumed
    /// run must keep is what the saved run measured and decided: the same link model and the cycles before the stop,
    /// and it goes on from a cycle begun before it (stopped at epoch 4 in cycles of 3: traced variances carry over).
    func testAdaptiveAdaQPResumesWithItsAssignmentState() throws {
        let pieces = try parts(3)
        let folder = scratch.appendingPathComponent("adaptive")
        let first = try run(configuration(.adaqp, epochs: 4), parts: pieces, folder: folder)
        let resumed = try run(configuration(.adaqp, epochs: 9), parts: pieces, folder: folder, resume: true)
        XCTAssertEqual(first.assignmentCycles?.map(\.epoch), [3])
        XCTAssertEqual(resumed.assignmentCycles?.map(\.epoch), [3, 6])
        XCTAssertEqual(resumed.assignmentCycles?.first, first.assignmentCycles?.first, "the first cycle is the saved one")
        XCTAssertEqual(Array(resumed.epochs.prefix(4)), first.epochs, "the saved epochs are reported as they were")
        XCTAssertTrue(resumed.epochs.allSatisfy { $0.loss.isFinite })
    }

    /// Compressed gradient sums carry error-feedback residuals from step to step: the checkpoint holds them, so
    /// the resumed run is exact, and every rank holds the same parameters (all decode the same bytes).
    func testCompressedGradientsResumeExactlyWithTheRanksInAgreement() throws {
        let float32 = try savedParameters({
            let folder = scratch.appendingPathComponent("float32")
            _ = try run(configuration(.vanilla, epochs: 8), parts: try parts(3), folder: folder)
            return folder
        }())
        for compression in [GradientCompression.bf16, .int8] {
            try assertResumeIsExact(.vanilla, ranks: 3, stopAt: 4, total: 8, compression: compression)
            let saved = try savedParameters(scratch.appendingPathComponent("vanilla-\(compression)-P3-split"))
            XCTAssertTrue(saved.allSatisfy { $0 == saved[0] }, "\(compression): every rank holds the same parameters")
            XCTAssertFalse(saved == float32, "\(compression): the sums were compressed (else float32's model)")
        }
        // The residuals belong to the saved format: a run with another compression is refused.
        let folder = scratch.appendingPathComponent("int8-mismatch")
        _ = try run(configuration(.vanilla, epochs: 3, compression: .int8), parts: try parts(2), folder: folder)
        assertRefused({ _ = try run(configuration(.vanilla, epochs: 6, compression: .bf16), parts: try parts(2), folder: folder, resume: true) },
                      mentioning: ["gradient compression: saved int8, given bf16"])
    }

    /// Version 1 state files (before the gradient residuals) are still read, with no residuals; an unknown version
    /// is refused by name.
    func testStateFormatVersionOneIsStillRead() throws {
        let state = RankCheckpoint(
            header: .init(epochsDone: 2, rank: 0, worldSize: 1, shardDigest: "00", configuration: configuration(.vanilla, epochs: 4)),
            parameters: [.init(name: "w", rows: 1, cols: 2, values: [1, 2])],
            optimizer: Adam.State(stepCount: 2, firstMoments: [[0.5, 0.25]], secondMoments: [[1, 2]]),
            records: [], trainingSeconds: 1.5, exchangeState: [7, 8], gradientResiduals: [9, 9, 9])
        let old = try RankCheckpoint.decode(try state.encoded(version: 1), file: "old.state")
        XCTAssertEqual(old.gradientResiduals, [])
        XCTAssertEqual(old.exchangeState, [7, 8])
        XCTAssertEqual(old.parameters, state.parameters)
        XCTAssertEqual(try RankCheckpoint.decode(try state.encoded(), file: "new.state").gradientResiduals, [9, 9, 9])
        // Version 3 in an otherwise valid file: the version word follows the 8-byte magic and its length word.
        var bytes = [UInt8](try state.encoded())
        bytes.removeLast(8)
        bytes[16] = 3
        withUnsafeBytes(of: XXHash64.hash(bytes).littleEndian) { bytes.append(contentsOf: $0) }
        assertRefused({ _ = try RankCheckpoint.decode(Data(bytes), file: "future.state") },
                      mentioning: ["future.state", "version 3", "versions 1–2"])
    }

    func testPipeGCNResumedEqualsTheUninterruptedRun() throws {
        // The messages of the epoch saved are in flight when the first run stops: the checkpoint holds them.
        try assertResumeIsExact(.pipegcn, ranks: 3, stopAt: 5, total: 9)
        // After epoch 0 the synchronous warm-up has consumed epoch 0's messages, which epoch 1 uses again.
        try assertResumeIsExact(.pipegcn, ranks: 2, stopAt: 1, total: 4)
    }

    /// PipeQS's bypasses depend on when messages arrive, so its runs differ from run to run; a resumed run must
    /// take back its caches and widths and go on training (finite losses, every epoch reported).
    func testPipeQSResumes() throws {
        let pieces = try parts(3)
        let folder = scratch.appendingPathComponent("pipeqs")
        _ = try run(configuration(.pipeqs, epochs: 4), parts: pieces, folder: folder)
        let resumed = try run(configuration(.pipeqs, epochs: 8), parts: pieces, folder: folder, resume: true)
        XCTAssertEqual(resumed.epochs.map(\.epoch), Array(0..<8))
        XCTAssertTrue(resumed.epochs.allSatisfy { $0.loss.isFinite })
    }

    func testSavesEveryNEpochsAndAfterTheLastKeepingOnlyTheNewest() throws {
        let folder = scratch.appendingPathComponent("every")
        _ = try run(configuration(.vanilla, epochs: 7), parts: try parts(2), folder: folder, every: 3)
        let entries = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        XCTAssertEqual(entries, ["checkpoint.json", "epoch-000007"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("epoch-000007").path).sorted(),
                       ["rank-0.state", "rank-1.state"])
    }

    /// A save cut short (some ranks' files of a newer epoch written, the manifest not yet replaced) leaves the
    /// previous checkpoint usable: the manifest still names it and its files are all there.
    func testAnUnfinishedSaveLeavesThePreviousCheckpoint() throws {
        let pieces = try parts(2)
        let folder = scratch.appendingPathComponent("torn")
        let reference = try run(configuration(.vanilla, epochs: 6), parts: pieces, folder: nil)
        _ = try run(configuration(.vanilla, epochs: 3), parts: pieces, folder: folder)
        let torn = folder.appendingPathComponent("epoch-000005")
        try FileManager.default.createDirectory(at: torn, withIntermediateDirectories: true)
        try Data("half".utf8).write(to: torn.appendingPathComponent("rank-0.state"))
        let resumed = try run(configuration(.vanilla, epochs: 6), parts: pieces, folder: folder, resume: true)
        XCTAssertEqual(resumed.epochs.map(\.loss), reference.epochs.map(\.loss))
        XCTAssertFalse(FileManager.default.fileExists(atPath: torn.path), "the leftover is removed by the next save")
    }

    private func assertRefused(_ body: () throws -> Void, mentioning fragments: [String],
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            let text = String(describing: error)
            for fragment in fragments {
                XCTAssertTrue(text.contains(fragment), "\"\(text)\" should mention \"\(fragment)\"", file: file, line: line)
            }
        }
    }

    func testAMismatchedRunIsRefused() throws {
        let pieces = try parts(2)
        let folder = scratch.appendingPathComponent("mismatch")
        _ = try run(configuration(.vanilla, epochs: 3), parts: pieces, folder: folder)
        assertRefused({ _ = try self.run(self.configuration(.vanilla, epochs: 6, hidden: 8), parts: pieces, folder: folder, resume: true) },
                      mentioning: ["hidden: saved 16, given 8"])
        assertRefused({ _ = try self.run(self.configuration(.adaqp, epochs: 6), parts: pieces, folder: folder, resume: true) },
                      mentioning: ["method: saved vanilla, given adaqp"])
        assertRefused({ _ = try self.run(self.configuration(.vanilla, epochs: 6), parts: try self.parts(3), folder: folder, resume: true) },
                      mentioning: ["saved by 2 rank(s); this run has 3"])
        assertRefused({ _ = try self.run(self.configuration(.vanilla, epochs: 3), parts: pieces, folder: folder, resume: true) },
                      mentioning: ["nothing is left to train"])
        // Another partitioning of the same data: each rank's shard digest differs from the one it saved.
        let other = try Partitioner.partition(graph: Self.data.graph, parts: 2, method: .random, seed: 9)
        assertRefused({ _ = try self.run(self.configuration(.vanilla, epochs: 6), parts: Part.build(dataset: Self.data, partitioning: other),
                                         folder: folder, resume: true) },
                      mentioning: ["trains on other data than the run that saved it"])
        // A new run may not replace a saved one.
        assertRefused({ _ = try CheckpointDirectory(path: folder.path, resuming: false) },
                      mentioning: ["already holds a checkpoint of 3 epochs", "--resume"])
    }

    func testDamagedCheckpointsAreRefusedByName() throws {
        let pieces = try parts(2)
        let folder = scratch.appendingPathComponent("damaged")
        _ = try run(configuration(.vanilla, epochs: 2), parts: pieces, folder: folder)
        let state = folder.appendingPathComponent("epoch-000002/rank-1.state")
        let original = try Data(contentsOf: state)
        var flipped = original
        flipped[flipped.count / 2] ^= 0x40
        try flipped.write(to: state)
        assertRefused({ _ = try self.run(self.configuration(.vanilla, epochs: 4), parts: pieces, folder: folder, resume: true) },
                      mentioning: ["rank-1.state", "is corrupt"])
        try original.prefix(original.count - 100).write(to: state)
        assertRefused({ _ = try self.run(self.configuration(.vanilla, epochs: 4), parts: pieces, folder: folder, resume: true) },
                      mentioning: ["rank-1.state"])
        try FileManager.default.removeItem(at: state)
        assertRefused({ _ = try self.run(self.configuration(.vanilla, epochs: 4), parts: pieces, folder: folder, resume: true) },
                      mentioning: ["rank-1.state", "missing"])
        let manifest = folder.appendingPathComponent("checkpoint.json")
        try Data(#"{"format": "halo-checkpoint", "format_version": "one"}"#.utf8).write(to: manifest)
        assertRefused({ _ = try CheckpointDirectory(path: folder.path, resuming: true).readManifest() },
                      mentioning: ["checkpoint.json", "formatVersion"])
        try Data("not json".utf8).write(to: manifest)
        assertRefused({ _ = try CheckpointDirectory(path: folder.path, resuming: true).readManifest() },
                      mentioning: ["checkpoint.json", "not a valid JSON object"])
    }

    /// A well-formed file (valid checksum) whose values no run can have written is refused by name before training
    /// goes on: Adam's step count must be the epochs done and its moments an update's, the training time finite,
    /// a pipelined exchange's last epoch the one before the resume, nothing may follow the exchange's state, and
    /// what a rank says it last sent must be what its peer holds.
    func testForgedValuesInAWellFormedStateAreRefusedByName() throws {
        let pieces = try parts(2)
        let saved = scratch.appendingPathComponent("forged-source")
        _ = try run(configuration(.pipegcn, epochs: 3), parts: pieces, folder: saved, every: 3)
        let file = "epoch-000003/rank-1.state"
        let original = try RankCheckpoint.decode(try Data(contentsOf: saved.appendingPathComponent(file)), file: file)
        let forgeries: [(String, (inout RankCheckpoint) -> Void)] = [
            ("its optimiser took 4 steps in 3 epochs", { $0.optimizer.stepCount = 4 }),
            ("first moment nan of conv0.weight", { $0.optimizer.firstMoments[0][7] = .nan }),
            ("second moment -1.0 of conv1.bias", { $0.optimizer.secondMoments[3][0] = -1 }),
            ("training time of inf s", { $0.trainingSeconds = .infinity }),
            ("last epoch 7 after 3 epochs", { state in
                withUnsafeBytes(of: Int64(7).littleEndian) { state.exchangeState.replaceSubrange(0..<8, with: $0) }
            }),
            ("8 bytes after the exchange's state", { $0.exchangeState += [UInt8](repeating: 0, count: 8) }),
            // The last epoch, compute time, network flag and site count (8 bytes each), the first site (16), then
            // its channel to rank 0: the epoch last sent there, moved to another epoch the range check accepts.
            // Rank 0, which holds what rank 1 really sent, refuses it.
            ("rank 1's says it last sent epoch", { state in
                let at = 48
                let saved = state.exchangeState[at..<(at + 8)].withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
                withUnsafeBytes(of: (saved == -1 ? 0 : saved - 1).littleEndian) { state.exchangeState.replaceSubrange(at..<(at + 8), with: $0) }
            }),
        ]
        for (index, (expected, forge)) in forgeries.enumerated() {
            let folder = scratch.appendingPathComponent("forged-\(index)")
            try FileManager.default.copyItem(at: saved, to: folder)
            var state = original
            forge(&state)
            try state.encoded().write(to: folder.appendingPathComponent(file))
            assertRefused({ _ = try self.run(self.configuration(.pipegcn, epochs: 5), parts: pieces, folder: folder, resume: true) },
                          mentioning: [index == forgeries.count - 1 ? "rank-0.state" : "rank-1.state", expected])
        }
        // The unforged copy resumes.
        let folder = scratch.appendingPathComponent("forged-none")
        try FileManager.default.copyItem(at: saved, to: folder)
        try original.encoded().write(to: folder.appendingPathComponent(file))
        XCTAssertEqual(try run(configuration(.pipegcn, epochs: 5), parts: pieces, folder: folder, resume: true).epochs.count, 5)
    }

    func testAFolderThatIsNotACheckpointsIsRefused() throws {
        let folder = scratch.appendingPathComponent("busy")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: folder.appendingPathComponent("notes.txt"))
        assertRefused({ _ = try CheckpointDirectory(path: folder.path, resuming: false) }, mentioning: ["notes.txt", "not a checkpoint's"])
        let file = scratch.appendingPathComponent("plain")
        try Data().write(to: file)
        assertRefused({ _ = try CheckpointDirectory(path: file.path, resuming: false) }, mentioning: ["not a folder"])
        assertRefused({ _ = try CheckpointDirectory(path: scratch.appendingPathComponent("none").path, resuming: true) },
                      mentioning: ["no such folder"])
        assertRefused({ _ = try CheckpointDirectory(path: scratch.appendingPathComponent("a/b/c").path, resuming: false) },
                      mentioning: ["cannot create the folder"])
    }

    /// A state file's counts are checked against the bytes left before anything is allocated.
    func testByteReaderRefusesCountsBeyondItsBytes() {
        var writer = ByteWriter()
        writer.append(Int.max / 2)
        var reader = ByteReader(writer.bytes)
        XCTAssertThrowsError(try reader.readElements(of: Float.self))
        var negative = ByteWriter()
        negative.append(-5)
        var reader2 = ByteReader(negative.bytes)
        XCTAssertThrowsError(try reader2.readElements(of: UInt8.self))
        var roundTrip = ByteWriter()
        roundTrip.append(elements: [Float(1.5), -2])
        roundTrip.append("état")
        roundTrip.append(true)
        var reader3 = ByteReader(roundTrip.bytes)
        XCTAssertEqual(try reader3.readElements(of: Float.self), [1.5, -2])
        XCTAssertEqual(try reader3.read() as String, "état")
        XCTAssertEqual(try reader3.read() as Bool, true)
        XCTAssertEqual(reader3.remaining, 0)
    }
}
