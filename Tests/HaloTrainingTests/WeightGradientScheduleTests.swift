import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloQuantization
import HaloTensor
import HaloTraining
import HaloTransport
import XCTest

/// The first layer's weight-gradient cut chosen from the measured sum as well as the product
/// (`WeightGradientSchedule`): its simulation against a hand computation, its choices where the link is fast and
/// where it is slow, and a distributed run that makes it, agrees on it, and trains the model of the whole gradient.
final class WeightGradientScheduleTests: XCTestCase {
    /// Two pieces of 192 rows × 256: each product 1 s, the second one's pass 0.5 s; each sum 0.1 s plus
    /// 49,152 values at 10 µs, 0.59152 s. The first sum ends at 1.59152 s, before the second product (2.5 s), so
    /// the second sum starts at 2.5 s: 3.09152 s in all, 0.59152 s of it after the last product.
    func testTheSimulationQueuesEachSumBehindItsProductAndTheSumBefore() {
        let cut = WeightGradientPieces(rows: 384, rowsPerPiece: 192)
        let fast = WeightGradientSchedule.simulate(cut, columns: 256, productSeconds: 2, pieceSeconds: 0.5,
                                                   sumLatencySeconds: 0.1, sumSecondsPerValue: 1e-5)
        XCTAssertEqual(fast.finish, 3.09152, accuracy: 1e-9)
        XCTAssertEqual(fast.exposed, 0.59152, accuracy: 1e-9)
        // At 100 µs a value a sum takes 5.0152 s: the second one waits for the first (ends 6.0152 s), not for its
        // product, and ends at 11.0304 s.
        let slow = WeightGradientSchedule.simulate(cut, columns: 256, productSeconds: 2, pieceSeconds: 0.5,
                                                   sumLatencySeconds: 0.1, sumSecondsPerValue: 1e-4)
        XCTAssertEqual(slow.finish, 11.0304, accuracy: 1e-9)
        XCTAssertEqual(slow.exposed, 11.0304 - 2.5, accuracy: 1e-9)
        // Whole: the product, then the sum.
        let whole = WeightGradientSchedule.simulate(.whole(rows: 384), columns: 256, productSeconds: 2, pieceSeconds: 0.5,
                                                    sumLatencySeconds: 0.1, sumSecondsPerValue: 1e-5)
        XCTAssertEqual(whole.finish, 2 + 0.1 + 0.98304, accuracy: 1e-9)
    }

    /// Coauthor-Physics's shapes (8415 × 256), a 14 ms product per rank, 0.5 ms a pass.
    private func physics(sumSecondsPerValue: Double, calibratedPieces: Int = 3, pieceSeconds: Double = 0.0005) -> WeightGradientSchedule {
        WeightGradientSchedule.choosing(rows: 8415, columns: 256, productSeconds: 0.014, pieceSeconds: pieceSeconds,
                                        sumLatencySeconds: 0.0002, sumSecondsPerValue: sumSecondsPerValue,
                                        calibratedPieces: calibratedPieces)!
    }

    /// A link fast next to the product (a 2.15 M-value sum in 4.3 ms against a 14 ms product): the pieces shrink
    /// towards the end, so the sum left after the last product is a small piece's, well under the calibrated
    /// equal cut's and under 30 % of the whole sum.
    func testAFastLinkShrinksThePiecesTowardsTheEnd() {
        let schedule = physics(sumSecondsPerValue: 2e-9)
        XCTAssertLessThan(schedule.ratio, 1)
        XCTAssertGreaterThan(schedule.rowsPerPiece.count, 1)
        XCTAssertEqual(schedule.rowsPerPiece.reduce(0, +), 8415)
        XCTAssertEqual(schedule.cut(rows: 8415, columns: 256).ranges.map(\.count), schedule.rowsPerPiece)
        XCTAssertLessThan(schedule.predictedExposedSeconds, schedule.predictedCalibratedExposedSeconds)
        XCTAssertLessThan(schedule.predictedExposedSeconds, 0.3 * (0.0002 + 2e-9 * 8415 * 256))
        XCTAssertLessThanOrEqual(schedule.predictedSeconds, schedule.predictedCalibratedSeconds)
    }

