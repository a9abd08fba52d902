import Foundation
import HaloNN

/// The cut of a multi-rank run's first-layer weight gradient into pieces (`WeightGradientPieces`), chosen from the
/// sum's measured time as well as the product's: how many pieces, and how their sizes change from one to the next.
///
/// Why the link matters: while backward forms piece k + 1, piece k's sum travels, and what is left exposed is the
/// sums still travelling when the last product ends. Where the link is fast next to the product, that is the last
/// piece's sum, so the pieces should shrink towards the end; where it is slow, the sums queue, and they should
/// start as early as possible, so the first pieces should be small. The calibrated count
/// (`WeightGradientStreaming`) knows only the product's side, and cuts equally.
///
/// The decision simulates each candidate cut: piece k's product takes its rows' share of the product, plus a pass
/// over G for every piece after the first; its sum starts when the product and the sum before it are done (the
/// sums of one step travel one after another) and takes `latency + values · secondsPerValue`. It takes the cut
/// whose last sum ends first (what the step waits for), preferring fewer pieces, then equal ones, among cuts within
/// 1 % of the whole sum's time of the earliest end: a piece must save more than that to be paid for.
/// Candidates: every count up to `WeightGradientPieces.maximumPieces`, with equal pieces, the balanced ratio
/// (each piece's product as long as the sum of the piece before: the sum's time per row over the product's,
/// between ¼ and 4), and halving and doubling sizes.
///
/// Left out of the simulation: the upper layers' sums, which start earlier and may still be travelling when the
/// first piece's sum starts, and the first layer's other parameters (bias, a SAGE self weight), summed after the
/// last piece; both are small next to a first layer's weight.
///
/// Every input is the same on every rank (the product estimated for the rank with the most rows of G, the sum's
/// time the slowest rank saw), so every rank makes the same cut.
public struct WeightGradientSchedule: Sendable, Codable, Equatable {
    /// Pieces asked for (fewer when pieces would hold less than `WeightGradientPieces.minimumValues` values) and
    /// the ratio of each piece's rows to the one before.
    public var askedPieces: Int
    public var ratio: Double
    /// The rows of each piece of the chosen cut.
    public var rowsPerPiece: [Int]
    /// Once refined in training, the cut the epochs before the refinement ran with.
    public var initialRowsPerPiece: [Int]?
    /// The slowest rank's whole weight-gradient product, and each extra piece's pass over G, in seconds.
    public var productSeconds: Double
    public var pieceSeconds: Double
    /// A sum's measured time: a fixed part and a part per value (in the run's wire format).
    public var sumLatencySeconds: Double
    public var sumSecondsPerValue: Double
    /// The simulated time from the product's start to the last sum's end, and the part of it after the last
    /// product (exposed), for the chosen cut and for the calibrated equal count.
    public var predictedSeconds: Double
    public var predictedExposedSeconds: Double
    public var calibratedPieces: Int
    public var predictedCalibratedSeconds: Double
    public var predictedCalibratedExposedSeconds: Double
    /// The slowest rank's products as measured in training with the cut made before it (nil before that), which
    /// scaled the calibrated product and passes above (`refined(measuredSeconds:rows:columns:)`).
    public var measuredProductSeconds: Double?

    /// The cut of a `rows` × `columns` weight, as decided.
    public func cut(rows: Int, columns: Int) -> WeightGradientPieces {
        WeightGradientPieces(rows: rows, columns: columns, pieces: askedPieces, ratio: ratio)
    }

    /// The simulated time from the product's start to the end of the last piece's sum (`finish`), and the part of
    /// it after the last product (`exposed`), for `cut` of a weight with `columns` columns.
    public static func simulate(
        _ cut: WeightGradientPieces, columns: Int, productSeconds: Double, pieceSeconds: Double,
        sumLatencySeconds: Double, sumSecondsPerValue: Double
    ) -> (finish: Double, exposed: Double) {
        let perRow = cut.rows > 0 ? productSeconds / Double(cut.rows) : 0
        var computed = 0.0, summed = 0.0
        for (k, rows) in cut.ranges.enumerated() {
            computed += perRow * Double(rows.count) + (k > 0 ? pieceSeconds : 0)
            summed = max(summed, computed) + sumLatencySeconds + sumSecondsPerValue * Double(rows.count * columns)
        }
        return (summed, summed - computed)
    }

