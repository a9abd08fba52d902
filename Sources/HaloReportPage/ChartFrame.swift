/// The box every chart is drawn in: the plot area inside margins for the tick labels, horizontal grid lines at
/// the value axis's ticks, and the axis titles. Charts map their data through `x` and `y` and wrap their marks
/// with `svg`.
struct ChartFrame {
    static let width = 640.0
    static let height = 300.0
    static let left = 70.0
    static let right = 16.0
    static let top = 14.0
    static let bottom = 46.0

    var xAxis: ChartAxis
    var yAxis: ChartAxis
    var xTitle: String
    var yTitle: String
    /// Tick labels of the value axis (e.g. as percentages or megabytes).
    var yTickText: (Double) -> String

    init(xAxis: ChartAxis, yAxis: ChartAxis, xTitle: String, yTitle: String, yTickText: ((Double) -> String)? = nil) {
        self.xAxis = xAxis
        self.yAxis = yAxis
        self.xTitle = xTitle
        self.yTitle = yTitle
        let step = yAxis.step
        self.yTickText = yTickText ?? { NumberText.tick($0, step: step) }
    }

    static var plotWidth: Double { width - left - right }
    static var plotHeight: Double { height - top - bottom }

    func x(_ value: Double) -> Double { Self.left + xAxis.fraction(value) * Self.plotWidth }
    func y(_ value: Double) -> Double { Self.top + (1 - yAxis.fraction(value)) * Self.plotHeight }

    /// The whole `<svg>` element: frame, grid and axes beneath `marks`. `label` is its accessible name.
    func svg(label: String, marks: String, xTicks: [(value: Double, text: String)]? = nil) -> String {
        typealias N = NumberText
        var parts: [String] = []
        parts.append(#"<svg class="chart" viewBox="0 0 \#(N.coordinate(Self.width)) \#(N.coordinate(Self.height))" role="img" aria-label="\#(HTMLText.escaped(label))">"#)
        let bottomY = Self.top + Self.plotHeight
        for tick in yAxis.ticks {
            let ty = N.coordinate(y(tick))
            parts.append(#"<line class="gridline" x1="\#(N.coordinate(Self.left))" x2="\#(N.coordinate(Self.left + Self.plotWidth))" y1="\#(ty)" y2="\#(ty)"/>"#)
            parts.append(#"<text class="tick" x="\#(N.coordinate(Self.left - 6))" y="\#(ty)" text-anchor="end" dominant-baseline="middle">\#(HTMLText.escaped(yTickText(tick)))</text>"#)
        }
        let xLabels = xTicks ?? xAxis.ticks.map { ($0, NumberText.tick($0, step: xAxis.step)) }
        for tick in xLabels {
            let tx = N.coordinate(x(tick.value))
            parts.append(#"<line class="axis" x1="\#(tx)" x2="\#(tx)" y1="\#(N.coordinate(bottomY))" y2="\#(N.coordinate(bottomY + 4))"/>"#)
            parts.append(#"<text class="tick" x="\#(tx)" y="\#(N.coordinate(bottomY + 16))" text-anchor="middle">\#(HTMLText.escaped(tick.text))</text>"#)
        }
        parts.append(#"<line class="axis" x1="\#(N.coordinate(Self.left))" x2="\#(N.coordinate(Self.left + Self.plotWidth))" y1="\#(N.coordinate(bottomY))" y2="\#(N.coordinate(bottomY))"/>"#)
        parts.append(#"<line class="axis" x1="\#(N.coordinate(Self.left))" x2="\#(N.coordinate(Self.left))" y1="\#(N.coordinate(Self.top))" y2="\#(N.coordinate(bottomY))"/>"#)
        parts.append(marks)
        parts.append(#"<text class="axis-title" x="\#(N.coordinate(Self.left + Self.plotWidth / 2))" y="\#(N.coordinate(Self.height - 6))" text-anchor="middle">\#(HTMLText.escaped(xTitle))</text>"#)
        parts.append(#"<text class="axis-title" transform="translate(14 \#(N.coordinate(Self.top + Self.plotHeight / 2))) rotate(-90)" text-anchor="middle">\#(HTMLText.escaped(yTitle))</text>"#)
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    /// A chart with nothing to draw still takes its place, saying so.
    static func empty(label: String, message: String) -> String {
        typealias N = NumberText
        return #"<svg class="chart" viewBox="0 0 \#(N.coordinate(width)) \#(N.coordinate(height))" role="img" aria-label="\#(HTMLText.escaped(label))">"#
            + #"<text class="empty" x="\#(N.coordinate(width / 2))" y="\#(N.coordinate(height / 2))" text-anchor="middle">\#(HTMLText.escaped(message))</text></svg>"#
    }
}
