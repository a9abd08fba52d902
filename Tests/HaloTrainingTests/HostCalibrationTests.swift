import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloTensor
@testable import HaloTraining
import HaloTransport
import XCTest

/// Host calibration: the first layer's path chosen by a cost model over measured kernel rates (injected here, so
/// nothing depends on this machine's speed), the rates' cache, and the report that records both.
final class HostCalibrationTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("halo-calibration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    // MARK: Rates and workloads

    /// Every kernel at one nanosecond per unit; the tests then make one kind cheap or dear.
    private func rates(gemm: Double = 1e-9, spmm: Double = 1e-9, lookup: Double = 1e-9, listed: Double = 1e-9) -> KernelRates {
        KernelRates(threads: 2, gemmForwardSecondsPerFlop: gemm, gemmTransposedSecondsPerFlop: gemm,
                    spmmSecondsPerNonZeroColumn: spmm, csrFeaturesSecondsPerNonZeroColumn: spmm,
                    spmmTransposedSecondsPerNonZeroColumn: spmm,
                    lookupSecondsPerCellColumn: lookup, lookupTransposedSecondsPerCellColumn: lookup,
                    listingSecondsPerElement: listed, listedSecondsPerNonZeroDepth: listed,
                    listedInputGradientSecondsPerNonZeroColumn: listed)
    }

    /// Amazon-Photo's first layer: 7650 × 745 indicator features, 35 % non-zero, 245,812 edges, width 256.
    private func photo(density: Double = 0.35, indicator: Bool = true, fits: Bool = true, inputDropout: Bool = false) -> FirstLayerWorkload {
        let cells = 7650 * 745
        return FirstLayerWorkload(
            features: FeatureStatistics(sparse: true, nonZeros: Int(density * Double(cells)), cells: cells,
                                        indicator: indicator, denseCopyFits: fits),
            featureWidth: 745, aggregationNonZeros: 245_812 + 7650, hiddenWidth: 256, inputDropout: inputDropout,
            gradientDensity: 0.25)
    }

    private func record(_ rates: KernelRates, threads: Int = 2, build: String = "test build") -> CalibrationRecord {
        CalibrationRecord(origin: .measured, key: key(threads: threads, build: build), rates: rates,
                          measurementSeconds: 0.5, measuredAt: "2026-12-07T04:00:00Z")
    }

    private func key(threads: Int = 2, build: String = "test build") -> CalibrationKey {
        CalibrationKey(host: HostDescription(cpuModel: "Test CPU (family 1, model 2)", isa: ["avx2", "fma"], blasCore: "Haswell"),
                       threads: threads, build: build)
    }

    // MARK: The cost model

    func testTheCheaperPathIsChosenFromTheRates() {
        // CSR products cheap, everything else a thousand times dearer: CSR, and precomputing does not pay.
        let csr = FirstLayerPlan.choosing(for: photo(), rates: rates(gemm: 1e-6, spmm: 1e-12, lookup: 1e-6, listed: 1e-6))
        XCTAssertEqual(csr.basis, .calibrated)
        XCTAssertEqual(csr.representation, .csr)
        XCTAssertFalse(csr.precompute)
        // Lookup cheap: lookup, still not precomputed (its GEMM is dear).
        let lookup = FirstLayerPlan.choosing(for: photo(), rates: rates(gemm: 1e-6, spmm: 1e-9, lookup: 1e-15, listed: 1e-6))
        XCTAssertEqual(lookup.representation, .lookup)
        XCTAssertFalse(lookup.precompute)
        // GEMM and the listed weight gradient cheap, aggregation dear: precomputing wins (no aggregation per epoch),
        // and of the per-epoch paths dense GEMM is the cheapest.
        let precomputed = FirstLayerPlan.choosing(for: photo(), rates: rates(gemm: 1e-15, spmm: 1e-6, lookup: 1e-6, listed: 1e-15))
        XCTAssertEqual(precomputed.representation, .dense)
        XCTAssertTrue(precomputed.precompute)
        // Whatever it chose, it chose the smallest estimate.
        for plan in [csr, lookup, precomputed] {
            let estimates = try! XCTUnwrap(plan.estimatedSeconds)
            let perEpoch = estimates.filter { $0.key != .precomputed }.min { $0.value < $1.value }!.key
            XCTAssertEqual(plan.representation.rawValue, perEpoch.rawValue == "precomputed" ? "dense" : perEpoch.rawValue)
            XCTAssertEqual(plan.precompute, estimates[.precomputed]! <= estimates[perEpoch]!)
        }
    }

    func testEstimatesFollowTheDocumentedFormulas() {
        let w = photo()
        let r = rates(gemm: 2e-12, spmm: 3e-9, lookup: 5e-12, listed: 7e-11)
        let model = FirstLayerCostModel(rates: r)
        let n = 7650.0, f = 745.0, h = 256.0, a = Double(245_812 + 7650), x = Double(w.features.nonZeros)
        XCTAssertEqual(model.seconds(.csr, w), x * h * (3e-9 + 3e-9) + 2 * h * a * 3e-9, accuracy: 1e-12)
        XCTAssertEqual(model.seconds(.lookup, w), n * f * h * (5e-12 + 5e-12) + 2 * h * a * 3e-9, accuracy: 1e-12)
        // 745 features > 256: dense transforms first and aggregates at width 256.
        XCTAssertEqual(model.seconds(.dense, w), 2 * (2 * n * f * h * 2e-12) + 2 * h * a * 3e-9, accuracy: 1e-12)
        // Gradient 25 % non-zero, above this host's break-even at depth 745 (5.6 %): GEMM for the weight gradient.
        XCTAssertEqual(r.listedBreakEvenDensity(depth: 745), (2 * f * 2e-12 - 7e-11) / (f * 7e-11), accuracy: 1e-12)
        XCTAssertEqual(model.seconds(.precomputed, w), 2 * (2 * n * f * h * 2e-12), accuracy: 1e-12)
        // Cheap listed products (break-even above 25 %): listing plus the listed product.
        let cheapListed = rates(gemm: 2e-12, spmm: 3e-9, lookup: 5e-12, listed: 1e-13)
        XCTAssertGreaterThan(cheapListed.listedBreakEvenDensity(depth: 745), 0.25)
        XCTAssertEqual(FirstLayerCostModel(rates: cheapListed).seconds(.precomputed, w),
                       2 * n * f * h * 2e-12 + n * h * 1e-13 + 0.25 * n * h * f * 1e-13, accuracy: 1e-12)
    }

    /// The hybrid path: the aggregate's weight gradient, and a forward product from the sparse features plus one
    /// aggregation; chosen where the features' product is cheap and the dense GEMM dear, with the forward
    /// representation it was costed with, and never where precomputing is not allowed.
    func testHybridPathTakesTheFeaturesForwardAndTheAggregatesWeightGradient() throws {
        let w = photo()
        let n = 7650.0, f = 745.0, h = 256.0, a = Double(245_812 + 7650)
        // Lookup cheaper than CSR at 35 %, dense GEMM dear, listed products cheap.
        let r = rates(gemm: 2e-11, spmm: 1e-12, lookup: 1e-13, listed: 1e-13)
        let model = FirstLayerCostModel(rates: r)
        XCTAssertEqual(model.seconds(.hybrid, w), n * f * h * 1e-13 + h * a * 1e-12
                       + model.seconds(.precomputed, w) - 2 * n * f * h * 2e-11, accuracy: 1e-12)
        let plan = model.plan(for: w)
        XCTAssertTrue(plan.precompute && plan.forwardThroughFeatures, plan.summary)
        XCTAssertEqual(plan.representation, .lookup)
        XCTAssertTrue(plan.summary.contains("forward through the features"), plan.summary)
        // Cheap GEMM: the aggregate's own product wins.
        let gemmPlan = FirstLayerCostModel(rates: rates(gemm: 1e-14, spmm: 1e-12, lookup: 1e-13, listed: 1e-13)).plan(for: w)
        XCTAssertTrue(gemmPlan.precompute)
        XCTAssertFalse(gemmPlan.forwardThroughFeatures)
        // Not indicator features: the forward goes by CSR (x = 35 % of the cells, 1 ps per non-zero × column).
        let csrPlan = model.plan(for: photo(indicator: false))
        XCTAssertEqual(csrPlan.estimatedSeconds?[.hybrid] ?? 0,
                       0.35 * n * f * h * 1e-12 + h * a * 1e-12 + model.seconds(.precomputed, w) - 2 * n * f * h * 2e-11,
                       accuracy: 1e-9)
        // No precomputing with input dropout, hence no hybrid; forcing dense features turns it off.
        XCTAssertFalse(model.paths(for: photo(inputDropout: true)).contains(.hybrid))
        XCTAssertFalse(plan.forcing(.dense).forwardThroughFeatures)
        XCTAssertFalse(plan.forcing(.csr).forwardThroughFeatures, "costed with lookup's forward, not CSR's")
        XCTAssertTrue(plan.forcing(.lookup).forwardThroughFeatures)
        // In the report, and absent (false) from older ones.
        let encoder = JSONEncoder(), decoder = JSONDecoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        XCTAssertEqual(try decoder.decode(FirstLayerPlan.self, from: encoder.encode(plan)), plan)
        let older = #"{"basis": "calibrated", "representation": "lookup", "precompute": true}"#
        XCTAssertFalse(try decoder.decode(FirstLayerPlan.self, from: Data(older.utf8)).forwardThroughFeatures)
    }

    /// Which gradients each layer lists: this host's break-even at the layer's depth (features for layer 0, the
    /// hidden width above), or the constant without rates; carried in the plan's JSON, absent from older reports.
    func testGradientListingFollowsTheRates() throws {
        let r = rates(gemm: 2e-12, spmm: 3e-9, lookup: 5e-12, listed: 1e-11)
        let plan = FirstLayerPlan.choosing(for: photo(), rates: r)
        XCTAssertEqual(plan.gradientListing.firstLayer, r.listedBreakEvenDensity(depth: 745))
        XCTAssertEqual(plan.gradientListing.hiddenLayers, r.listedBreakEvenDensity(depth: 256))
        XCTAssertEqual(plan.gradientListing.inputGradients, r.listedInputGradientBreakEvenDensity(width: 256))
        XCTAssertNotEqual(plan.gradientListing.firstLayer, plan.gradientListing.hiddenLayers)
        XCTAssertEqual(plan.gradientListing.density(ofLayer: 0), plan.gradientListing.firstLayer)
        XCTAssertEqual(plan.gradientListing.density(ofLayer: 2), plan.gradientListing.hiddenLayers)
        XCTAssertEqual(FirstLayerPlan.choosing(for: photo(), rates: nil).gradientListing, .constants)
        XCTAssertEqual(GradientListing.constants.firstLayer, BlockColumnLists.worthwhileDensity)
        // A host where lists always win (break-even above 1) still lists only up to half the elements.
        let cheapLists = rates(gemm: 1e-9, listed: 1e-14)
        XCTAssertGreaterThan(cheapLists.listedBreakEvenDensity(depth: 256), 1)
        XCTAssertEqual(GradientListing(rates: cheapLists, featureWidth: 745, hiddenWidth: 256).hiddenLayers,
                       GradientListing.maximumDensity)

        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: encoder.encode(plan)) as? [String: Any])
        let listing = try XCTUnwrap(json["gradient_listing"] as? [String: Double])
        XCTAssertEqual(listing["hidden_layers"], plan.gradientListing.hiddenLayers)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        XCTAssertEqual(try decoder.decode(FirstLayerPlan.self, from: encoder.encode(plan)), plan)
        let older = #"{"basis": "constants", "representation": "csr", "precompute": false}"#
        XCTAssertEqual(try decoder.decode(FirstLayerPlan.self, from: Data(older.utf8)).gradientListing, .constants)
        let beforeInputGradients = #"{"first_layer": 0.25, "hidden_layers": 0.2}"#
        XCTAssertEqual(try decoder.decode(GradientListing.self, from: Data(beforeInputGradients.utf8)),
                       GradientListing(firstLayer: 0.25, hiddenLayers: 0.2,
                                       inputGradients: BlockColumnLists.worthwhileInputGradientDensity))
    }

    /// Row blocking is decided at the measured depth nearest (by ratio) to the layer's inner dimension, only when the
    /// blocked calls were faster by more than the margin, and never from rates that lack the pair.
    func testForwardRowBlockingFollowsTheNearestMeasuredDepth() throws {
        var r = rates(gemm: 1e-11)
        XCTAssertFalse(r.forwardRowBlockingPays(depth: 100), "not measured: one call")
        r.gemmShortForwardSecondsPerFlop = 1e-11
        r.gemmShortForwardBlockedSecondsPerFlop = 0.9e-11      // 11 % faster in blocks
        r.gemmHiddenForwardSecondsPerFlop = 1e-11
        r.gemmHiddenForwardBlockedSecondsPerFlop = 0.98e-11    // 2 %: within the margin
        r.gemmForwardBlockedSecondsPerFlop = 0.5e-11           // the 512-deep pair: twice as fast
        for (depth, pays) in [(1, true), (64, true), (100, true), (150, true), (170, false), (256, false), (350, false),
                              (400, true), (745, true), (4096, true)] {
            XCTAssertEqual(r.forwardRowBlockingPays(depth: depth), pays, "depth \(depth)")
        }
        XCTAssertEqual(KernelRates(vector: r.vector), r)
        var slower = r
        slower.gemmForwardBlockedSecondsPerFlop = 2e-11
        XCTAssertFalse(slower.forwardRowBlockingPays(depth: 745))

        // The plan takes the decision at the run's feature width and hidden width.
        let plan = FirstLayerPlan.choosing(for: photo(), rates: r)
        XCTAssertEqual(plan.forwardRowBlocking, ForwardRowBlocking(firstLayer: true, hiddenLayers: false))
        XCTAssertTrue(plan.forwardRowBlocking.blocks(layer: 0))
        XCTAssertFalse(plan.forwardRowBlocking.blocks(layer: 1))
        XCTAssertEqual(plan.forwardRowBlocking.rowsPerCall(layer: 0, inputWidth: 745, outputWidth: 256, cacheBytes: 1 << 20),
                       GEMMRowBlocking.rowsPerCall(n: 256, k: 745, cacheBytes: 1 << 20))
        XCTAssertNil(plan.forwardRowBlocking.rowsPerCall(layer: 0, inputWidth: 745, outputWidth: 256, cacheBytes: nil))
        XCTAssertNil(plan.forwardRowBlocking.rowsPerCall(layer: 1, inputWidth: 256, outputWidth: 256, cacheBytes: 1 << 20))
        XCTAssertEqual(FirstLayerPlan.choosing(for: photo(), rates: nil).forwardRowBlocking, .none)
        XCTAssertEqual(FirstLayerPlan.choosing(for: photo(), rates: rates()).forwardRowBlocking, .none)

        // In the JSON, and absent from older plans and rates.
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: encoder.encode(plan)) as? [String: Any])
        XCTAssertEqual(json["forward_row_blocking"] as? [String: Bool], ["first_layer": true, "hidden_layers": false])
        XCTAssertEqual(try decoder.decode(FirstLayerPlan.self, from: encoder.encode(plan)), plan)
        let older = #"{"basis": "constants", "representation": "csr", "precompute": false}"#
        XCTAssertEqual(try decoder.decode(FirstLayerPlan.self, from: Data(older.utf8)).forwardRowBlocking, .none)
        var olderRates = try XCTUnwrap(JSONSerialization.jsonObject(with: encoder.encode(rates())) as? [String: Any])
        XCTAssertNil(olderRates["gemm_short_forward_seconds_per_flop"], "unmeasured rates are left out")
        olderRates["gemm_hidden_forward_seconds_per_flop"] = 1e-11
        let decoded = try decoder.decode(KernelRates.self, from: JSONSerialization.data(withJSONObject: olderRates))
        XCTAssertEqual(decoded.gemmHiddenForwardSecondsPerFlop, 1e-11)
        XCTAssertNil(decoded.gemmHiddenForwardBlockedSecondsPerFlop)
        XCTAssertNil(decoded.invalidField)
        var broken = r
        broken.gemmHiddenForwardBlockedSecondsPerFlop = -1
        XCTAssertEqual(broken.invalidField, "gemm_hidden_forward_blocked_seconds_per_flop")
    }

    /// The first layer's weight gradient is cut into `1 + ⌊budget · product / pass⌋` pieces (product and pass over
    /// G per row, from the rates on the run's path), at most `maximumPieces`; without rates it stays whole. In the
    /// JSON, and whole in older plans.
    func testWeightGradientPiecesWeighTheProductAgainstAPassOverTheGradient() throws {
        XCTAssertEqual(WeightGradientStreaming.pieces(product: 10, pass: 1), 3)      // 1 + ⌊2.5⌋
        XCTAssertEqual(WeightGradientStreaming.pieces(product: 3.9, pass: 1), 1)     // a pass dearer than a quarter
        XCTAssertEqual(WeightGradientStreaming.pieces(product: 1000, pass: 1), WeightGradientPieces.maximumPieces)
        XCTAssertEqual(WeightGradientStreaming.pieces(product: 1, pass: 0), WeightGradientPieces.maximumPieces, "free pieces")
        XCTAssertEqual(WeightGradientStreaming.pieces(product: 0, pass: 1), 1)
        XCTAssertEqual(WeightGradientStreaming.pieces(product: .infinity, pass: 1), 1)

        // Amazon-Photo's shapes. GEMM at 1e-11 s/flop against a pass at 1e-9 s per element of G: the product per
        // row is 2·745·256·1e-11, a pass 256·1e-9, so 1 + ⌊0.25 · 14.9⌋ = 4 pieces against the aggregate, whether
        // G is expected sparse enough to be listed (the lists cost no pass per piece) or not.
        var r = rates(gemm: 1e-11, spmm: 1e-10, lookup: 1e-11, listed: 1e-9)
        var w = photo()
        XCTAssertEqual(WeightGradientStreaming(rates: r, workload: w).precomputed, 4)
        w.gradientDensity = 1
        // Lookup: 745·256·1e-11 per row, half the GEMM's: 1 + ⌊1.86⌋ = 2. CSR: 35 % of 745 non-zeros per row at
        // 1e-10 s each against 1e-9 s per element of a pass: 1 + ⌊0.25 · 26.1⌋ = 7.
        let decided = WeightGradientStreaming(rates: r, workload: w)
        XCTAssertEqual(decided, WeightGradientStreaming(precomputed: 4, dense: 4, lookup: 2, csr: 7))
        XCTAssertEqual(decided.pieces(precomputedAggregate: true, representation: .csr), 4)
        XCTAssertEqual(decided.pieces(precomputedAggregate: false, representation: .csr), 7)
        XCTAssertEqual(decided.pieces(precomputedAggregate: false, representation: .lookup), 2)
        XCTAssertEqual(decided.pieces(precomputedAggregate: false, representation: .dense), 4)
        // A pass as dear as the product: whole.
        r.listingSecondsPerElement = 1e-7
        XCTAssertEqual(WeightGradientStreaming(rates: r, workload: w), .whole)
        // Measured piece costs take the listing rate's place, path by path: GEMM pieces free (the most), CSR's a
        // nanosecond per element (260.75 non-zeros per row at 1e-10 against 1e-9: 1 + ⌊0.25 · 26.1⌋ = 7), lookup's
        // as dear as its product (whole).
        r.gemmTransposedPieceSecondsPerElement = 0
        r.spmmTransposedPieceSecondsPerElement = 1e-9
        r.lookupTransposedPieceSecondsPerElement = 1e-6
        XCTAssertEqual(WeightGradientStreaming(rates: r, workload: w),
                       WeightGradientStreaming(precomputed: 8, dense: 8, lookup: 1, csr: 7))
        // The costs travel between ranks (a zero cost too) and are checked like the rates.
        XCTAssertEqual(KernelRates(vector: r.vector), r)
        var unmeasured = r
        unmeasured.lookupTransposedPieceSecondsPerElement = nil
        XCTAssertEqual(KernelRates(vector: unmeasured.vector), unmeasured)
        XCTAssertNil(r.invalidField)
        r.spmmTransposedPieceSecondsPerElement = -1e-9
        XCTAssertEqual(r.invalidField, "spmm_transposed_piece_seconds_per_element")
        XCTAssertEqual(r.invalidRate?.expected, "a non-negative finite number")
        r.spmmTransposedPieceSecondsPerElement = 0
        r.listingSecondsPerElement = 0
        XCTAssertEqual(r.invalidRate?.field, "listing_seconds_per_element")
        XCTAssertEqual(r.invalidRate?.expected, "a positive finite number")

        let plan = FirstLayerPlan.choosing(for: w, rates: rates(gemm: 1e-11, spmm: 1e-10, lookup: 1e-11, listed: 1e-9))
        XCTAssertEqual(plan.weightGradientPieces.pieces(precomputedAggregate: true, representation: plan.representation), 4)
        // A representation the user forces has its own count.
        let forced = plan.forcing(.csr)
        XCTAssertEqual(forced.weightGradientPieces.pieces(precomputedAggregate: false, representation: forced.representation),
                       plan.weightGradientPieces.csr)
        XCTAssertEqual(FirstLayerPlan.choosing(for: w, rates: nil).weightGradientPieces, .whole)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: encoder.encode(plan)) as? [String: Any])
        let pieces = plan.weightGradientPieces
        XCTAssertEqual(json["weight_gradient_pieces"] as? [String: Int],
                       ["precomputed": 4, "dense": pieces.dense, "lookup": pieces.lookup, "csr": pieces.csr])
        XCTAssertEqual(try decoder.decode(FirstLayerPlan.self, from: encoder.encode(plan)), plan)
        let older = #"{"basis": "constants", "representation": "csr", "precompute": false}"#
        XCTAssertEqual(try decoder.decode(FirstLayerPlan.self, from: Data(older.utf8)).weightGradientPieces, .whole)
    }

    /// The trainer hands the plan's thresholds to every layer before training.
    func testTheTrainerAppliesThePlansListingThresholds() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=300,classes=3,features=70,degree=6,signal=1,seed=2").generate()
        let configuration = TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .sage, layers: 3, hiddenWidth: 64, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 1, seed: 1, threads: 1)
        let trainer = try Trainer(configuration: configuration, shard: .wholeGraph(data, aggregation: .mean),
                              classCount: data.classCount, pool: .serial)
        var plan = FirstLayerPlan(basis: .calibrated, representation: .dense, precompute: false)
        plan.gradientListing = GradientListing(firstLayer: 0.125, hiddenLayers: 0.375, inputGradients: 0.0625)
        plan.forwardRowBlocking = ForwardRowBlocking(firstLayer: false, hiddenLayers: true)
        let environment = RunEnvironment(ranks: 1, threadsPerRank: 1, dataset: data)
        let report = try trainer.train(firstLayerPlan: plan, environment: environment, stopRequest: nil, checkpoints: nil,
                                       onEpoch: { _ in }, onProgress: { _ in })
        XCTAssertEqual(trainer.model.convolutions.map(\.gradientListingDensity), [0.125, 0.375, 0.375])
        XCTAssertEqual(trainer.model.convolutions.map(\.inputGradientListingDensity), [0.0625, 0.0625, 0.0625])
        XCTAssertEqual(report.firstLayerPlan?.gradientListing, plan.gradientListing)
        let cache = CacheSizes.level2Bytes
        XCTAssertEqual(trainer.model.convolutions.map(\.forwardRowsPerCall),
                       [nil, GEMMRowBlocking.rowsPerCall(n: 64, k: 64, cacheBytes: cache),
                        GEMMRowBlocking.rowsPerCall(n: 3, k: 64, cacheBytes: cache)])
        XCTAssertEqual(report.firstLayerPlan?.forwardRowBlocking, plan.forwardRowBlocking)
    }

    /// A synthetic dataset with indicator features: its features' positive entries as ones (about half of them).
    private func indicatorDataset(_ spec: String) throws -> Dataset {
        var data = try SyntheticGraphSpec(parsing: spec).generate()
        guard case .dense(let dense) = data.features else {
            XCTFail("synthetic features are dense")
            return data
        }
        let ones = (0..<dense.rows).flatMap { i in (0..<dense.cols).filter { dense[i, $0] > 0 }.map { (row: i, col: $0, value: Float(1)) } }
        data.features = .sparse(SparseMatrix(rows: dense.rows, cols: dense.cols, triplets: ones))
        return data
    }

    /// One process with the hybrid plan: the trainer switches the first layer's forward to the features and trains
    /// the model the aggregate's GEMM trains (equal losses up to rounding).
    func testTheTrainerTakesTheHybridPathOnOneProcess() throws {
        let data = try indicatorDataset("synthetic:nodes=400,classes=3,features=64,degree=6,signal=1,seed=4")
        var configuration = TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 32, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 4, seed: 1, threads: 1)
        configuration.quantization.precomputeFirstLayer = true
        let environment = RunEnvironment(ranks: 1, threadsPerRank: 1, dataset: data)
        var losses: [[Double]] = []
        for hybrid in [false, true] {
            let shard = RankShard.wholeGraph(data, aggregation: .gcn, representation: .lookup)
            let trainer = try Trainer(configuration: configuration, shard: shard, classCount: data.classCount, pool: .serial)
            var plan = FirstLayerPlan(basis: .calibrated, representation: .lookup, precompute: true)
            plan.forwardThroughFeatures = hybrid
            let report = try trainer.train(firstLayerPlan: plan, environment: environment, stopRequest: nil,
                                           checkpoints: nil, onEpoch: { _ in }, onProgress: { _ in })
            XCTAssertEqual(trainer.model.firstLayerForwardThroughFeatures, hybrid)
            XCTAssertEqual(report.firstLayerPlan?.forwardThroughFeatures, hybrid)
            losses.append(report.epochs.map(\.loss))
        }
        for (a, b) in zip(losses[0], losses[1]) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(a))) }
        // Without the aggregate (--no-precompute-layer0) or in column blocks, the hybrid plan does not run, and the
        // report says so.
        for (precompute, blocks) in [(false, 1), (true, 2)] {
            var other = configuration
            other.quantization.precomputeFirstLayer = precompute
            other.columnBlocks = blocks
            let trainer = try Trainer(configuration: other, shard: RankShard.wholeGraph(data, aggregation: .gcn, representation: .lookup),
                                  classCount: data.classCount, pool: .serial)
            var plan = FirstLayerPlan(basis: .calibrated, representation: .lookup, precompute: true)
            plan.forwardThroughFeatures = true
            let report = try trainer.train(firstLayerPlan: plan, environment: environment, stopRequest: nil,
                                           checkpoints: nil, onEpoch: { _ in }, onProgress: { _ in })
            XCTAssertFalse(trainer.model.firstLayerForwardThroughFeatures, "precompute \(precompute), blocks \(blocks)")
            XCTAssertEqual(report.firstLayerPlan?.forwardThroughFeatures, false)
        }
    }

    /// Estimates of the precomputed and hybrid forward products within 1.5× of each other: one process times both
    /// on its own data before training, takes the faster, keeps the outcome for later runs, and the report keeps the
    /// times; further apart, forced, or on the fixed thresholds, the estimates decide alone.
    func testANearTieIsSettledByTimingBothForwardProductsOnTheRunsData() throws {
        let data = try indicatorDataset("synthetic:nodes=600,classes=3,features=256,degree=6,signal=1,seed=4")
        var configuration = TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 64, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 2, seed: 1, threads: 1)
        configuration.quantization.precomputeFirstLayer = true
        let environment = RunEnvironment(ranks: 1, threadsPerRank: 1, dataset: data)
        final class Announced: @unchecked Sendable { var plans: [FirstLayerPlan] = [] }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("halo-trials-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = FirstLayerTrialCache(directory: folder, calibrationStem: "test")
        func run(_ plan: FirstLayerPlan, trials: FirstLayerTrialCache? = cache) throws -> (FirstLayerPlan?, Bool, [FirstLayerPlan]) {
            let trainer = try Trainer(configuration: configuration, shard: .wholeGraph(data, aggregation: .gcn, representation: .lookup),
                                      classCount: data.classCount, pool: .serial)
            let announced = Announced()
            let report = try trainer.train(firstLayerPlan: plan, onRefinedPlan: { announced.plans.append($0) }, trials: trials,
                                           environment: environment, stopRequest: nil,
                                           checkpoints: nil, onEpoch: { _ in }, onProgress: { _ in })
            return (report.firstLayerPlan, trainer.model.firstLayerForwardThroughFeatures, announced.plans)
        }
        var tie = FirstLayerPlan(basis: .calibrated, representation: .lookup, precompute: true,
                                 estimatedSeconds: [.precomputed: 0.010, .hybrid: 0.014, .lookup: 0.05])
        XCTAssertTrue(FirstLayerForwardTrial.applies(to: tie))
        let (settled, used, announced) = try run(tie)
        XCTAssertEqual(announced, [settled].compactMap { $0 }, "the settled plan is announced once, as the report has it")
        let measured = try XCTUnwrap(settled?.measuredForwardSeconds)
        XCTAssertEqual(Set(measured.keys), [.precomputed, .hybrid])
        XCTAssertTrue(measured.values.allSatisfy { $0 > 0 && $0.isFinite }, "\(measured)")
        XCTAssertEqual(settled?.forwardThroughFeatures, measured[.hybrid]! < measured[.precomputed]!)
        XCTAssertEqual(used, settled?.forwardThroughFeatures)
        XCTAssertTrue(settled?.summary.contains("timed on this data and model") ?? false, settled?.summary ?? "")
        // Kept: a second run of the same data and model reads the outcome (the same times) instead of timing again,
        // and takes the same path; another calibration's stem, or a damaged file, times again.
        XCTAssertEqual(cache.lookup(tie), measured)
        let (again, usedAgain, _) = try run(tie)
        XCTAssertEqual(again?.measuredForwardSeconds, measured)
        XCTAssertEqual(usedAgain, used)
        XCTAssertNil(FirstLayerTrialCache(directory: folder, calibrationStem: "other").lookup(tie))
        try Data("{".utf8).write(to: URL(fileURLWithPath: cache.file(for: tie)))
        XCTAssertNil(cache.lookup(tie))
        // Without a place to keep the outcome (a library run with rates given), nothing is timed: the plan stands.
        let (untimed, _, _) = try run(tie, trials: nil)
        XCTAssertNil(untimed?.measuredForwardSeconds)
        XCTAssertEqual(untimed?.forwardThroughFeatures, tie.forwardThroughFeatures)
        // In the report's JSON and back.
        let encoder = JSONEncoder(), decoder = JSONDecoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        XCTAssertEqual(try decoder.decode(FirstLayerPlan.self, from: encoder.encode(settled)), settled)
        // Not a tie, forced, or not from rates: nothing is timed and the plan stands.
        var apart = tie
        apart.estimatedSeconds = [.precomputed: 0.010, .hybrid: 0.016]
        tie.forwardThroughFeatures = true
        var constants = tie
        constants.basis = .constants
        for plan in [apart, tie.forcing(.lookup), constants] {
            XCTAssertFalse(FirstLayerForwardTrial.applies(to: plan), plan.summary)
            let (kept, _, announced) = try run(plan)
            XCTAssertNil(kept?.measuredForwardSeconds, plan.summary)
            XCTAssertTrue(announced.isEmpty, plan.summary)
            XCTAssertEqual(kept?.forwardThroughFeatures, plan.forwardThroughFeatures, plan.summary)
        }
        // Without the precomputed aggregate there is no hybrid path, so nothing to time.
        XCTAssertFalse(FirstLayerForwardTrial.applies(to: FirstLayerPlan(basis: .calibrated, representation: .lookup, precompute: false,
                                                                          estimatedSeconds: [.precomputed: 0.010, .hybrid: 0.011])))
    }

    func testListedBreakEvenDensityBalancesListingAgainstGEMM() {
        // GEMM 2·256 flops × 1e-11 = 5.12 ns per element of G; listing 1.12 ns; listed 256 × 0.05 ns = 12.8 ns per
        // non-zero: break-even at (5.12 − 1.12) / 12.8 = 31.25 %.
        let r = KernelRates(threads: 1, gemmForwardSecondsPerFlop: 1e-11, gemmTransposedSecondsPerFlop: 1e-11,
                            spmmSecondsPerNonZeroColumn: 1, csrFeaturesSecondsPerNonZeroColumn: 1,
                            spmmTransposedSecondsPerNonZeroColumn: 1, lookupSecondsPerCellColumn: 1,
                            lookupTransposedSecondsPerCellColumn: 1, listingSecondsPerElement: 1.12e-9,
                            listedSecondsPerNonZeroDepth: 5e-11, listedInputGradientSecondsPerNonZeroColumn: 2e-10)
        XCTAssertEqual(r.listedBreakEvenDensity(depth: 256), 0.3125, accuracy: 1e-12)
        // The input gradient G·Wᵀ, W 256 wide: GEMM 5.12 ns per element of G against listing 1.12 ns and
        // 256 × 0.2 ns = 51.2 ns per non-zero: (5.12 − 1.12) / 51.2 = 7.8125 %.
        XCTAssertEqual(r.listedInputGradientBreakEvenDensity(width: 256), 0.078125, accuracy: 1e-12)
        // Listing alone dearer than GEMM: never worth it.
        var slowListing = r
        slowListing.listingSecondsPerElement = 1e-8
        XCTAssertEqual(slowListing.listedBreakEvenDensity(depth: 256), 0)
        XCTAssertEqual(slowListing.listedInputGradientBreakEvenDensity(width: 256), 0)
    }

    func testOnlyPathsTheFeaturesAllowAreConsidered() {
        let cheapLookup = rates(gemm: 1e-6, spmm: 1e-6, lookup: 1e-15, listed: 1e-6)
        // Input dropout rules out lookup and the precomputed aggregate.
        let dropout = FirstLayerPlan.choosing(for: photo(inputDropout: true), rates: cheapLookup)
        XCTAssertEqual(Set(try XCTUnwrap(dropout.estimatedSeconds).keys), [.csr, .dense])
        XCTAssertFalse(dropout.precompute)
        // Valued (not indicator) features have no lookup.
        XCTAssertNotEqual(FirstLayerPlan.choosing(for: photo(indicator: false), rates: cheapLookup).representation, .lookup)
        // A dense copy that does not fit leaves lookup and CSR.
        let cheapGEMM = rates(gemm: 1e-18, spmm: 1e-6, lookup: 1e-6, listed: 1e-18)
        let noCopy = FirstLayerPlan.choosing(for: photo(fits: false), rates: cheapGEMM)
        XCTAssertEqual(Set(try XCTUnwrap(noCopy.estimatedSeconds).keys), [.csr, .lookup])
        XCTAssertFalse(noCopy.precompute)
        // Dense features are dense; precomputing removes the aggregation, so it wins at any rates.
        let dense = FirstLayerWorkload(
            features: FeatureStatistics(sparse: false, nonZeros: 1000, cells: 1000, indicator: false, denseCopyFits: true),
            featureWidth: 10, aggregationNonZeros: 500, hiddenWidth: 16, inputDropout: false, gradientDensity: 0.25)
        let densePlan = FirstLayerPlan.choosing(for: dense, rates: rates())
        XCTAssertEqual(densePlan.representation, .dense)
        XCTAssertTrue(densePlan.precompute)
    }

    func testWithoutRatesTheConstantsDecide() {
        for w in [photo(), photo(density: 0.05), photo(density: 0.18, indicator: false), photo(inputDropout: true)] {
            let plan = FirstLayerPlan.choosing(for: w, rates: nil)
            XCTAssertEqual(plan.basis, .constants)
            XCTAssertNil(plan.estimatedSeconds)
            XCTAssertEqual(plan.representation, w.features.representation(inputDropout: w.inputDropout))
            XCTAssertEqual(plan.precompute, !w.inputDropout && w.features.suitsPrecomputedAggregation)
        }
    }

    func testGradientDensityFollowsTheModel() {
        let stats = FeatureStatistics(sparse: false, nonZeros: 4, cells: 4, indicator: false, denseCopyFits: true)
        func density(_ model: ModelConfiguration) -> Double {
            FirstLayerWorkload(features: stats, featureWidth: 2, aggregationNonZeros: 4, model: model).gradientDensity
        }
        XCTAssertEqual(density(ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 8, dropout: 0.5)), 0.05, accuracy: 1e-12)
        XCTAssertEqual(density(ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 8, dropout: 0)), 0.1, accuracy: 1e-12)
        XCTAssertEqual(density(ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 8, dropout: 0.5, normalization: .layerNorm)), 1)
        XCTAssertEqual(density(ModelConfiguration(kind: .gcn, layers: 1, hiddenWidth: 8, dropout: 0.5)), 1)
    }

    // MARK: The cache

    private var cache: CalibrationCache { CalibrationCache(directory: scratch.appendingPathComponent("halo").path) }

    /// `cache.calibration(for:)`, counting measurements and collecting warnings.
    private func obtain(_ key: CalibrationKey, refresh: Bool = false, measuring rates: KernelRates)
        -> (record: CalibrationRecord, measured: Int, warnings: [String]) {
        var measured = 0, warnings: [String] = []
        let record = cache.calibration(for: key, refresh: refresh, warn: { warnings.append($0) }) {
            measured += 1
            return rates
        }
        return (record, measured, warnings)
    }

    func testCacheRoundTripReusesTheRatesUntilRefreshed() throws {
        let first = obtain(key(), measuring: rates(spmm: 4e-9))
        XCTAssertEqual(first.measured, 1)
        XCTAssertEqual(first.record.origin, .measured)
        XCTAssertEqual(first.warnings, [])
        let file = try XCTUnwrap(first.record.cacheFile)
        XCTAssertEqual(file, cache.file(for: key()))
        XCTAssertTrue(FileManager.default.fileExists(atPath: file))
        // No temporary file is left beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.directory), [(file as NSString).lastPathComponent])

        let second = obtain(key(), measuring: rates(spmm: 9e-9))
        XCTAssertEqual(second.measured, 0, "the cached rates are reused")
        XCTAssertEqual(second.record.origin, .cached)
        XCTAssertEqual(second.record.rates, rates(spmm: 4e-9))
        XCTAssertEqual(second.record.key, key())
        XCTAssertEqual(second.record.measuredAt, first.record.measuredAt)

        let refreshed = obtain(key(), refresh: true, measuring: rates(spmm: 9e-9))
        XCTAssertEqual(refreshed.measured, 1)
        XCTAssertEqual(obtain(key(), measuring: rates()).record.rates, rates(spmm: 9e-9), "the refresh rewrote the file")
    }

    func testAnotherKeyIsMeasuredAgain() throws {
        _ = obtain(key(threads: 2), measuring: rates(spmm: 4e-9))
        for other in [key(threads: 1), key(build: "another build")] {
            XCTAssertEqual(cache.lookup(other), .missing)
            let again = obtain(other, measuring: rates(spmm: 5e-9))
            XCTAssertEqual(again.measured, 1, "\(other)")
            XCTAssertEqual(again.warnings, [])
        }
        // A file holding another key under this key's name (a collision, or a copied file) is not trusted.
        try FileManager.default.copyItem(atPath: cache.file(for: key(threads: 2)), toPath: cache.file(for: key(threads: 3)))
        guard case .unusable(let reason) = cache.lookup(key(threads: 3)) else { return XCTFail("another key's file was used") }
        XCTAssertTrue(reason.hasPrefix(cache.file(for: key(threads: 3)) + ": key: expected"), reason)
        let remeasured = obtain(key(threads: 3), measuring: rates(spmm: 6e-9))
        XCTAssertEqual(remeasured.measured, 1)
        XCTAssertEqual(remeasured.record.rates, rates(spmm: 6e-9))
        XCTAssertEqual(remeasured.warnings.count, 1)
    }

    func testCorruptCacheWarnsAndIsMeasuredAgain() throws {
        _ = obtain(key(), measuring: rates(spmm: 4e-9))
        let file = cache.file(for: key())
        let valid = try Data(contentsOf: URL(fileURLWithPath: file))
        let text = try XCTUnwrap(String(data: valid, encoding: .utf8))
        let corruptions: [(String, Data, String)] = [
            ("truncated", valid.prefix(valid.count / 2), "not a calibration file"),
            ("not JSON", Data("\u{0}\u{1}garbage".utf8), "not a calibration file"),
            ("a rate missing", Data(text.replacingOccurrences(of: "\"listing_seconds_per_element\"", with: "\"other\"").utf8),
             "missing rates.listingSecondsPerElement"),
            ("a negative rate", Data(text.replacingOccurrences(of: "\"spmm_seconds_per_non_zero_column\" : 4",
                                                              with: "\"spmm_seconds_per_non_zero_column\" : -4").utf8),
             "rates.spmm_seconds_per_non_zero_column: expected a positive finite number"),
        ]
        for (name, data, expected) in corruptions {
            try data.write(to: URL(fileURLWithPath: file))
            let outcome = obtain(key(), measuring: rates(spmm: 8e-9))
            XCTAssertEqual(outcome.measured, 1, name)
            XCTAssertEqual(outcome.record.origin, .measured, name)
            XCTAssertEqual(outcome.warnings.count, 1, name)
            XCTAssertTrue(outcome.warnings.first?.contains(file) == true, "\(name): \(outcome.warnings)")
            XCTAssertTrue(outcome.warnings.first?.contains(expected) == true, "\(name): \(outcome.warnings)")
            XCTAssertEqual(cache.lookup(key()), .found({
                var r = record(rates(spmm: 8e-9)); r.origin = .cached; r.cacheFile = file
                r.measuredAt = outcome.record.measuredAt; r.measurementSeconds = outcome.record.measurementSeconds
                return r
            }()), "\(name): the file was rewritten with the new rates")
        }
    }

    func testUnwritableCacheWarnsAndKeepsTheMeasuredRates() throws {
        // A file where the cache folder should be.
        try Data("x".utf8).write(to: scratch.appendingPathComponent("halo"))
        let outcome = obtain(key(), measuring: rates(spmm: 4e-9))
        XCTAssertEqual(outcome.record.rates, rates(spmm: 4e-9))
        XCTAssertNil(outcome.record.cacheFile)
        XCTAssertEqual(outcome.warnings.count, 1)
        XCTAssertTrue(outcome.warnings[0].contains("could not save the host calibration"), "\(outcome.warnings)")
    }

    func testDefaultDirectoryFollowsXDG() {
        XCTAssertEqual(CalibrationCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"]), "/x/cache/halo")
        // The XDG specification ignores a relative path.
        XCTAssertEqual(CalibrationCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "rel", "HOME": "/home/u"]), "/home/u/.cache/halo")
        XCTAssertEqual(CalibrationCache.defaultDirectory(environment: ["HOME": "/home/u"]), "/home/u/.cache/halo")
    }

    func testHostDescriptionReadsCPUInfo() {
        let cpuinfo = """
            processor\t: 0
            model name\t: AMD EPYC 7B13
            cpu family\t: 25
            model\t\t: 1
            flags\t\t: fpu sse2 avx avx2 fma bmi2
            processor\t: 1
            model name\t: other
            """
        let host = HostDescription(cpuinfo: cpuinfo, blasCore: "Zen")
        XCTAssertEqual(host, HostDescription(cpuModel: "AMD EPYC 7B13 (family 25, model 1)", isa: ["avx2", "fma"], blasCore: "Zen"))
        XCTAssertNotEqual(key(), CalibrationKey(host: host, threads: 2, build: "test build"))
        XCTAssertNotEqual(key().fileStem, CalibrationKey(host: host, threads: 2, build: "test build").fileStem)
    }

    /// The measurement itself: every rate a positive finite number (nothing about how fast).
    func testMeasurementGivesUsableRates() {
        let measured = HostCalibration.measure(pool: ComputePool(threads: 2))
        XCTAssertNil(measured.invalidField, "\(measured)")
        XCTAssertNotNil(measured.gemmTransposedPieceSecondsPerElement)
        XCTAssertNotNil(measured.spmmTransposedPieceSecondsPerElement)
        XCTAssertNotNil(measured.lookupTransposedPieceSecondsPerElement)
        XCTAssertEqual(measured.threads, 2)
        XCTAssertEqual(KernelRates(vector: measured.vector), measured)
    }

    // MARK: Runs

    /// A dataset of indicator features about 50 % dense, written where a job can load it.
    private func indicatorDataset() throws -> String {
        var data = try SyntheticGraphSpec(parsing: "synthetic:nodes=900,classes=4,features=64,degree=8,signal=1,seed=4").generate()
        guard case .dense(let x) = data.features else { throw XCTSkip("synthetic features are dense") }
        var triplets: [(row: Int, col: Int, value: Float)] = []
        for i in 0..<x.rows { for j in 0..<x.cols where x[i, j] > 0 { triplets.append((i, j, 1)) } }
        data.features = .sparse(SparseMatrix(rows: x.rows, cols: x.cols, triplets: triplets))
        let folder = scratch.appendingPathComponent("indicator")
        try DatasetFormat.write(data, to: folder)
        return folder.path
    }

    private func job(_ dataset: String, ranks: TrainingJob.Ranks, calibration: CalibrationChoice) -> TrainingJob {
        var job = TrainingJob(
            configuration: TrainingConfiguration(
                dataset: dataset, model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 16, dropout: 0.5),
                optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 2, seed: 1, threads: 1),
            source: .dataset(dataset), ranks: ranks)
        job.threadsPerRank = 1
        // As halo train leaves it: decided by the plan (the library's default is false).
        job.configuration.quantization.precomputeFirstLayer = nil
        job.calibration = calibration
        return job
    }

    func testTheReportCarriesTheCalibrationAndTheDecision() throws {
        let dataset = try indicatorDataset()
        let cheapCSR = record(rates(gemm: 1e-6, spmm: 1e-12, lookup: 1e-6, listed: 1e-6))
        let cheapLookup = record(rates(gemm: 1e-6, spmm: 1e-9, lookup: 1e-15, listed: 1e-6))
        for ranks in [TrainingJob.Ranks.single, .threads(2)] {
            let csr = try job(dataset, ranks: ranks, calibration: .given(cheapCSR)).run()
            XCTAssertEqual(csr.calibration, cheapCSR)
            XCTAssertEqual(csr.firstLayerPlan?.basis, .calibrated)
            XCTAssertEqual(csr.firstLayerPlan?.representation, .csr)
            XCTAssertEqual(csr.featureRepresentation, .csr, "the run used what the plan chose")
            XCTAssertEqual(csr.config.quantization.precomputeFirstLayer, false)

            let lookup = try job(dataset, ranks: ranks, calibration: .given(cheapLookup)).run()
            XCTAssertEqual(lookup.featureRepresentation, .lookup)
            XCTAssertEqual(lookup.firstLayerPlan?.representation, .lookup)

            let off = try job(dataset, ranks: ranks, calibration: .off).run()
            XCTAssertNil(off.calibration)
            XCTAssertEqual(off.firstLayerPlan?.basis, .constants)
            XCTAssertEqual(off.featureRepresentation, .lookup, "50 % indicator features: the constants say lookup")
        }
        // One process precomputes when the rates say so.
        let cheapGEMM = record(rates(gemm: 1e-15, spmm: 1e-6, lookup: 1e-6, listed: 1e-15))
        let precomputed = try job(dataset, ranks: .single, calibration: .given(cheapGEMM)).run()
        XCTAssertEqual(precomputed.config.quantization.precomputeFirstLayer, true)
        XCTAssertEqual(precomputed.firstLayerPlan?.precompute, true)

        // In the JSON: the rates, the key, the origin and the estimates.
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: precomputed.jsonData()) as? [String: Any])
        let calibration = try XCTUnwrap(json["calibration"] as? [String: Any])
        XCTAssertEqual(calibration["origin"] as? String, "measured")
        XCTAssertEqual((calibration["rates"] as? [String: Any])?["gemm_forward_seconds_per_flop"] as? Double, 1e-15)
        XCTAssertEqual(((calibration["key"] as? [String: Any])?["host"] as? [String: Any])?["blas_core"] as? String, "Haswell")
        let plan = try XCTUnwrap(json["first_layer_plan"] as? [String: Any])
        XCTAssertEqual(plan["basis"] as? String, "calibrated")
        XCTAssertEqual(plan["precompute"] as? Bool, true)
        // GEMM at 1 PFLOP/s makes dense the cheapest per-epoch path, so the hybrid path (sparse forward) is not costed.
        XCTAssertEqual(Set(((plan["estimated_seconds"] as? [String: Double]) ?? [:]).keys), ["precomputed", "dense", "lookup", "csr"])
        XCTAssertNotNil(plan["forward_through_features"] as? Bool)
        XCTAssertNotNil(plan["gradient_listing"] as? [String: Double])
    }

    /// Ranks decide from rank 0's rates, whatever the others hold: their first layers must be alike.
    func testEveryRankTakesRankZerosDecision() throws {
        var data = try SyntheticGraphSpec(parsing: "synthetic:nodes=600,classes=3,features=64,degree=6,seed=2").generate()
        guard case .dense(let x) = data.features else { throw XCTSkip("synthetic features are dense") }
        var triplets: [(row: Int, col: Int, value: Float)] = []
        for i in 0..<x.rows { for j in 0..<x.cols where x[i, j] > 0 { triplets.append((i, j, 1)) } }
        data.features = .sparse(SparseMatrix(rows: x.rows, cols: x.cols, triplets: triplets))
        let parts = Part.build(dataset: data, partitioning: try Partitioner.partition(graph: data.graph, parts: 3, method: .random, seed: 1))
        let model = ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 16, dropout: 0.5)
        let perRank = [rates(spmm: 1e-12, lookup: 1e-6), rates(spmm: 1e-6, lookup: 1e-15), rates(gemm: 1e-18, spmm: 1e-6, lookup: 1e-6)]
        let plans = try LocalTransport.run(worldSize: 3) { transport in
            let collectives = TransportCollectives(transport)
            let features = try FeatureStatistics(parts[transport.rank].features).combinedOverRanks(collectives, worldSize: 3)
            return try RankTraining.agreedPlan(part: parts[transport.rank], features: features, model: model,
                                               rates: perRank[transport.rank], collectives: collectives)
        }
        XCTAssertEqual(plans[0].representation, .csr)
        XCTAssertEqual(plans[1], plans[0])
        XCTAssertEqual(plans[2], plans[0])
        // The workload is the whole graph's: the same decision a single process makes.
        let whole = FirstLayerWorkload(features: FeatureStatistics(data.features), featureWidth: 64,
                                       aggregationNonZeros: data.graph.edgeCount + data.nodeCount, model: model)
        XCTAssertEqual(plans[0], FirstLayerPlan.choosing(for: whole, rates: perRank[0]))
    }
}
