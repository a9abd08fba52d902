import Foundation
import HaloTraining

/// One self-contained HTML page comparing training runs (`halo report`): a summary table, loss and accuracy
/// curves, the epoch time's breakdown, bytes per epoch, bit-width histograms and staleness, every chart an
/// inline SVG. Nothing is fetched: no scripts, fonts, images or style sheets from anywhere, so the page opens
/// offline and can be mailed or archived as one file.
public struct ReportPage {
    /// A run's report and the file it came from.
    public struct Run {
        /// The file's name as shown on the page.
        public var file: String
        public var record: RecordedRun

        public init(file: String, record: RecordedRun) {
            self.file = file
            self.record = record
        }
    }

    public var runs: [Run]
    /// Shown in the footer (e.g. the time the page was made); empty for none.
    public var footnote: String

    public init(runs: [Run], footnote: String = "") {
        self.runs = runs
        self.footnote = footnote
    }

    /// The parts of an epoch's time, bottom of the stack first, with the record field each comes from.
    static let timeComponents: [(name: String, color: String, seconds: @Sendable (EpochRecord) -> Double)] = [
        ("compute", "#4c78a8", { $0.computeTime }),
        ("halo wait", "#f58518", { $0.communicationWaitTime }),
        ("all-reduce", "#e45756", { $0.allReduceTime }),
        ("quantization", "#72b7b2", { $0.quantizeTime }),
    ]

    /// Bit widths in the order the histograms show them, with their colours.
    static let bitWidths: [(bits: String, color: String)] = [
        ("2", "#e45756"), ("4", "#f58518"), ("8", "#54a24b"), ("32", "#4c78a8"),
    ]

