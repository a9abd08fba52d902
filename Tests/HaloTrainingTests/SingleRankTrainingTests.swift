import HaloGraph
import HaloNN
import HaloTensor
import HaloTraining
import XCTest

final class SingleRankTrainingTests: XCTestCase {
    /// A small homophilous synthetic graph whose features alone are weak: learning it well needs the graph.
    private func smallTask(seed: UInt64 = 3) throws -> Dataset {
        try SyntheticGraphSpec(parsing: "synthetic:nodes=1500,classes=4,features=16,degree=10,homophily=0.85,signal=1.0,seed=\(seed)")
            .generate()
    }

    private func configuration(_ kind: ModelConfiguration.Kind, epochs: Int, seed: UInt64 = 0) -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: kind, layers: 2, hiddenWidth: 32, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: epochs, seed: seed)
    }

    private func environment(_ d: Dataset) -> RunEnvironment {
        RunEnvironment(ranks: 1, threadsPerRank: 1, blasCore: BLASRuntime.coreName, hostCores: 1, nodes: d.nodeCount,
                       edges: d.graph.edgeCount, featureWidth: d.featureWidth, classes: d.classCount)
    }

    func testGCNAndSAGEReachHighAccuracyOnSyntheticGraph() throws {
        let data = try smallTask()
        for kind in ModelConfiguration.Kind.allCases {
            let trainer = try Trainer(configuration: configuration(kind, epochs: 60),
                                  shard: .wholeGraph(data, aggregation: kind.aggregation),
                                  classCount: data.classCount, pool: .serial)
            let report = try trainer.train(environment: environment(data))
            let test = try XCTUnwrap(report.testAccuracyAtBestValidation)
            XCTAssertGreaterThan(test, 0.9, "\(kind) test accuracy \(test)")
            XCTAssertLessThan(report.epochs.last!.loss, report.epochs.first!.loss / 3, "\(kind) loss must fall")
        }
    }

    func testGraphBeatsFeaturesAlone() throws {
        // One layer of a GCN on a graph with no edges is a linear classifier on the features: it must do clearly
        // worse than the GCN on the real graph, or the synthetic task would not test message passing at all.
        let data = try smallTask()
        var isolated = data
        isolated.graph = Graph(nodeCount: data.nodeCount, sources: [], destinations: [])
        func accuracy(_ d: Dataset) throws -> Double {
            let trainer = try Trainer(configuration: configuration(.gcn, epochs: 60), shard: .wholeGraph(d, aggregation: .gcn),
                                  classCount: d.classCount, pool: .serial)
            return try XCTUnwrap(trainer.train(environment: environment(d)).testAccuracyAtBestValidation)
        }
        let withGraph = try accuracy(data), withoutGraph = try accuracy(isolated)
        XCTAssertGreaterThan(withGraph, withoutGraph + 0.1, "graph \(withGraph) vs features only \(withoutGraph)")
    }

    func testSameSeedSameRunAndThreadCountDoesNotMatter() throws {
        let data = try smallTask()
        func losses(_ pool: ComputePool, seed: UInt64) throws -> [Double] {
            let trainer = try Trainer(configuration: configuration(.sage, epochs: 5, seed: seed),
                                  shard: .wholeGraph(data, aggregation: .mean), classCount: data.classCount, pool: pool)
            return try trainer.train(environment: environment(data)).epochs.map(\.loss)
        }
        let a = try losses(.serial, seed: 7), b = try losses(.serial, seed: 7), c = try losses(ComputePool(threads: 2), seed: 7)
        XCTAssertEqual(a, b)
        for (x, y) in zip(a, c) { XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(x))) }
        XCTAssertNotEqual(try losses(.serial, seed: 8), a)
    }

    /// Storing the rows in locality order is a layout choice: randomness follows the dataset's node ids, so the
    /// run is the same model as in dataset order, up to floating-point summation order.
    func testLocalityOrderTrainsTheSameModel() throws {
        let data = try smallTask(seed: 5)
        func run(_ localityOrder: Bool) throws -> TrainingReport {
            let trainer = try Trainer(configuration: configuration(.gcn, epochs: 8),
                                  shard: .wholeGraph(data, aggregation: .gcn, localityOrder: localityOrder),
                                  classCount: data.classCount, pool: .serial)
            return try trainer.train(environment: environment(data))
        }
        let ordered = try run(true), given = try run(false)
        for (a, b) in zip(ordered.epochs, given.epochs) {
            XCTAssertEqual(a.loss, b.loss, accuracy: 1e-5 * abs(b.loss), "epoch \(a.epoch)")
            XCTAssertEqual(try XCTUnwrap(a.testAccuracy), try XCTUnwrap(b.testAccuracy), accuracy: 1.0 / 300)
        }
        let shard = RankShard.wholeGraph(data, aggregation: .gcn)
        XCTAssertNotEqual(shard.nodeIDs, (0..<Int32(data.nodeCount)).map { $0 }, "the synthetic graph's ids are not already in RCM order")
        XCTAssertEqual(shard.nodeIDs.sorted(), (0..<Int32(data.nodeCount)).map { $0 })
    }

    /// The synthetic task with indicator features (1 where the Gaussian feature is positive): sparse, one value.
    private func indicatorTask() throws -> (Dataset, SparseMatrix) {
        var data = try smallTask(seed: 6)
        guard case .dense(let x) = data.features else { throw XCTSkip("synthetic features are dense") }
        var triplets: [(row: Int, col: Int, value: Float)] = []
        for i in 0..<x.rows { for j in 0..<x.cols where x[i, j] > 0 { triplets.append((i, j, 1)) } }
        let indicator = SparseMatrix(rows: x.rows, cols: x.cols, triplets: triplets)
        data.features = .sparse(indicator)
        return (data, indicator)
    }

    func testFeatureRepresentationFollowsDensityValuesAndDropout() throws {
        let (_, indicator) = try indicatorTask()
        guard case .sparse(let lookup) = LayerInput(.sparse(indicator)) else { return XCTFail("indicator features stay sparse") }
        XCTAssertNotNil(lookup.binary, "half-dense indicator features are multiplied by table lookup")
        guard case .dense = LayerInput(.sparse(indicator), inputDropout: true) else {
            return XCTFail("with input dropout, half-dense indicator features are densified for GEMM")
        }
        var valued = indicator
        valued.values = valued.values.indices.map { Float($0 % 7) + 1 }
        guard case .dense = LayerInput(.sparse(valued)) else { return XCTFail("half-dense valued features are densified for GEMM") }
        let rare = SparseMatrix(rows: 100, cols: 100, triplets: (0..<100).map { ($0, ($0 * 37) % 100, 1) })
        guard case .sparse(let csr) = LayerInput(.sparse(rare)) else { return XCTFail("1% dense features stay sparse") }
        XCTAssertNil(csr.binary, "CSR is faster at 1% density")

        // The rules themselves, at the thresholds.
        func rep(_ density: Double, indicator: Bool, fits: Bool = true, dropout: Bool = false) -> FeatureRepresentation {
            FeatureStatistics(sparse: true, nonZeros: Int(density * 10_000), cells: 10_000, indicator: indicator,
                              denseCopyFits: fits).representation(inputDropout: dropout)
        }
        XCTAssertEqual(rep(FeatureStatistics.lookupDensity, indicator: true), .lookup)
        XCTAssertEqual(rep(FeatureStatistics.lookupDensity - 0.01, indicator: true), .csr)
        XCTAssertEqual(rep(FeatureStatistics.denseDensity, indicator: false), .dense)
        XCTAssertEqual(rep(FeatureStatistics.denseDensity, indicator: false, fits: false), .csr)
        XCTAssertEqual(rep(FeatureStatistics.denseDensity - 0.01, indicator: false), .csr)
        XCTAssertEqual(rep(0.5, indicator: true, dropout: true), .dense)
        XCTAssertEqual(FeatureStatistics(.dense(Matrix(rows: 2, cols: 2))).representation(inputDropout: false), .dense)
        // Combining parts: counts add, properties must hold everywhere.
        let a = FeatureStatistics(sparse: true, nonZeros: 50, cells: 100, indicator: true, denseCopyFits: true)
        let b = FeatureStatistics(sparse: true, nonZeros: 0, cells: 100, indicator: true, denseCopyFits: false)
        let both = FeatureStatistics.combining([a, b])
        XCTAssertEqual(both, FeatureStatistics(sparse: true, nonZeros: 50, cells: 200, indicator: true, denseCopyFits: false))
    }

    /// Table lookup is a kernel choice: training on indicator features gives the run of the CSR path, up to
    /// summation order.
    func testIndicatorFeaturesTrainLikeCSR() throws {
        let (data, _) = try indicatorTask()
        func run(lookup: Bool) throws -> TrainingReport {
            var shard = RankShard.wholeGraph(data, aggregation: .gcn)
            guard case .sparse(let features) = shard.features, features.binary != nil else {
                XCTFail("expected the lookup representation")
                return try XCTUnwrap(nil)
            }
            if !lookup { shard.features = .sparse(SparseFeatures(features.matrix)) }
            let trainer = try Trainer(configuration: configuration(.gcn, epochs: 6), shard: shard,
                                  classCount: data.classCount, pool: ComputePool(threads: 2))
            return try trainer.train(environment: environment(data))
        }
        let lookup = try run(lookup: true), csr = try run(lookup: false)
        XCTAssertEqual(lookup.featureRepresentation, .lookup)
        XCTAssertEqual(csr.featureRepresentation, .csr)
        XCTAssertEqual(lookup.epochs.count, 6)
        for (a, b) in zip(lookup.epochs, csr.epochs) {
            XCTAssertEqual(a.loss, b.loss, accuracy: 1e-5 * abs(b.loss), "epoch \(a.epoch)")
        }
    }

    func testReportHasTheDocumentedFields() throws {
        let data = try smallTask()
        let trainer = try Trainer(configuration: configuration(.gcn, epochs: 3), shard: .wholeGraph(data, aggregation: .gcn),
                              classCount: data.classCount, pool: .serial)
        let json = try JSONSerialization.jsonObject(with: trainer.train(environment: environment(data)).jsonData()) as? [String: Any]
        let report = try XCTUnwrap(json)
        for key in ["config", "epochs", "best_val_accuracy", "test_accuracy_at_best_val", "final_test_accuracy",
                    "epoch_time_median_s", "peak_rss_bytes"] {
            XCTAssertNotNil(report[key], "missing \(key)")
        }
        let epochs = try XCTUnwrap(report["epochs"] as? [[String: Any]])
        XCTAssertEqual(epochs.count, 3)
        for key in ["epoch", "loss", "train_acc", "val_acc", "test_acc", "time_s"] {
            XCTAssertNotNil(epochs[0][key], "epoch record misses \(key)")
        }
        XCTAssertGreaterThan(report["peak_rss_bytes"] as? Int ?? 0, 0)
        XCTAssertEqual(report["feature_representation"] as? String, "dense", "synthetic features are dense")
    }

    func testMultiLabelTrainingUsesMicroF1() throws {
        // Two labels per node derived from the class: micro-F1 must become high.
        let base = try smallTask()
        guard case .singleLabel(let classes, let k) = base.labels else { return XCTFail("expected single-label") }
        var targets = [UInt8](repeating: 0, count: classes.count * k)
        for (v, c) in classes.enumerated() {
            targets[v * k + Int(c)] = 1
            targets[v * k + (Int(c) + 1) % k] = 1
        }
        var data = base
        data.labels = .multiLabel(targets: targets, classCount: k)
        let trainer = try Trainer(configuration: configuration(.gcn, epochs: 60), shard: .wholeGraph(data, aggregation: .gcn),
                              classCount: k, pool: .serial)
        let f1 = try XCTUnwrap(trainer.train(environment: environment(data)).testAccuracyAtBestValidation)
        XCTAssertGreaterThan(f1, 0.85)
    }
}
