import Foundation

/// Numbers as the page prints them: independent of the locale (a decimal point, never a comma, which would break
/// SVG coordinates), and never "nan" or "inf" in markup.
enum NumberText {
    /// An SVG coordinate or length, to a tenth of a pixel.
    static func coordinate(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(format: "%.1f", rounded)
    }

    /// A value for people: four significant digits, "–" when there is none.
    static func readable(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "–" }
        if value == 0 { return "0" }
        if abs(value) >= 1e6 || abs(value) < 1e-3 { return String(format: "%.3e", value) }
        return String(format: "%.4g", value)
    }

    /// A tick label with the decimals the tick spacing needs (0.25 → two, 50 → none).
    static func tick(_ value: Double, step: Double) -> String {
        guard value.isFinite, step.isFinite, step > 0 else { return "" }
        let decimals = max(0, min(8, Int((-log10(step)).rounded(.up))))
        // Ticks are sums of steps: zero can come out as -1e-17, which would print as "-0.0".
        let value = abs(value) < step * 1e-6 ? 0 : value
        return String(format: "%.\(decimals)f", value)
    }

    /// A byte count in the unit that suits it.
    static func bytes(_ value: Double) -> String {
        guard value.isFinite else { return "–" }
        let units: [(Double, String)] = [(1e9, "GB"), (1e6, "MB"), (1e3, "kB")]
        for (size, unit) in units where abs(value) >= size {
            return String(format: "%.2f %@", value / size, unit)
        }
        return String(format: "%.0f B", value)
    }
}
