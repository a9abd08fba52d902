import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor
import HaloTraining
import HaloTransport
import XCTest

/// A dataset with no training node has nothing to learn from: training is refused, not reported as a result.
final class EmptyTrainingSplitTests: XCTestCase {
    private func configuration() -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "no-train", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 8, dropout: 0),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 3, seed: 1)
    }

    private func environment(_ d: Dataset, ranks: Int) -> RunEnvironment {
        RunEnvironment(ranks: ranks, threadsPerRank: 1, blasCore: "test", hostCores: 1, nodes: d.nodeCount,
                       edges: d.graph.edgeCount, featureWidth: d.featureWidth, classes: d.classCount)
    }

    private func data() throws -> Dataset {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=300,classes=3,features=8,degree=6,train=0,seed=2").generate()
        XCTAssertEqual(data.split.trainCount, 0)
        XCTAssertGreaterThan(data.split.validationCount, 0)
        return data
    }

    func testOneProcessRefusesBeforeTheFirstEpoch() throws {
        let data = try data()
        let trainer = try Trainer(configuration: configuration(), shard: .wholeGraph(data, aggregation: .gcn),
                              classCount: data.classCount, pool: .serial)
        var epochs = 0
        XCTAssertThrowsError(try trainer.train(environment: environment(data, ranks: 1), onEpoch: { _ in epochs += 1 })) {
            XCTAssertEqual(($0 as? TrainingSetupError)?.message,
                           "the training split of no-train is empty: no node is marked for training")
        }
        XCTAssertEqual(epochs, 0)
    }

    /// Each rank's own parts may hold training nodes or not; the refusal depends on the global count alone, so
    /// every rank refuses and none waits.
    func testEveryRankRefuses() throws {
        let data = try data()
        let parts = Part.build(dataset: data, partitioning: try Partitioner.partition(graph: data.graph, parts: 2,
                                                                                      method: .metis, seed: 1))
        let config = configuration(), env = environment(data, ranks: 2)
        let refused = try LocalTransport.run(worldSize: 2) { transport -> Bool in
            do {
                _ = try RankTraining.run(part: parts[transport.rank], transport: transport, configuration: config,
                                         environment: env, pool: .serial)
                return false
            } catch is TrainingSetupError {
                return true
            }
        }
        XCTAssertEqual(refused, [true, true])
    }
}
