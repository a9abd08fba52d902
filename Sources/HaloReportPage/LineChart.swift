/// Curves over epochs, one per run: loss, accuracies, bytes.
struct LineChart {
    struct Series {
        var name: String
        var color: String
        /// An SVG dash pattern, so runs whose curves coincide (vanilla and AdaQP are often within a hair) stay
        /// visible under each other; empty for a solid line.
        var dashes: String = ""
        /// (x, y) in data units; non-finite points are left out.
        var points: [(x: Double, y: Double)]
    }

    var label: String
    var xTitle: String
    var yTitle: String
    var series: [Series]
    /// Whether the value axis starts at zero (bytes) or hugs the data (loss, accuracy).
    var fromZero = false
    var yTickText: ((Double) -> String)?

    func svg() -> String {
        let drawn = series.map { s in
            Series(name: s.name, color: s.color, dashes: s.dashes, points: s.points.filter { $0.x.isFinite && $0.y.isFinite })
        }
        let all = drawn.flatMap(\.points)
        guard !all.isEmpty else { return ChartFrame.empty(label: label, message: "no data") }
        let frame = ChartFrame(
            xAxis: ChartAxis(covering: all.map(\.x), targetTicks: 8),
            yAxis: ChartAxis(covering: all.map(\.y), including: fromZero ? [0] : []),
            xTitle: xTitle, yTitle: yTitle, yTickText: yTickText)
        var marks: [String] = []
        for s in drawn where !s.points.isEmpty {
            let coordinates = s.points.map { "\(NumberText.coordinate(frame.x($0.x))),\(NumberText.coordinate(frame.y($0.y)))" }
            marks.append(#"<g class="series"><title>\#(HTMLText.escaped(s.name))</title>"#)
            if coordinates.count > 1 {
                let dash = s.dashes.isEmpty ? "" : #" stroke-dasharray="\#(s.dashes)""#
                marks.append(#"<polyline fill="none" stroke="\#(s.color)" stroke-width="2" stroke-linejoin="round"\#(dash) points="\#(coordinates.joined(separator: " "))"/>"#)
            }
            // Markers where points are few enough to tell apart (and always for a lone point).
            if s.points.count <= 40 {
                for point in s.points {
                    marks.append(#"<circle cx="\#(NumberText.coordinate(frame.x(point.x)))" cy="\#(NumberText.coordinate(frame.y(point.y)))" r="2.5" fill="\#(s.color)"><title>\#(HTMLText.escaped("\(s.name): \(NumberText.readable(point.y)) at \(NumberText.readable(point.x))"))</title></circle>"#)
                }
            }
            marks.append("</g>")
        }
        return frame.svg(label: label, marks: marks.joined(separator: "\n"))
    }
}
