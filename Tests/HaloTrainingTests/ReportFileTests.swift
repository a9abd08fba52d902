import Foundation
import HaloGraph
import HaloNN
import HaloTensor
@testable import HaloTraining
import XCTest

/// `--json-out`'s file: refused before any work when it cannot be written, replaced atomically, and kept current
/// while a run goes on.
final class ReportFileTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("halo-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    private func refusal(_ path: String) -> ReportFileError? {
        do {
            _ = try ReportFile(path: path)
            return nil
        } catch {
            return error as? ReportFileError
        }
    }

    func testUnwritableDestinationsAreRefusedWithTheReason() throws {
        let missing = folder.appendingPathComponent("no-such-folder/report.json").path
        XCTAssertEqual(refusal(missing)?.reason, "folder \(folder.path)/no-such-folder does not exist")
        XCTAssertEqual(refusal(folder.path)?.reason, "it is a directory")
        XCTAssertEqual(refusal("/dev/null")?.reason, "it exists and is not a regular file")
        let file = folder.appendingPathComponent("plain")
        try Data("x".utf8).write(to: file)
        XCTAssertEqual(refusal(file.appendingPathComponent("report.json").path)?.reason, "\(file.path) is not a folder")
        XCTAssertEqual(refusal("")?.reason, "the path is empty")
        XCTAssertEqual(refusal(missing)?.description,
                       "cannot write the report to \(missing): folder \(folder.path)/no-such-folder does not exist")
        // The check creates nothing it leaves behind.
        XCTAssertNil(refusal(folder.appendingPathComponent("fine.json").path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["plain"])
    }

    /// Permission bits cannot be trusted (root ignores them), so the check creates a file. /sys refuses even root.
    func testAFolderThatRefusesNewFilesIsRefused() throws {
        let locked = folder.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: locked.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: locked.path) }
        var refusedOne = false
        for candidate in [locked.path, "/sys"] where !Self.canCreateFile(in: candidate) {
            let reason = try XCTUnwrap(refusal(candidate + "/report.json")?.reason, candidate)
            XCTAssertTrue(reason.hasPrefix("cannot create files in folder \(candidate): "), reason)
            refusedOne = true
        }
        if !refusedOne { throw XCTSkip("no folder here refuses new files to this user") }
    }

    private static func canCreateFile(in folder: String) -> Bool {
        let probe = folder + "/.halo-probe-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: probe, contents: nil) else { return false }
        try? FileManager.default.removeItem(atPath: probe)
        return true
    }

    func testWriteReplacesTheFileAndLeavesNoTemporaryFile() throws {
        let path = folder.appendingPathComponent("report.json").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        let file = try ReportFile(path: path)
        try file.write(Data("new".utf8))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["report.json"])
    }

    func testWritingThroughALinkReplacesTheLinkedFile() throws {
        let real = folder.appendingPathComponent("real.json")
        let link = folder.appendingPathComponent("link.json")
        try Data("old".utf8).write(to: real)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: real)
        try ReportFile(path: link.path).write(Data("new".utf8))
        XCTAssertEqual(try String(contentsOf: real, encoding: .utf8), "new")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), real.path)
    }

    // MARK: Reports of a run in progress

    private func smallRun(epochs: Int, evaluateEvery: Int) throws -> (Trainer, RunEnvironment) {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=300,classes=3,features=8,degree=6,seed=4").generate()
        let configuration = TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 8, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: epochs, seed: 1, evaluateEvery: evaluateEvery)
        let trainer = try Trainer(configuration: configuration, shard: .wholeGraph(data, aggregation: .gcn),
                              classCount: data.classCount, pool: .serial)
        let environment = RunEnvironment(ranks: 1, threadsPerRank: 1, blasCore: "test", hostCores: 1,
                                         nodes: data.nodeCount, edges: data.graph.edgeCount,
                                         featureWidth: data.featureWidth, classes: data.classCount)
        return (trainer, environment)
    }

    func testTrainerReportsProgressAfterEveryEvaluatedEpochButTheLast() throws {
        let (trainer, environment) = try smallRun(epochs: 7, evaluateEvery: 2)
        var progress: [TrainingReport] = []
        let final = try trainer.train(environment: environment, onProgress: { progress.append($0) })
        XCTAssertEqual(progress.map(\.epochs.count), [2, 4, 6], "after epochs 1, 3 and 5; epoch 6 is the final report")
        XCTAssertTrue(progress.allSatisfy { !$0.complete && $0.stopReason == nil })
        XCTAssertTrue(final.complete)
        XCTAssertEqual(final.epochs.count, 7)
        XCTAssertEqual(progress.last?.epochs, Array(final.epochs.prefix(6)))
        XCTAssertEqual(progress.last?.bestValidationEpoch.map { $0 <= 5 }, true)
    }

    /// The compact progressive encoding splices epochs encoded once into the rest of the report: it must say
    /// exactly what the full encoding says.
    func testProgressiveWritesHoldTheSameJSONAsTheFullEncoding() throws {
        let (trainer, environment) = try smallRun(epochs: 5, evaluateEvery: 1)
        let path = folder.appendingPathComponent("report.json").path
        let file = try ReportFile(path: path)
        var checked = 0
        func parsed(_ data: Data) throws -> NSDictionary {
            try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? NSDictionary)
        }
        let final = try trainer.train(environment: environment, onProgress: { report in
            try file.writeProgress(report)
            // The write happens in the background: wait until the file holds this report, then compare.
            let written = try self.waitForWrite(path, epochs: report.epochs.count)
            XCTAssertEqual(try parsed(written), try parsed(report.jsonData()), "after epoch \(report.epochs.count - 1)")
            checked += 1
        })
        XCTAssertEqual(checked, 4)
        try file.write(final)
        let document = try parsed(Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(document["complete"] as? Bool, true)
        XCTAssertEqual((document["epochs"] as? [Any])?.count, 5)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["report.json"])
    }

    private func waitForWrite(_ path: String, epochs: Int) throws -> Data {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: path),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               (object["epochs"] as? [Any])?.count == epochs {
                return data
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
        XCTFail("the report of \(epochs) epochs was not written within 10 s")
        return Data()
    }
}