    /// A link slower than the product (a sum of 43 ms): the sums queue, so the first piece is small to start them
    /// early; no cut predicts a later end than the chosen one by more than the 1 % tolerance.
    func testASlowLinkStartsTheSumsEarly() {
        let schedule = physics(sumSecondsPerValue: 2e-8)
        XCTAssertGreaterThan(schedule.rowsPerPiece.count, 1)
        XCTAssertLessThan(schedule.rowsPerPiece[0], 8415 / schedule.rowsPerPiece.count + WeightGradientPieces.rowTile)
        XCTAssertLessThanOrEqual(schedule.predictedSeconds, schedule.predictedCalibratedSeconds)
        for pieces in 1...WeightGradientPieces.maximumPieces {
            for ratio in [0.25, 0.5, 1, 2, 4] {
                let other = WeightGradientSchedule.simulate(
                    WeightGradientPieces(rows: 8415, columns: 256, pieces: pieces, ratio: ratio), columns: 256,
                    productSeconds: 0.014, pieceSeconds: 0.0005, sumLatencySeconds: 0.0002, sumSecondsPerValue: 2e-8)
                XCTAssertLessThanOrEqual(schedule.predictedSeconds, other.finish * 1.01 + 1e-12, "\(pieces) at \(ratio)")
            }
        }
    }

    /// Products measured in training three times as long as calibrated: the cut is decided again with the product
    /// and the passes three times as long (the sum as measured), which where the sum is long (here 71 ms against a
    /// 10 ms product as calibrated) gives more pieces to hide it behind, and records what was measured.
    func testMeasuredProductsRefineTheCut() throws {
        let before = try XCTUnwrap(WeightGradientSchedule.choosing(
            rows: 8415, columns: 256, productSeconds: 0.0098, pieceSeconds: 0.0015, sumLatencySeconds: 0,
            sumSecondsPerValue: 3.3e-8, calibratedPieces: 2))
        XCTAssertNil(before.measuredProductSeconds)
        let estimate = 0.0098 + Double(before.rowsPerPiece.count - 1) * 0.0015
        let after = try XCTUnwrap(before.refined(measuredSeconds: 3 * estimate, rows: 8415, columns: 256))
        var expected = try XCTUnwrap(WeightGradientSchedule.choosing(
            rows: 8415, columns: 256, productSeconds: 3 * 0.0098, pieceSeconds: 3 * 0.0015, sumLatencySeconds: 0,
            sumSecondsPerValue: 3.3e-8, calibratedPieces: 2))
        XCTAssertEqual(after.productSeconds, expected.productSeconds, accuracy: 1e-12)
        expected.productSeconds = after.productSeconds
        expected.pieceSeconds = after.pieceSeconds
        expected.predictedSeconds = after.predictedSeconds
        expected.predictedExposedSeconds = after.predictedExposedSeconds
        expected.predictedCalibratedSeconds = after.predictedCalibratedSeconds
        expected.predictedCalibratedExposedSeconds = after.predictedCalibratedExposedSeconds
        expected.measuredProductSeconds = 3 * estimate
        expected.initialRowsPerPiece = before.rowsPerPiece
        XCTAssertEqual(after, expected)
        XCTAssertGreaterThan(after.rowsPerPiece.count, before.rowsPerPiece.count)
        XCTAssertLessThan(after.predictedExposedSeconds, before.predictedExposedSeconds)
        XCTAssertNil(before.refined(measuredSeconds: 0, rows: 8415, columns: 256), "nothing measured")
    }

