/// Side-by-side bars per group: a histogram of bit widths for each AdaQP assignment cycle.
struct GroupedBarChart {
    struct Group {
        /// Shown under the group ("epochs 1–50").
        var name: String
        /// One value per bar kind.
        var values: [Double]
    }

    var label: String
    var xTitle: String
    var yTitle: String
    /// The bar kinds, with their colours, in every group's order.
    var kinds: [(name: String, color: String)]
    var groups: [Group]
    var yTickText: ((Double) -> String)?

    func svg() -> String {
        guard !groups.isEmpty else { return ChartFrame.empty(label: label, message: "no assignment cycles") }
        let frame = ChartFrame(
            xAxis: ChartAxis(exactly: -0.5, Double(groups.count) - 0.5),
            yAxis: ChartAxis(covering: groups.flatMap(\.values), including: [0]),
            xTitle: xTitle, yTitle: yTitle, yTickText: yTickText)
        let groupWidth = (frame.x(1) - frame.x(0)) * 0.8
        let barWidth = groupWidth / Double(max(kinds.count, 1))
        var marks: [String] = []
        for (index, group) in groups.enumerated() {
            let start = frame.x(Double(index)) - groupWidth / 2
            for (k, kind) in kinds.enumerated() where k < group.values.count {
                let value = group.values[k]
                guard value.isFinite else { continue }
                let top = frame.y(max(value, 0)), bottom = frame.y(0)
                marks.append(#"<rect x="\#(NumberText.coordinate(start + Double(k) * barWidth))" y="\#(NumberText.coordinate(top))" width="\#(NumberText.coordinate(barWidth * 0.92))" height="\#(NumberText.coordinate(max(0, bottom - top)))" fill="\#(kind.color)"><title>\#(HTMLText.escaped("\(group.name), \(kind.name): \(yTickText?(value) ?? NumberText.readable(value))"))</title></rect>"#)
            }
        }
        let ticks = groups.enumerated().map { (value: Double($0.offset), text: $0.element.name) }
        return frame.svg(label: label, marks: marks.joined(separator: "\n"), xTicks: ticks)
    }
}
