/// Bars over epochs split into parts stacked on each other: the epoch time's breakdown, or the shares of
/// messages sent at each bit width.
struct StackedBarChart {
    struct Component {
        var name: String
        var color: String
    }

    struct Bar {
        var x: Double
        /// One value per component, bottom first.
        var values: [Double]
    }

    var label: String
    var xTitle: String
    var yTitle: String
    var components: [Component]
    var bars: [Bar]
    /// A value axis shared with sibling charts (e.g. the same seconds scale for every run); nil fits these bars.
    var yAxis: ChartAxis?
    var yTickText: ((Double) -> String)?

    func svg() -> String {
        guard !bars.isEmpty else { return ChartFrame.empty(label: label, message: "no epochs") }
        let totals = bars.map { $0.values.filter(\.isFinite).reduce(0, +) }
        let xs = bars.map(\.x)
        // Half a bar's room beyond the first and last bars, so they are not cut by the axes.
        let spacing = xs.count > 1 ? (xs.max()! - xs.min()!) / Double(xs.count - 1) : 1
        let xAxis = ChartAxis(exactly: xs.min()! - spacing / 2, xs.max()! + spacing / 2, targetTicks: 8)
        let frame = ChartFrame(xAxis: xAxis, yAxis: yAxis ?? ChartAxis(covering: totals, including: [0]),
                               xTitle: xTitle, yTitle: yTitle, yTickText: yTickText)
        let width = max(0.5, abs(frame.x(spacing) - frame.x(0)) * 0.8)
        var marks: [String] = []
        for bar in bars {
            var base = 0.0
            let left = NumberText.coordinate(frame.x(bar.x) - width / 2)
            for (component, value) in zip(components, bar.values) where value.isFinite && value > 0 {
                let top = frame.y(base + value), bottom = frame.y(base)
                marks.append(#"<rect x="\#(left)" y="\#(NumberText.coordinate(top))" width="\#(NumberText.coordinate(width))" height="\#(NumberText.coordinate(max(0, bottom - top)))" fill="\#(component.color)"><title>\#(HTMLText.escaped("\(NumberText.readable(bar.x)): \(component.name) \(NumberText.readable(value))"))</title></rect>"#)
                base += value
            }
        }
        return frame.svg(label: label, marks: marks.joined(separator: "\n"))
    }
}
