import Foundation
import HaloNN
@testable import HaloTensorBoard
import HaloTensorBoardTesting
@testable import HaloTraining
import XCTest

/// `--tensorboard`'s event files: framed and checksummed as TFRecords, `Event`s TensorBoard decodes, one batch per
/// epoch, AdaQP's cycles written once, and a folder that cannot take a file refused when the log is opened.
final class TrainingEventLogTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("halo-tensorboard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func testEventEncodingDecodesBack() throws {
        let scalars = TensorBoardEvent(wallTime: 1_700_000_000.25, step: 12, content: .scalars([
            TensorBoardScalar(tag: "loss/train", value: 0.5), TensorBoardScalar(tag: "accuracy/test", value: -3.25),
        ]))
        let decoded = try EventFileReader.decodeEvent(scalars.encoded())
        XCTAssertEqual(decoded.wallTime, 1_700_000_000.25)
        XCTAssertEqual(decoded.step, 12)
        XCTAssertEqual(decoded.scalars.map(\.tag), ["loss/train", "accuracy/test"])
        XCTAssertEqual(decoded.scalars.map(\.value), [0.5, -3.25])

        let header = try EventFileReader.decodeEvent(
            TensorBoardEvent(wallTime: 1, step: -1, content: .fileVersion("brain.Event:2")).encoded())
        XCTAssertEqual(header.fileVersion, "brain.Event:2")
        XCTAssertEqual(header.step, -1, "a negative int64 is a ten-byte varint")
    }

    /// Bytes a protobuf encoder is known to produce: field 2 varint 300 is 10 ac 02; field 1 double 1.0.
    func testWireFormatBytes() {
        var writer = ProtobufWriter()
        writer.appendInt64(field: 2, 300)
        XCTAssertEqual(writer.bytes, [0x10, 0xAC, 0x02])
        writer = ProtobufWriter()
        writer.appendDouble(field: 1, 1.0)
        XCTAssertEqual(writer.bytes, [0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
        writer = ProtobufWriter()
        writer.appendString(field: 1, "ab")
        XCTAssertEqual(writer.bytes, [0x0A, 0x02, 0x61, 0x62])
        writer = ProtobufWriter()
        writer.appendFloat(field: 2, 1.0)
        XCTAssertEqual(writer.bytes, [0x15, 0, 0, 0x80, 0x3F])
    }

    func testACorruptedRecordIsCaughtByItsChecksum() throws {
        var bytes: [UInt8] = []
        RecordFraming.append(Array("hello".utf8), to: &bytes)
        XCTAssertEqual(try EventFileReader.records(bytes), [Array("hello".utf8)])
        var corrupted = bytes
        corrupted[13] ^= 1
        XCTAssertThrowsError(try EventFileReader.records(corrupted)) {
            XCTAssertEqual(($0 as? EventFileReader.ReadError)?.description, "bad data CRC at 0")
        }
        corrupted = bytes
        corrupted[0] ^= 1
        XCTAssertThrowsError(try EventFileReader.records(corrupted)) {
            XCTAssertEqual(($0 as? EventFileReader.ReadError)?.description, "bad length CRC at 0")
        }
    }

    private func epoch(_ index: Int, evaluated: Bool, pipeline: [PipelineSiteRecord]? = nil) -> EpochRecord {
        var record = EpochRecord(epoch: index, loss: 1.0 / Double(index + 1), time: 0.5)
        record.computeTime = 0.3
        record.communicationWaitTime = 0.1
        record.allReduceTime = 0.05
        record.quantizeTime = 0.05
        record.bytesSent = 1000 * (index + 1)
        record.forwardBytesSent = 400
        record.backwardBytesSent = 300
        if evaluated {
            record.trainAccuracy = 0.9
            record.validationAccuracy = 0.8
            record.testAccuracy = 0.75
        }
        record.pipeline = pipeline
        return record
    }

    private func cycle(from epoch: Int, rows: [String: Int]) -> AssignmentCycleReport {
        var cycle = AssignmentCycleReport(epoch: epoch)
        cycle.solveSeconds = 0.01
        cycle.sites = [.init(site: MessageSite(layer: LayerIndex(0), direction: .forward), rowsByBits: rows,
                             objective: 1, variance: 1, modelledTime: 1)]
        return cycle
    }

    private func report(cycles: [AssignmentCycleReport]) -> TrainingReport {
        let configuration = TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 8, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 3, seed: 1)
        var report = TrainingReport(
            config: configuration,
            environment: RunEnvironment(ranks: 2, threadsPerRank: 1, blasCore: "test", hostCores: 1, nodes: 10,
                                        edges: 20, featureWidth: 4, classes: 2),
            epochs: [], epochTimeMedian: 0.5, peakRSSBytes: 1, peakRSSBytesPerRank: [1, 1], totalTrainingTime: 1,
            bytesSentPerEpoch: 1)
        report.assignmentCycles = cycles
        return report
    }

    func testARunsLogHoldsEveryEpochAndEachCycleOnce() throws {
        let times = LockedCounter()
        let log = try TrainingEventLog(folder: folder.path, clock: { 1_700_000_000 + Double(times.next()) })
        let name = (log.path as NSString).lastPathComponent
        XCTAssertTrue(name.hasPrefix("events.out.tfevents.1700000000."), name)
        XCTAssertEqual((log.path as NSString).deletingLastPathComponent, folder.path)

        let site = PipelineSiteRecord(layer: LayerIndex(1), direction: .forward, blockAges: [1, 2, 1, 0],
                                      zeroBlocks: 0, bypasses: 1, waits: 0, messagesByBits: ["8": 3, "4": 1],
                                      skippedSends: 0, meanDrift: nil, waitSeconds: 0)
        log.record(epoch(0, evaluated: false))
        try log.record(report(cycles: [cycle(from: 0, rows: ["8": 10])]))
        log.record(epoch(1, evaluated: true, pipeline: [site]))
        try log.record(report(cycles: [cycle(from: 0, rows: ["8": 10]), cycle(from: 2, rows: ["2": 1, "4": 3])]))
        log.record(epoch(2, evaluated: true))
        try log.finish(report(cycles: [cycle(from: 0, rows: ["8": 10]), cycle(from: 2, rows: ["2": 1, "4": 3])]))

        let events = try EventFileReader.events(inFile: log.path)
        XCTAssertEqual(events.count, 6, "header, three epochs, two cycles")
        XCTAssertEqual(events[0].fileVersion, "brain.Event:2")
        XCTAssertEqual(events.map(\.step), [0, 1, 1, 2, 3, 3])
        XCTAssertEqual(events.map(\.wallTime), (0..<6).map { 1_700_000_000 + Double($0) })

        let first = events[1]
        XCTAssertEqual(first.scalar("loss/train"), 1)
        XCTAssertNil(first.scalar("accuracy/validation"), "not evaluated")
        XCTAssertEqual(first.scalar("time/epoch_s"), 0.5)
        XCTAssertEqual(first.scalar("time/compute_s"), 0.3)
        XCTAssertEqual(first.scalar("time/halo_wait_s"), 0.1)
        XCTAssertEqual(first.scalar("time/allreduce_s"), 0.05)
        XCTAssertEqual(first.scalar("time/quantize_s"), 0.05)
        XCTAssertEqual(first.scalar("bytes/sent"), 1000)
        XCTAssertEqual(first.scalar("bytes/halo_forward"), 400)
        XCTAssertEqual(first.scalar("bytes/halo_backward"), 300)
        XCTAssertNil(first.scalar("staleness/mean_age_epochs"))

        XCTAssertEqual(events[2].scalar("adaqp/solve_s"), 0.01)
        XCTAssertEqual(events[2].scalar("bit_width/rows_8bit_share"), 1)
        XCTAssertEqual(events[2].scalar("bit_width/rows_2bit_share"), 0)

        let pipelined = events[3]
        XCTAssertEqual(pipelined.scalar("accuracy/train"), 0.9)
        XCTAssertEqual(pipelined.scalar("accuracy/validation"), 0.8)
        XCTAssertEqual(pipelined.scalar("accuracy/test"), 0.75)
        XCTAssertEqual(pipelined.scalar("bit_width/messages_8bit_share"), 0.75)
        XCTAssertEqual(pipelined.scalar("bit_width/messages_4bit_share"), 0.25)
        XCTAssertEqual(pipelined.scalar("bit_width/messages_2bit_share"), 0)
        XCTAssertEqual(pipelined.scalar("staleness/mean_age_epochs"), 1)  // (0·1 + 1·2 + 2·1) / 4
        XCTAssertEqual(pipelined.scalar("staleness/bypass_fraction"), 0.25)

        XCTAssertEqual(events[4].scalar("bit_width/rows_2bit_share"), 0.25)
        XCTAssertEqual(events[4].scalar("bit_width/rows_4bit_share"), 0.75)
        XCTAssertEqual(events[5].scalar("loss/train"), Float(1.0 / 3.0))
    }

    /// AdaQP's report holds re-assignments only; the cycle before the first (every row at 8 bits) is written at
    /// step 1 when that first re-assignment is, so the bit-width charts start where training did.
    func testTheFirstEightBitCycleIsWrittenWithTheFirstReassignment() throws {
        let log = try TrainingEventLog(folder: folder.appendingPathComponent("initial").path, clock: { 1_700_000_000 })
        log.record(epoch(0, evaluated: false))
        log.record(epoch(1, evaluated: false))
        try log.record(report(cycles: [cycle(from: 2, rows: ["2": 1, "4": 3])]))
        try log.finish(report(cycles: [cycle(from: 2, rows: ["2": 1, "4": 3]), cycle(from: 4, rows: ["4": 4])]))
        let cycles = try EventFileReader.events(inFile: log.path).filter { $0.scalar("bit_width/rows_8bit_share") != nil }
        XCTAssertEqual(cycles.map(\.step), [1, 3, 5])
        XCTAssertEqual(cycles[0].scalar("bit_width/rows_8bit_share"), 1)
        XCTAssertEqual(cycles[0].scalar("bit_width/rows_2bit_share"), 0)
        XCTAssertNil(cycles[0].scalar("adaqp/solve_s"), "no solve before the first cycle")
        XCTAssertEqual(cycles[1].scalar("bit_width/rows_4bit_share"), 0.75)
    }

    func testTheFolderIsCreatedAndTwoRunsInOneSecondGetTwoFiles() throws {
        let nested = folder.appendingPathComponent("runs/a").path
        let first = try TrainingEventLog(folder: nested, clock: { 5 })
        let second = try TrainingEventLog(folder: nested, clock: { 5 })
        XCTAssertNotEqual(first.path, second.path)
        let third = try TrainingEventLog(folder: nested + "/", clock: { 5 })
        XCTAssertEqual((third.path as NSString).deletingLastPathComponent, nested, "a trailing slash names the same folder")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: nested)).count, 3)
        for log in [first, second, third] {
            XCTAssertEqual(try EventFileReader.events(inFile: log.path).map(\.fileVersion), ["brain.Event:2"],
                           "the header is written when the log opens")
        }
    }

    /// A run that fails before its first epoch leaves no file; one that fails later keeps what it wrote.
    func testAnAbandonedLogIsDeletedOnlyWithoutEpochs() throws {
        let empty = try TrainingEventLog(folder: folder.path, clock: { 7 })
        empty.abandon()
        XCTAssertFalse(FileManager.default.fileExists(atPath: empty.path))
        let started = try TrainingEventLog(folder: folder.path, clock: { 8 })
        started.record(epoch(0, evaluated: true))
        started.abandon()
        XCTAssertEqual(try EventFileReader.events(inFile: started.path).dropFirst().compactMap { $0.scalar("loss/train") },
                       [1], "the epoch written stays")
    }

    func testAPathThatIsAFileIsRefused() throws {
        let file = folder.appendingPathComponent("plain")
        try Data("x".utf8).write(to: file)
        for path in [file.path, file.appendingPathComponent("below").path] {
            XCTAssertThrowsError(try TrainingEventLog(folder: path)) { error in
                XCTAssertEqual((error as? EventFileError)?.path, file.path)
                XCTAssertEqual((error as? EventFileError)?.reason, "it exists and is not a folder")
            }
        }
    }
}

/// A clock's tick count, safe to read from the log's `@Sendable` clock.
private final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = -1
    func next() -> Int { lock.withLock { value += 1; return value } }
}