    public func html() -> String {
        let names = RunNaming.names(of: runs)
        var body: [String] = []
        body.append("<h1>Halo training report</h1>")
        body.append("<p class=\"lede\">\(runs.count == 1 ? "1 run" : "\(runs.count) runs"). Epochs are counted from 1. Hover a mark for its value.</p>")
        body.append(summaryTable(names: names))
        body.append(section("Loss and \(scoreName)", legend: runLegend(names), charts: [
            lossChart(names: names),
            accuracyChart(names: names, title: "validation \(scoreName)", value: \.validationAccuracy),
            accuracyChart(names: names, title: "test \(scoreName)", value: \.testAccuracy),
        ]))
        body.append(section("Epoch time", legend: legend(Self.timeComponents.map { ($0.name, $0.color) }),
                            note: "The training step of each epoch (evaluation excluded), as rank 0 measured it, split into computing, waiting for halo messages, all-reduces and quantization. One scale for every run.",
                            charts: timeCharts(names: names)))
        body.append(section("Bytes sent per epoch", legend: runLegend(names),
                            note: "All ranks together: halo rows and gradients and all-reduce payloads.",
                            charts: [bytesChart(names: names)]))
        body.append(bitWidthSection(names: names))
        let pipelined = runs.indices.filter { runs[$0].record.epochs.contains { !($0.pipeline ?? []).isEmpty } }
        if !pipelined.isEmpty {
            body.append(section("Staleness", legend: runLegend(names, only: pipelined),
                                note: "Pipelined methods: mean age, in epochs, of the halo blocks each layer used.",
                                charts: [stalenessChart(names: names)]))
        }
        if !footnote.isEmpty { body.append("<footer>\(HTMLText.escaped(footnote))</footer>") }
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Halo training report</title>
            <style>\(Self.style)</style>
            </head>
            <body>
            \(body.joined(separator: "\n"))
            </body>
            </html>

            """
    }

    // MARK: Sections

    private func section(_ title: String, legend: String, note: String? = nil, charts: [String]) -> String {
        var html = "<section>\n<h2>\(HTMLText.escaped(title))</h2>\n"
        if let note { html += "<p class=\"note\">\(HTMLText.escaped(note))</p>\n" }
        html += legend + "\n<div class=\"grid\">\n" + charts.joined(separator: "\n") + "\n</div>\n</section>"
        return html
    }

    /// The runs' names in their colours; `only` limits it to the runs a chart draws.
    private func runLegend(_ names: [String], only drawn: [Int]? = nil) -> String {
        legend((drawn ?? Array(names.indices)).map { (names[$0], RunNaming.color(ofRunAt: $0)) })
    }

    private func legend(_ entries: [(name: String, color: String)]) -> String {
        let items = entries.map {
            "<li><span class=\"swatch\" style=\"background:\($0.color)\"></span>\(HTMLText.escaped($0.name))</li>"
        }
        return "<ul class=\"legend\">" + items.joined() + "</ul>"
    }

    /// A chart with its caption.
    private func figure(_ caption: String, _ svg: String) -> String {
        "<figure>\(svg)<figcaption>\(HTMLText.escaped(caption))</figcaption></figure>"
    }

    private func summaryTable(names: [String]) -> String {
        var rows: [String] = []
        for (index, run) in runs.enumerated() {
            let r = run.record
            let status: String
            if r.complete {
                status = "complete"
            } else {
                status = "incomplete" + (r.stopReason.map { ": \($0)" } ?? " (still running, or killed)")
            }
            let best = r.bestValidationAccuracy.map { accuracy in
                NumberText.readable(accuracy) + (bestEpoch(of: r).map { " (epoch \($0))" } ?? "")
            } ?? "–"
            let cells = [
                "<span class=\"swatch\" style=\"background:\(RunNaming.color(ofRunAt: index))\"></span>\(HTMLText.escaped(names[index]))",
                HTMLText.escaped(run.file),
                HTMLText.escaped("\(r.setup.modelKind), \(r.setup.layers) layers × \(r.setup.hiddenWidth); seed \(r.setup.seed); \(r.setup.dataset)"),
                "\(r.epochs.count) / \(r.setup.epochs)",
                HTMLText.escaped(status),
                HTMLText.escaped(best),
                HTMLText.escaped(NumberText.readable(r.testAccuracyAtBestValidation)),
                HTMLText.escaped(NumberText.readable(r.epochTimeMedian)),
                HTMLText.escaped(NumberText.bytes(r.bytesSentPerEpoch)),
            ]
            rows.append("<tr class=\"\(r.complete ? "" : "incomplete")\">" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>")
        }
        let headings = ["Run", "File", "Model and data", "Epochs", "Status", "Best validation \(scoreName)",
                        "Test at best validation", "Median epoch (s)", "Bytes per epoch"]
        return "<table class=\"summary\"><thead><tr>" + headings.map { "<th>\($0)</th>" }.joined()
            + "</tr></thead><tbody>\n" + rows.joined(separator: "\n") + "\n</tbody></table>"
    }

    /// The epoch (from 1) of the best validation score, found in the epochs (reports carry it too, but older
    /// ones and incomplete ones may not).
    private func bestEpoch(of run: RecordedRun) -> Int? {
        guard let best = run.bestValidationAccuracy else { return nil }
        return run.epochs.first { $0.validationAccuracy == best }.map { $0.epoch + 1 }
    }

    // MARK: Charts

    private func lineSeries(names: [String], _ point: (EpochRecord) -> Double?) -> [LineChart.Series] {
        runs.enumerated().map { index, run in
            LineChart.Series(name: names[index], color: RunNaming.color(ofRunAt: index), dashes: RunNaming.dashes(ofRunAt: index),
                             points: run.record.epochs.compactMap { record in
                                 point(record).map { (x: Double(record.epoch + 1), y: $0) }
                             })
        }
    }

    private func lossChart(names: [String]) -> String {
        figure("training loss", LineChart(label: "training loss per epoch", xTitle: "epoch", yTitle: "loss",
                                          series: lineSeries(names: names) { $0.loss }).svg())
    }

    /// What the runs' scores measure: their metric when they share one (accuracy, roc-auc, micro-f1), else "score".
    private var scoreName: String {
        let metrics = Set(runs.map(\.record.metric))
        return metrics.count == 1 ? metrics.first! : "score"
    }

    private func accuracyChart(names: [String], title: String, value: KeyPath<EpochRecord, Double?>) -> String {
        figure(title, LineChart(label: "\(title) per evaluated epoch", xTitle: "epoch", yTitle: scoreName,
                                series: lineSeries(names: names) { $0[keyPath: value] }).svg())
    }

    private func bytesChart(names: [String]) -> String {
        figure("bytes sent (MB)", LineChart(label: "bytes sent per epoch", xTitle: "epoch", yTitle: "MB",
                                            series: lineSeries(names: names) { Double($0.bytesSent) / 1e6 },
                                            fromZero: true).svg())
    }

    /// One stacked chart per run, on the value scale of the slowest epoch of all.
    private func timeCharts(names: [String]) -> [String] {
        let totals = runs.flatMap { run in
            run.record.epochs.map { record in Self.timeComponents.reduce(0) { $0 + $1.seconds(record) } }
        }
        let shared = ChartAxis(covering: totals, including: [0])
        return runs.enumerated().map { index, run in
            let chart = StackedBarChart(
                label: "epoch time of \(names[index])", xTitle: "epoch", yTitle: "seconds",
                components: Self.timeComponents.map { .init(name: $0.name, color: $0.color) },
                bars: run.record.epochs.map { record in
                    .init(x: Double(record.epoch + 1), values: Self.timeComponents.map { $0.seconds(record) })
                },
                yAxis: shared)
            return figure(names[index], chart.svg())
        }
    }

    /// A share as a whole percentage (a tick of -1e-17 reads "0%", not "-0%").
    private func percent(_ share: Double) -> String { String(format: "%.0f%%", abs(share) < 5e-5 ? 0 : 100 * share) }

    private func bitWidthSection(names: [String]) -> String {
        var charts: [String] = []
        var withoutHistogram: [String] = []
        for (index, run) in runs.enumerated() {
            let record = run.record
            if !record.assignmentCycles.isEmpty {
                charts.append(figure("\(names[index]): rows per bit width, each assignment cycle",
                                     assignmentHistogram(record, name: names[index])))
            } else if record.epochs.contains(where: { ($0.pipeline ?? []).contains { !$0.messagesByBits.isEmpty } }) {
                charts.append(figure("\(names[index]): messages per bit width, each epoch",
                                     messageShares(record, name: names[index])))
            } else {
                withoutHistogram.append(names[index])
            }
        }
        let unquantized = withoutHistogram.isEmpty ? ""
            : " No bit-width histogram in the report of: " + withoutHistogram.joined(separator: "; ") + "."
        if charts.isEmpty {
            return section("Bit widths", legend: "", note: unquantized.trimmingCharacters(in: .whitespaces), charts: [])
        }
        return section("Bit widths", legend: legend(Self.bitWidths.map { ("\($0.bits) bit", $0.color) }),
                       note: "AdaQP: the share of halo rows given each width, over every layer and direction, per assignment cycle. PipeQS: the share of messages sent at each width, per epoch." + unquantized,
                       charts: charts)
    }

    /// AdaQP: for each cycle, the share of rows at each width (summed over layers and directions). The report holds
    /// the re-assignments; the cycle before the first one sent every row at 8 bits while tracing variances
    /// (`AdaptivePrecision`), and is shown as such.
    private func assignmentHistogram(_ record: RecordedRun, name: String) -> String {
        let cycles = record.assignmentCycles
        let lastEpoch = max(record.epochs.last.map { $0.epoch + 1 } ?? record.setup.epochs, 1)
        func span(from start: Int, to end: Int) -> String {
            end > start + 1 ? "epochs \(start + 1)–\(end)" : "epoch \(start + 1)"
        }
        var groups: [GroupedBarChart.Group] = []
        if let first = cycles.first, first.epoch > 0 {
            groups.append(.init(name: span(from: 0, to: first.epoch),
                                values: Self.bitWidths.map { $0.bits == "8" ? 1 : 0 }))
        }
        groups += cycles.enumerated().map { index, cycle -> GroupedBarChart.Group in
            var rows: [String: Int] = [:]
            for site in cycle.sites { rows.merge(site.rowsByBits, uniquingKeysWith: +) }
            let total = Double(max(rows.values.reduce(0, +), 1))
            let end = index + 1 < cycles.count ? cycles[index + 1].epoch : lastEpoch
            return .init(name: span(from: cycle.epoch, to: end), values: Self.bitWidths.map { Double(rows[$0.bits] ?? 0) / total })
        }
        return GroupedBarChart(label: "bit widths per assignment cycle of \(name)", xTitle: "assignment cycle",
                               yTitle: "share of rows", kinds: Self.bitWidths.map { ("\($0.bits) bit", $0.color) },
                               groups: groups, yTickText: percent).svg()
    }

    /// PipeQS: per epoch, the share of messages sent at each width.
    private func messageShares(_ record: RecordedRun, name: String) -> String {
        let bars = record.epochs.compactMap { epoch -> StackedBarChart.Bar? in
            var messages: [String: Int] = [:]
            for site in epoch.pipeline ?? [] { messages.merge(site.messagesByBits, uniquingKeysWith: +) }
            let total = messages.values.reduce(0, +)
            guard total > 0 else { return nil }
            return .init(x: Double(epoch.epoch + 1),
                         values: Self.bitWidths.map { Double(messages[$0.bits] ?? 0) / Double(total) })
        }
        return StackedBarChart(label: "bit widths of messages per epoch of \(name)", xTitle: "epoch",
                               yTitle: "share of messages",
                               components: Self.bitWidths.map { .init(name: "\($0.bits) bit", color: $0.color) },
                               bars: bars, yAxis: ChartAxis(covering: [0, 1]), yTickText: percent).svg()
    }

    private func stalenessChart(names: [String]) -> String {
        let series = lineSeries(names: names) { record -> Double? in
            guard let sites = record.pipeline, !sites.isEmpty else { return nil }
            let uses = sites.reduce(0) { $0 + $1.blockAges.reduce(0, +) }
            guard uses > 0 else { return nil }
            let ages = sites.reduce(0) { $0 + $1.blockAges.enumerated().reduce(0) { $0 + $1.offset * $1.element } }
            return Double(ages) / Double(uses)
        }
        return figure("mean block age (epochs)", LineChart(label: "staleness per epoch", xTitle: "epoch",
                                                           yTitle: "mean age (epochs)", series: series,
                                                           fromZero: true).svg())
    }

    static let style = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:24px auto;max-width:1360px;padding:0 16px}
        h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}
        .lede,.note{color:#555;margin:4px 0}
        table.summary{border-collapse:collapse;width:100%;margin-top:12px;font-size:13px}
        table.summary th,table.summary td{border-bottom:1px solid #e4e4e4;padding:5px 8px;text-align:left;vertical-align:top}
        table.summary th{background:#f5f5f5}tr.incomplete td{background:#fff8e6}
        .legend{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:6px 18px}
        .swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px 20px}
        figure{margin:0}figcaption{text-align:center;color:#444;font-size:13px}
        svg.chart{width:100%;height:auto;background:#fff}
        svg .gridline{stroke:#e8e8e8;stroke-width:1}svg .axis{stroke:#888;stroke-width:1}
        svg .tick{font-size:11px;fill:#555}svg .axis-title{font-size:12px;fill:#333}svg .empty{font-size:14px;fill:#999}
        footer{margin-top:32px;color:#777;font-size:12px}
        """
}
