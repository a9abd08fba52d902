import Foundation
import HaloNN
@testable import HaloTraining

/// Reports as `halo train --json-out` writes them (the real encoding, `TrainingReport.jsonData`), for the page.
enum ReportFixtures {
    static func report(method: TrainingMethod, dataset: String = "/data/cora", parts: Int = 2, epochs: Int = 6,
                       done: Int? = nil) -> TrainingReport {
        let configuration = TrainingConfiguration(
            dataset: dataset, model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 16, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: epochs, seed: 7, method: method)
        let records = (0..<(done ?? epochs)).map { index -> EpochRecord in
            var record = EpochRecord(epoch: index, loss: 2.0 / Double(index + 1), time: 0.02 + 0.001 * Double(index))
            record.computeTime = 0.012
            record.communicationWaitTime = 0.004
            record.allReduceTime = 0.002
            record.quantizeTime = method == .vanilla ? 0 : 0.001
            record.bytesSent = 50_000 + 1000 * index
            if index % 2 == 1 || index == epochs - 1 {
                record.trainAccuracy = 0.5 + 0.05 * Double(index)
                record.validationAccuracy = 0.4 + 0.05 * Double(index)
                record.testAccuracy = 0.38 + 0.05 * Double(index)
            }
            if method == .pipeqs {
                record.pipeline = [PipelineSiteRecord(
                    layer: LayerIndex(1), direction: .forward, blockAges: [0, 3, 1, 0], zeroBlocks: 0, bypasses: 1,
                    waits: 0, messagesByBits: index < 3 ? ["8": 4] : ["4": 2, "8": 2], skippedSends: 0,
                    meanDrift: 0.1, waitSeconds: 0)]
            }
            return record
        }
        var report = TrainingReport(
            config: configuration,
            environment: RunEnvironment(ranks: parts, threadsPerRank: 1, blasCore: "test", hostCores: 2, nodes: 2708,
                                        edges: 10556, featureWidth: 1433, classes: 7),
            epochs: records, bestValidationAccuracy: records.compactMap(\.validationAccuracy).max(),
            testAccuracyAtBestValidation: records.last { $0.validationAccuracy != nil }?.testAccuracy,
            epochTimeMedian: 0.021, peakRSSBytes: 1, peakRSSBytesPerRank: [1], totalTrainingTime: 0.2,
            bytesSentPerEpoch: 52_000)
        report.complete = done == nil
        if method == .adaqp {
            // As AdaptivePrecision records them: re-assignments only; epochs 1–3 ran at 8 bits, untraced.
            var first = AssignmentCycleReport(epoch: 3)
            first.sites = [site(["2": 30, "4": 50]), site(["8": 20])]
            var second = AssignmentCycleReport(epoch: 5)
            second.sites = [site(["2": 60, "4": 40])]
            report.assignmentCycles = [first, second]
        }
        return report
    }

    private static func site(_ rows: [String: Int]) -> AssignmentCycleReport.Site {
        .init(site: MessageSite(layer: LayerIndex(0), direction: .forward), rowsByBits: rows, objective: 1,
              variance: 1, modelledTime: 1)
    }

    /// The report as read back from its JSON, as `halo report` reads it.
    static func recorded(_ report: TrainingReport, file: String = "run.json") throws -> RecordedRun {
        try RecordedRun.decode(report.jsonData(), path: file)
    }
}
