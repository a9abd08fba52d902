import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor
import HaloTraining
import HaloTransport
import XCTest

/// A run whose loss or gradient stops being a finite number ends with `TrainingDiverged` at that epoch, on every
/// rank together, after handing over a report of the finite epochs before it.
final class DivergenceTests: XCTestCase {
    private static let data = try! SyntheticGraphSpec(
        parsing: "synthetic:nodes=400,classes=3,features=8,degree=6,seed=3").generate()

    private func configuration(learningRate: Float, epochs: Int = 5, method: TrainingMethod = .vanilla) -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 16, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: learningRate), epochs: epochs, seed: 2, method: method)
    }

    private func environment(_ d: Dataset, ranks: Int) -> RunEnvironment {
        RunEnvironment(ranks: ranks, threadsPerRank: 1, blasCore: "test", hostCores: 1, nodes: d.nodeCount,
                       edges: d.graph.edgeCount, featureWidth: d.featureWidth, classes: d.classCount)
    }

    /// Trains one process; returns the divergence (if any) and the reports handed to `onProgress`.
    private func train(_ data: Dataset, _ config: TrainingConfiguration) -> (TrainingDiverged?, [TrainingReport]) {
        var progress: [TrainingReport] = []
        do {
            let trainer = try Trainer(configuration: config, shard: .wholeGraph(data, aggregation: .gcn),
                                      classCount: data.classCount, pool: .serial)
            _ = try trainer.train(environment: environment(data, ranks: 1), onProgress: { progress.append($0) })
            return (nil, progress)
        } catch {
            guard let diverged = error as? TrainingDiverged else {
                XCTFail("unexpected error \(error)")
                return (nil, progress)
            }
            return (diverged, progress)
        }
    }

    /// Adam's first update moves every weight by about the learning rate: 1e30 makes the next forward pass overflow.
    func testHugeLearningRateStopsAtTheFirstNonFiniteLossKeepingTheEpochsBefore() throws {
        let (diverged, progress) = train(Self.data, configuration(learningRate: 1e30))
        let error = try XCTUnwrap(diverged, "a learning rate of 1e30 must diverge")
        XCTAssertEqual(error.epoch, 1)
        guard case .loss(let loss) = error.cause else { return XCTFail("\(error)") }
        XCTAssertFalse(loss.isFinite)
        XCTAssertTrue(error.description.hasPrefix("training diverged at epoch 2/5: the training loss is "), error.description)

        let stopped = try XCTUnwrap(progress.last)
        XCTAssertFalse(stopped.complete)
        XCTAssertEqual(stopped.stopReason, error.description)
        XCTAssertEqual(stopped.epochs.map(\.epoch), [0])
        XCTAssertTrue(stopped.epochs[0].loss.isFinite)
        // Valid JSON: the encoder refuses NaN, so this throws if any non-finite value slipped in.
        let json = try JSONSerialization.jsonObject(with: stopped.jsonData()) as? [String: Any]
        XCTAssertEqual(json?["complete"] as? Bool, false)
        XCTAssertEqual(json?["stop_reason"] as? String, error.description)
    }

    func testSaneLearningRateDoesNotStop() throws {
        let (diverged, _) = train(Self.data, configuration(learningRate: 0.01))
        XCTAssertNil(diverged)
    }

    /// Features near Float's largest value overflow in the first layer: the run stops at epoch 0 with nothing kept.
    func testHugeFeaturesStopAtTheFirstEpoch() throws {
        var data = Self.data
        guard case .dense(var features) = data.features else { throw XCTSkip("the synthetic features are dense") }
        features.storage = features.storage.map { $0 >= 0 ? 3e38 : -3e38 }
        data.features = .dense(features)
        let (diverged, progress) = train(data, configuration(learningRate: 0.01))
        XCTAssertEqual(try XCTUnwrap(diverged).epoch, 0)
        let stopped = try XCTUnwrap(progress.last)
        XCTAssertEqual(stopped.epochs.count, 0)
        XCTAssertNoThrow(try stopped.jsonData())
    }

    /// Ranks stop at the same step because they decide on all-reduced values: none is left waiting for another.
    func testEveryRankStopsAtTheSameEpoch() throws {
        let data = Self.data
        let partitioning = try Partitioner.partition(graph: data.graph, parts: 3, method: .metis, seed: 1)
        let parts = Part.build(dataset: data, partitioning: partitioning)
        let env = environment(data, ranks: 3)
        for method in [TrainingMethod.vanilla, .adaqp, .pipeqs] {
            let config = configuration(learningRate: 1e30, method: method)
            let epochs = try LocalTransport.run(worldSize: 3) { transport -> Int? in
                do {
                    _ = try RankTraining.run(part: parts[transport.rank], transport: transport, configuration: config,
                                             environment: env, pool: .serial)
                    return nil
                } catch let diverged as TrainingDiverged {
                    return diverged.epoch
                }
            }
            XCTAssertEqual(epochs, [1, 1, 1], "\(method)")
        }
    }
}
