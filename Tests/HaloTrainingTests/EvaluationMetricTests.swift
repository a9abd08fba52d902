import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor
import HaloTestSupport
@testable import HaloTraining
import HaloTransport
import XCTest

/// The metric a task is judged by: ROC-AUC against a naive reference, the same on any number of ranks, the
/// standard choice per task, and a metric that cannot judge a task refused.
final class EvaluationMetricTests: XCTestCase {
    /// P(score of a positive > score of a negative) + ½ P(equal), over every pair.
    private func naiveArea(_ scores: [Float], _ positive: [Bool]) -> Double? {
        var wins = 0.0, pairs = 0.0
        for i in scores.indices where positive[i] {
            for j in scores.indices where !positive[j] {
                pairs += 1
                if scores[i] > scores[j] { wins += 1 } else if scores[i] == scores[j] { wins += 0.5 }
            }
        }
        return pairs > 0 ? wins / pairs : nil
    }

    func testROCAreaMatchesThePairwiseDefinitionWithTies() {
        var rng = TestRNG(seed: 12)
        for n in [1, 2, 7, 100, 513] {
            // Scores from a small set, so that ties are frequent, within and across the classes.
            let scores = (0..<n).map { _ in Float(Int(rng.next() % 9)) / 4 - 1 }
            let positive = (0..<n).map { _ in rng.next() % 3 == 0 }
            let area = ROCCurveArea.area(scores: scores, positive: positive)
            let reference = naiveArea(scores, positive)
            XCTAssertEqual(area == nil, reference == nil, "n=\(n)")
            if let area, let reference { XCTAssertEqual(area, reference, accuracy: 1e-12, "n=\(n)") }
        }
        XCTAssertEqual(ROCCurveArea.area(scores: [0.1, 0.9, 0.5, 0.7], positive: [false, true, false, true]), 1)
        XCTAssertEqual(ROCCurveArea.area(scores: [0.1, 0.9], positive: [true, false]), 0)
        XCTAssertNil(ROCCurveArea.area(scores: [0.1, 0.9], positive: [true, true]))
    }

    func testTheStandardMetricOfATask() {
        XCTAssertEqual(EvaluationMetric.standard(for: .singleLabel(classes: [0, 1], classCount: 2)), .rocAUC)
        XCTAssertEqual(EvaluationMetric.standard(for: .singleLabel(classes: [0, 2], classCount: 7)), .accuracy)
        XCTAssertEqual(EvaluationMetric.standard(for: .multiLabel(targets: [0, 1], classCount: 2)), .microF1)
        XCTAssertNotNil(EvaluationMetric.rocAUC.unsuitability(for: .singleLabel(classes: [0], classCount: 3)))
        XCTAssertNotNil(EvaluationMetric.accuracy.unsuitability(for: .multiLabel(targets: [0, 1], classCount: 2)))
        XCTAssertNil(EvaluationMetric.microF1.unsuitability(for: .singleLabel(classes: [0], classCount: 3)))
    }

    private static let binary = try! SyntheticGraphSpec(
        parsing: "synthetic:nodes=800,classes=2,features=12,degree=6,signal=0.5,seed=2").generate()

    private func configuration(_ metric: EvaluationMetric?) -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "binary",
            model: ModelConfiguration(kind: .sage, layers: 2, hiddenWidth: 16, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 6, seed: 4, metric: metric)
    }

    private func environment(ranks: Int) -> RunEnvironment {
        let d = Self.binary
        return RunEnvironment(ranks: ranks, threadsPerRank: 1, blasCore: BLASRuntime.coreName, hostCores: 1,
                              nodes: d.nodeCount, edges: d.graph.edgeCount, featureWidth: d.featureWidth, classes: d.classCount)
    }

    private func train(_ config: TrainingConfiguration, ranks: Int) throws -> TrainingReport {
        if ranks == 1 {
            return try Trainer(configuration: config, shard: .wholeGraph(Self.binary, aggregation: .mean),
                               classCount: 2, pool: .serial).train(environment: environment(ranks: 1))
        }
        let partitioning = try Partitioner.partition(graph: Self.binary.graph, parts: ranks, method: .metis, seed: 1)
        let parts = Part.build(dataset: Self.binary, partitioning: partitioning)
        let env = environment(ranks: ranks)
        return try LocalTransport.run(worldSize: ranks) { transport in
            try RankTraining.run(part: parts[transport.rank], transport: transport, configuration: config,
                                 environment: env, pool: .serial)
        }[0]
    }

    /// Every rank gathers every rank's scores: the area is the one a single process computes (up to the float
    /// rounding of the logits themselves).
    func testROCAreaOfABinaryTaskIsTheDefaultAndAgreesAcrossRanks() throws {
        let single = try train(configuration(nil), ranks: 1)
        XCTAssertEqual(single.metric, .rocAUC)
        let distributed = try train(configuration(nil), ranks: 3)
        XCTAssertEqual(distributed.metric, .rocAUC)
        for (a, b) in zip(single.epochs, distributed.epochs) {
            XCTAssertEqual(try XCTUnwrap(b.validationAccuracy), try XCTUnwrap(a.validationAccuracy), accuracy: 1e-3)
            XCTAssertEqual(try XCTUnwrap(b.testAccuracy), try XCTUnwrap(a.testAccuracy), accuracy: 1e-3)
        }
        // Accuracy asked for explicitly is what the report says.
        let accuracy = try train(configuration(.accuracy), ranks: 3)
        XCTAssertEqual(accuracy.metric, .accuracy)
        XCTAssertNotEqual(accuracy.epochs.last?.validationAccuracy, distributed.epochs.last?.validationAccuracy)
    }

    func testAMetricThatCannotJudgeTheTaskIsRefused() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=200,classes=4,features=6,degree=4,seed=1").generate()
        var config = configuration(.rocAUC)
        config.epochs = 2
        let trainer = try Trainer(configuration: config, shard: .wholeGraph(data, aggregation: .mean), classCount: 4, pool: .serial)
        XCTAssertThrowsError(try trainer.train(environment: environment(ranks: 1))) { error in
            XCTAssertTrue(String(describing: error).contains("roc-auc needs a binary task; this one has 4 classes"), "\(error)")
        }
    }
}