    /// Pieces as dear as the product, or a sum with nothing to hide behind: one piece. The choice is in the plan's
    /// JSON, and plans without it decode to none.
    func testDearPiecesStayWholeAndTheChoiceIsInThePlan() throws {
        XCTAssertEqual(physics(sumSecondsPerValue: 2e-9, pieceSeconds: 0.014).rowsPerPiece, [8415])
        let free = WeightGradientSchedule.choosing(rows: 8415, columns: 256, productSeconds: 0, pieceSeconds: 0,
                                                   sumLatencySeconds: 0.001, sumSecondsPerValue: 1e-9, calibratedPieces: 1)
        XCTAssertEqual(free?.rowsPerPiece, [8415])
        // Times that are not finite or negative (bad rates) make no cut: the calibrated count stays.
        for bad in [Double.nan, .infinity, -1] {
            XCTAssertNil(WeightGradientSchedule.choosing(rows: 8415, columns: 256, productSeconds: 0.01, pieceSeconds: 0.001,
                                                         sumLatencySeconds: bad, sumSecondsPerValue: 1e-9, calibratedPieces: 2))
            XCTAssertNil(WeightGradientSchedule.choosing(rows: 8415, columns: 256, productSeconds: bad, pieceSeconds: 0.001,
                                                         sumLatencySeconds: 0, sumSecondsPerValue: 1e-9, calibratedPieces: 2))
            XCTAssertNil(WeightGradientSchedule.choosing(rows: 8415, columns: 256, productSeconds: 0.01, pieceSeconds: bad,
                                                         sumLatencySeconds: 0, sumSecondsPerValue: 1e-9, calibratedPieces: 2))
        }

        var plan = FirstLayerPlan(basis: .calibrated, representation: .csr, precompute: false)
        plan.weightGradientSchedule = physics(sumSecondsPerValue: 2e-9)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let json = try encoder.encode(plan)
        XCTAssertEqual(try decoder.decode(FirstLayerPlan.self, from: json), plan)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("\"rows_per_piece\""))
        let older = #"{"basis": "calibrated", "representation": "csr", "precompute": false}"#
        XCTAssertNil(try decoder.decode(FirstLayerPlan.self, from: Data(older.utf8)).weightGradientSchedule)
    }

    /// Two ranks as threads with rates: every rank makes the same cut from the measured sum, the report records
    /// it, and the model is the one of the whole gradient, bit for bit (float32 sums in rank order). With
    /// compressed sums (residuals kept per bucket), a count given by the user, or sums after backward, no cut is
    /// measured. (That the cut is the one summed: `testTheMeasuredCutIsTheOneSummedAndIsRefinedAfterTheSecondEpoch`.)
    func testRanksAgreeOnTheMeasuredCutAndTrainTheWholeGradientsModel() throws {
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=400,classes=3,features=300,degree=6,seed=2").generate()
        let parts = Part.build(dataset: data, partitioning: try Partitioner.partition(graph: data.graph, parts: 2, method: .metis, seed: 1))
        let environment = RunEnvironment(ranks: 2, threadsPerRank: 1, dataset: data)
        // Cheap passes and a costly product, so the pieces pay whatever the threads' sum takes.
        let rates = KernelRates(threads: 1, gemmForwardSecondsPerFlop: 1e-9, gemmTransposedSecondsPerFlop: 1e-9,
                                spmmSecondsPerNonZeroColumn: 1e-9, csrFeaturesSecondsPerNonZeroColumn: 1e-9,
                                spmmTransposedSecondsPerNonZeroColumn: 1e-9, lookupSecondsPerCellColumn: 1e-9,
                                lookupTransposedSecondsPerCellColumn: 1e-9, listingSecondsPerElement: 1e-12,
                                listedSecondsPerNonZeroDepth: 1e-9, listedInputGradientSecondsPerNonZeroColumn: 1e-9)
        func run(_ change: (inout TrainingConfiguration) -> Void) throws -> [TrainingReport] {
            var configuration = TrainingConfiguration(
                dataset: "test", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 256, dropout: 0.5),
                optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 3, seed: 5, threads: 1)
            change(&configuration)
            let settings = configuration
            return try LocalTransport.run(worldSize: 2) { transport in
                try RankTraining.run(part: parts[transport.rank], transport: transport, configuration: settings,
                                     environment: environment, pool: .serial, calibratedRates: rates)
            }
        }
        let measured = try run { _ in }
        let schedule = try XCTUnwrap(measured[0].firstLayerPlan?.weightGradientSchedule)
        XCTAssertEqual(measured[1].firstLayerPlan?.weightGradientSchedule, schedule)
        XCTAssertEqual(schedule.rowsPerPiece.reduce(0, +), 300)
        // Three epochs: the cut was decided again after the second from the products as they ran.
        XCTAssertNotNil(schedule.measuredProductSeconds)
        XCTAssertEqual(schedule.initialRowsPerPiece?.reduce(0, +), 300)
        let whole = try run { $0.weightGradientPieces = 1 }
        XCTAssertNil(whole[0].firstLayerPlan?.weightGradientSchedule)
        XCTAssertEqual(measured[0].epochs.map(\.loss), whole[0].epochs.map(\.loss))
        XCTAssertEqual(measured[1].epochs.map(\.loss), whole[1].epochs.map(\.loss))
        for compression in [GradientCompression.bf16, .int8] {
            let compressed = try run { $0.gradientCompression = compression }
            XCTAssertNil(compressed[0].firstLayerPlan?.weightGradientSchedule, "\(compression)")
        }
        XCTAssertNil(try run { $0.overlapsGradientReduction = false }[0].firstLayerPlan?.weightGradientSchedule)
    }
}
