import ArgumentParser
import Foundation
import HaloReportPage
import HaloTraining

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare training runs on one self-contained HTML page.",
        discussion: """
            Reads the reports `halo train --json-out` writes (finished or not) and draws, for all of them side by \
            side: loss and accuracy curves, the epoch time split into compute, halo wait, all-reduce and \
            quantization, bytes sent per epoch, bit-width histograms (AdaQP's assignment cycles, PipeQS's \
            messages) and staleness of pipelined runs. Runs are named by method, dataset and parts.

            The page is one file with inline SVG charts and no scripts: it opens offline in any browser.
              halo report vanilla.json adaqp.json pipeqs.json --out report.html
            """)

    @Argument(help: ArgumentHelp("Reports written by halo train --json-out.", valueName: "run.json"))
    var reports: [String] = []

    @Option(help: ArgumentHelp("The HTML page to write (replaced atomically).", valueName: "file"))
    var out: String

    func validate() throws {
        guard !reports.isEmpty else { throw ValidationError("give at least one report written by halo train --json-out") }
    }

    func run() throws {
        try UserFacingError.checkOutputFile(out, option: "--out")
        let runs = try reports.map { path in
            ReportPage.Run(file: URL(fileURLWithPath: path).lastPathComponent, record: try RecordedRun.read(path: path))
        }
        let page = ReportPage(runs: runs, footnote: "Made by halo report from \(reports.count == 1 ? "1 report" : "\(reports.count) reports").")
        try UserFacingError.write(Data(page.html().utf8), to: out, option: "--out")
        print("wrote \(out)")
    }
}
