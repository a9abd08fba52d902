import Foundation

/// The value range of one chart axis and its tick marks at "nice" steps (1, 2 or 5 times a power of ten), so
/// grid lines fall on round numbers.
struct ChartAxis {
    var lower: Double
    var upper: Double
    var step: Double
    var ticks: [Double]

    /// An axis covering `values` (and `including`, e.g. 0 for a bar chart), with about `targetTicks` ticks, its
    /// ends widened to the ticks around the data.
    init(covering values: [Double], including extra: [Double] = [], targetTicks: Int = 5) {
        let finite = (values + extra).filter(\.isFinite)
        var low = finite.min() ?? 0
        var high = finite.max() ?? 1
        if low == high {
            // One value: a range around it, so it sits mid-chart instead of on a degenerate axis.
            let pad = low == 0 ? 1 : abs(low) * 0.1
            low -= pad
            high += pad
            if finite.allSatisfy({ $0 >= 0 }) && low < 0 { low = 0 }
        }
        let step = Self.niceStep(span: high - low, targetTicks: targetTicks)
        self.init(lower: floor(low / step) * step, upper: ceil(high / step) * step, step: step)
    }

    /// An axis from exactly `lower` to `upper` (bars that must reach the plot's edges), ticks at nice steps
    /// inside it.
    init(exactly lower: Double, _ upper: Double, targetTicks: Int = 5) {
        let step = Self.niceStep(span: max(upper - lower, .leastNormalMagnitude), targetTicks: targetTicks)
        self.init(lower: lower, upper: upper, step: step)
    }

    private init(lower: Double, upper: Double, step: Double) {
        self.lower = lower
        self.upper = upper
        self.step = step
        // Multiples of the step (not a running sum, whose rounding drifts), with -0 made 0.
        let first = ceil(lower / step - 1e-9), last = floor(upper / step + 1e-9)
        ticks = first <= last ? stride(from: first, through: last, by: 1).map { $0 == 0 ? 0 : $0 * step } : []
    }

    private static func niceStep(span: Double, targetTicks: Int) -> Double {
        let raw = span / Double(max(targetTicks, 1))
        let magnitude = pow(10, floor(log10(raw)))
        return [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    }

    /// `value`'s position in 0...1 along the axis.
    func fraction(_ value: Double) -> Double {
        upper > lower ? (value - lower) / (upper - lower) : 0.5
    }
}
