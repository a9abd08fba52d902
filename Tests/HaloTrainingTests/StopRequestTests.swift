import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor
import HaloTraining
import HaloTransport
import XCTest

/// A `StopRequest` ends a run after the epoch in which it is seen, on every rank together (the decision rides on an
/// all-reduce), with a report of the epochs done that says why it is incomplete.
final class StopRequestTests: XCTestCase {
    private static let data = try! SyntheticGraphSpec(
        parsing: "synthetic:nodes=400,classes=3,features=8,degree=6,seed=3").generate()

    private func configuration(epochs: Int, method: TrainingMethod = .vanilla, evaluateEvery: Int = 1) -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 16, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: epochs, seed: 2,
            evaluateEvery: evaluateEvery, method: method)
    }

    private func environment(ranks: Int) -> RunEnvironment {
        let d = Self.data
        return RunEnvironment(ranks: ranks, threadsPerRank: 1, blasCore: "test", hostCores: 1, nodes: d.nodeCount,
                              edges: d.graph.edgeCount, featureWidth: d.featureWidth, classes: d.classCount)
    }

    func testRequestIsKeptWithItsFirstReason() {
        let request = StopRequest()
        XCTAssertFalse(request.isRequested)
        XCTAssertTrue(request.request(reason: "first"))
        XCTAssertFalse(request.request(reason: "second"))
        XCTAssertEqual(request.reason, "first")
    }

    /// A request made before training stops it after the first epoch, which is evaluated although --eval-every
    /// would skip it.
    func testRequestBeforeTrainingStopsAfterTheFirstEpochEvaluated() throws {
        let request = StopRequest()
        request.request(reason: "interrupted by test")
        let trainer = try Trainer(configuration: configuration(epochs: 50, evaluateEvery: 10),
                              shard: .wholeGraph(Self.data, aggregation: .gcn), classCount: Self.data.classCount, pool: .serial)
        let report = try trainer.train(environment: environment(ranks: 1), stopRequest: request)
        XCTAssertFalse(report.complete)
        XCTAssertEqual(report.stopReason, "interrupted by test after epoch 1/50")
        XCTAssertEqual(report.epochs.map(\.epoch), [0])
        XCTAssertNotNil(report.epochs[0].validationAccuracy)
        XCTAssertNotNil(report.bestValidationAccuracy)
        let json = try JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any]
        XCTAssertEqual(json?["complete"] as? Bool, false)
        XCTAssertEqual(json?["stop_reason"] as? String, "interrupted by test after epoch 1/50")
    }

    /// Each rank has its own request, as MPI processes do, and only rank 1's is set, during epoch `k`'s progress
    /// callback (after that epoch's all-reduce): every rank stops after epoch k + 1, the first whose all-reduce sees
    /// it, and the pipelined exchange is drained without hanging.
    func testRequestOnOneRankStopsEveryRankAfterTheSameEpoch() throws {
        let parts = Part.build(dataset: Self.data,
                               partitioning: try Partitioner.partition(graph: Self.data.graph, parts: 3, method: .metis, seed: 1))
        let env = environment(ranks: 3)
        let k = 4
        for method in [TrainingMethod.vanilla, .pipeqs, .pipegcn] {
            let config = configuration(epochs: 50, method: method)
            let reports = try LocalTransport.run(worldSize: 3) { transport -> TrainingReport in
                let request = StopRequest()
                return try RankTraining.run(
                    part: parts[transport.rank], transport: transport, configuration: config, environment: env,
                    pool: .serial, stopRequest: request,
                    onEpoch: { record in
                        if transport.rank == 1 && record.epoch == k { request.request(reason: "interrupted by test") }
                    })
            }
            for (rank, report) in reports.enumerated() {
                XCTAssertFalse(report.complete, "\(method) rank \(rank)")
                XCTAssertEqual(report.epochs.map(\.epoch), Array(0...(k + 1)), "\(method) rank \(rank)")
            }
            XCTAssertEqual(reports[1].stopReason, "interrupted by test after epoch \(k + 2)/50", "\(method)")
            for rank in [0, 2] {
                XCTAssertEqual(reports[rank].stopReason, "stopped at another rank's request after epoch \(k + 2)/50",
                               "\(method) rank \(rank)")
            }
            XCTAssertEqual(reports[0].epochs.map(\.loss), reports[2].epochs.map(\.loss), "\(method): one global loss")
        }
    }

    func testRunWithoutRequestIsComplete() throws {
        let trainer = try Trainer(configuration: configuration(epochs: 3),
                              shard: .wholeGraph(Self.data, aggregation: .gcn), classCount: Self.data.classCount, pool: .serial)
        let report = try trainer.train(environment: environment(ranks: 1), stopRequest: StopRequest())
        XCTAssertTrue(report.complete)
        XCTAssertNil(report.stopReason)
        XCTAssertEqual(report.epochs.count, 3)
    }
}