    /// The cut for a `rows` × `columns` weight whose whole product takes `productSeconds` on the slowest rank, each
    /// extra piece `pieceSeconds`, and whose sums take `sumLatencySeconds + values · sumSecondsPerValue`; with the
    /// calibrated equal count `calibratedPieces` predicted beside it. Nil unless every time is finite and not
    /// negative (the calibrated count then stays).
    public static func choosing(
        rows: Int, columns: Int, productSeconds: Double, pieceSeconds: Double, sumLatencySeconds: Double,
        sumSecondsPerValue: Double, calibratedPieces: Int
    ) -> WeightGradientSchedule? {
        let times = [productSeconds, pieceSeconds, sumLatencySeconds, sumSecondsPerValue]
        guard times.allSatisfy({ $0.isFinite && $0 >= 0 }), rows >= 0, columns >= 0, calibratedPieces >= 1 else { return nil }
        func simulate(_ cut: WeightGradientPieces) -> (finish: Double, exposed: Double) {
            Self.simulate(cut, columns: columns, productSeconds: productSeconds, pieceSeconds: pieceSeconds,
                          sumLatencySeconds: sumLatencySeconds, sumSecondsPerValue: sumSecondsPerValue)
        }
        let productPerRow = productSeconds / Double(max(rows, 1))
        let sumPerRow = sumSecondsPerValue * Double(columns)
        let balanced = productPerRow > 0 ? min(4, max(0.25, sumPerRow / productPerRow)) : 1
        // Ratio 1 first, so equal pieces win ties.
        var ratios = [1.0, balanced, 0.5, 2]
        ratios = ratios.enumerated().filter { i, r in r.isFinite && !ratios[..<i].contains(r) }.map(\.element)
        var candidates: [(pieces: Int, ratio: Double, cut: WeightGradientPieces, finish: Double, exposed: Double)] = []
        for pieces in 1...WeightGradientPieces.maximumPieces {
            for ratio in ratios {
                let cut = WeightGradientPieces(rows: rows, columns: columns, pieces: pieces, ratio: ratio)
                // A cut that came out the same as one already simulated (too few rows for more pieces) adds nothing.
                guard !candidates.contains(where: { $0.cut == cut }) else { continue }
                let predicted = simulate(cut)
                candidates.append((pieces, ratio, cut, predicted.finish, predicted.exposed))
            }
        }
        let best = candidates.map(\.finish).min()!
        let tolerance = 0.01 * (sumLatencySeconds + sumSecondsPerValue * Double(rows * columns))
        // Fewest pieces near the best, then the earliest ratio in `ratios` (equal first).
        let chosen = candidates.filter { $0.finish <= best + tolerance }
            .min { ($0.cut.ranges.count, ratios.firstIndex(of: $0.ratio)!) < ($1.cut.ranges.count, ratios.firstIndex(of: $1.ratio)!) }!
        let calibrated = simulate(WeightGradientPieces(rows: rows, columns: columns, pieces: calibratedPieces))
        return WeightGradientSchedule(
            askedPieces: chosen.pieces, ratio: chosen.ratio, rowsPerPiece: chosen.cut.ranges.map(\.count), initialRowsPerPiece: nil,
            productSeconds: productSeconds, pieceSeconds: pieceSeconds, sumLatencySeconds: sumLatencySeconds,
            sumSecondsPerValue: sumSecondsPerValue, predictedSeconds: chosen.finish,
            predictedExposedSeconds: chosen.exposed, calibratedPieces: calibratedPieces,
            predictedCalibratedSeconds: calibrated.finish, predictedCalibratedExposedSeconds: calibrated.exposed,
            measuredProductSeconds: nil)
    }

    /// This schedule decided again from the products measured in training: `measuredSeconds`, the slowest rank's
    /// products with this cut, against the calibrated estimate of the same (`productSeconds` plus a pass per extra
    /// piece). The product and the passes are scaled by their ratio; the sum's measurement stays. On a host whose
    /// cores the ranks, their communication threads and the network stack share, the products run slower than
    /// the calibration measured them alone, which moves the balance between product and sum.
    /// Nil when nothing was measured.
    public func refined(measuredSeconds: Double, rows: Int, columns: Int) -> WeightGradientSchedule? {
        let estimate = productSeconds + Double(max(rowsPerPiece.count - 1, 0)) * pieceSeconds
        guard measuredSeconds > 0, measuredSeconds.isFinite, estimate > 0 else { return nil }
        let scale = measuredSeconds / estimate
        guard scale.isFinite, var refined = Self.choosing(
            rows: rows, columns: columns, productSeconds: productSeconds * scale, pieceSeconds: pieceSeconds * scale,
            sumLatencySeconds: sumLatencySeconds, sumSecondsPerValue: sumSecondsPerValue, calibratedPieces: calibratedPieces)
        else { return nil }
        refined.measuredProductSeconds = measuredSeconds
        refined.initialRowsPerPiece = rowsPerPiece
        return refined
    }

    /// One line for the log.
    public var summary: String {
        let ms = { (s: Double) in String(format: "%.1f ms", 1000 * s) }
        let refinement = measuredProductSeconds.map { " after the second epoch's products took \(ms($0))" } ?? ""
        let rows = rowsPerPiece.map(String.init).joined(separator: ", ")
        return "first layer's weight gradient in \(rowsPerPiece.count) piece(s) of \(rows) rows\(refinement) "
            + "(product \(ms(productSeconds)) + \(ms(pieceSeconds)) per extra piece; a sum \(ms(sumLatencySeconds)) + "
            + String(format: "%.2f ns", 1e9 * sumSecondsPerValue) + " per value, measured): "
            + "predicted \(ms(predictedExposedSeconds)) of sum after the last product, against \(ms(predictedCalibratedExposedSeconds)) "
            + "with the calibrated \(calibratedPieces) equal piece(s)"
    }
}
