import Foundation
@testable import HaloReportPage
@testable import HaloTraining
import XCTest

/// `halo report`'s page: one self-contained HTML file (nothing fetched), one SVG per chart, runs named by their
/// configuration, text from reports escaped, incomplete reports drawn.
final class ReportPageTests: XCTestCase {
    private func page(_ reports: [(String, TrainingReport)]) throws -> String {
        try ReportPage(runs: reports.map { ReportPage.Run(file: $0.0, record: try ReportFixtures.recorded($0.1)) }).html()
    }

    private func count(_ needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    func testReportsReadBackFromTheirJSON() throws {
        let run = try ReportFixtures.recorded(ReportFixtures.report(method: .adaqp))
        XCTAssertEqual(run.setup.method, "adaqp")
        XCTAssertEqual(run.setup.dataset, "/data/cora")
        XCTAssertEqual(run.setup.hiddenWidth, 16)
        XCTAssertEqual(run.ranks, 2)
        XCTAssertEqual(run.epochs.count, 6)
        XCTAssertEqual(run.epochs[1].validationAccuracy, 0.45)
        XCTAssertEqual(run.assignmentCycles.map(\.epoch), [3, 5])
        XCTAssertEqual(run.assignmentCycles[0].sites[0].rowsByBits, ["2": 30, "4": 50])
        XCTAssertTrue(run.complete)
    }

    func testThreeMethodsSideBySide() throws {
        let html = try page([("vanilla.json", ReportFixtures.report(method: .vanilla)),
                             ("adaqp.json", ReportFixtures.report(method: .adaqp)),
                             ("pipeqs.json", ReportFixtures.report(method: .pipeqs))])
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        for name in ["vanilla · cora · 2 parts", "adaqp · cora · 2 parts", "pipeqs · cora · 2 parts"] {
            XCTAssertTrue(html.contains(name), name)
        }
        // Loss, validation and test accuracy, one time breakdown per run, bytes, AdaQP's cycle histogram,
        // PipeQS's message shares, staleness.
        XCTAssertEqual(count("<svg", in: html), 1 + 2 + 3 + 1 + 2 + 1)
        XCTAssertEqual(count("<svg", in: html), count("</svg>", in: html))
        XCTAssertEqual(count("<figure>", in: html), count("<svg", in: html), "one SVG per chart")
        // The first cycle, at 8 bits before any re-assignment, is in the histogram though the report records
        // only re-assignments.
        XCTAssertTrue(html.contains("epochs 1–3"), "AdaQP's first cycle, all 8-bit")
        XCTAssertTrue(html.contains("epochs 4–5"), "AdaQP's first re-assignment")
        XCTAssertTrue(html.contains("No bit-width histogram in the report of: vanilla · cora · 2 parts."))
    }

    /// Scores are named by the runs' metric (ROC-AUC for a binary task), and "score" when the runs' metrics differ.
    func testScoresAreNamedByTheirMetric() throws {
        var binary = ReportFixtures.report(method: .vanilla)
        binary.metric = .rocAUC
        let html = try page([("a.json", binary), ("b.json", binary)])
        XCTAssertTrue(html.contains("validation roc-auc") && html.contains("Best validation roc-auc"))
        XCTAssertFalse(html.contains("validation accuracy"))
        let mixed = try page([("a.json", binary), ("b.json", ReportFixtures.report(method: .adaqp))])
        XCTAssertTrue(mixed.contains("validation score"))
        XCTAssertEqual(try ReportFixtures.recorded(ReportFixtures.report(method: .vanilla)).metric, "accuracy",
                       "a report without the field reads as accuracy")
    }

    func testThePageFetchesNothing() throws {
        let html = try page([("a.json", ReportFixtures.report(method: .adaqp)),
                             ("b.json", ReportFixtures.report(method: .pipeqs))])
        XCTAssertFalse(html.contains("http://"))
        XCTAssertFalse(html.contains("https://"))
        XCTAssertFalse(html.contains("//"), "no protocol-relative URL either")
        for external in ["src=", "href=", "<script", "<link", "@import", "url("] {
            XCTAssertFalse(html.contains(external), external)
        }
    }

    func testNumbersInMarkupAreLocaleFreeAndFinite() throws {
        let html = try page([("a.json", ReportFixtures.report(method: .pipeqs))])
        for bad in ["nan", "inf", "NaN"] {
            XCTAssertFalse(html.range(of: "\"\(bad)", options: .caseInsensitive) != nil, bad)
        }
        // Every coordinate attribute is a plain decimal number.
        let pattern = try NSRegularExpression(pattern: #" (?:x|y|x1|x2|y1|y2|cx|cy|width|height|r)="([^"]*)""#)
        let matches = pattern.matches(in: html, range: NSRange(html.startIndex..., in: html))
        XCTAssertGreaterThan(matches.count, 100)
        for match in matches {
            let value = String(html[Range(match.range(at: 1), in: html)!])
            XCTAssertNotNil(Double(value), "coordinate \(value)")
            XCTAssertFalse(value.contains(","), value)
        }
        XCTAssertEqual(NumberText.coordinate(.nan), "0")
        XCTAssertEqual(NumberText.readable(.infinity), "–")
        XCTAssertEqual(NumberText.tick(0.25, step: 0.05), "0.25")
        XCTAssertEqual(NumberText.tick(-1e-17, step: 0.1), "0.0", "a sum of steps that misses zero")
        XCTAssertFalse(html.contains(">-0"), "no negative zero in a tick label")
    }

    func testTextFromReportsIsEscaped() throws {
        var report = ReportFixtures.report(method: .vanilla, dataset: "/data/<b>&\"evil'", done: 2)
        report.stopReason = "<script>alert(1)</script>"
        let html = try page([("x<y>&.json", report)])
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("<b>"))
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(html.contains("x&lt;y&gt;&amp;.json"))
        XCTAssertTrue(html.contains("vanilla · &lt;b&gt;&amp;&quot;evil&#39; · 2 parts"))
    }

    func testAnIncompleteReportRenders() throws {
        let running = ReportFixtures.report(method: .pipeqs, epochs: 30, done: 4)
        let html = try page([("running.json", running), ("empty.json", ReportFixtures.report(method: .vanilla, done: 0))])
        XCTAssertTrue(html.contains("4 / 30"))
        XCTAssertTrue(html.contains("0 / 6"))
        XCTAssertTrue(html.contains("incomplete (still running, or killed)"))
        XCTAssertTrue(html.contains("no epochs"), "the run without epochs gets an empty chart, not a broken one")
        XCTAssertEqual(count("<svg", in: html), count("</svg>", in: html))
    }

    func testRunsWithTheSameConfigurationAreToldApartByFile() throws {
        let html = try page([("seed1.json", ReportFixtures.report(method: .vanilla)),
                             ("seed2.json", ReportFixtures.report(method: .vanilla))])
        XCTAssertTrue(html.contains("vanilla · cora · 2 parts (seed1.json)"))
        XCTAssertTrue(html.contains("vanilla · cora · 2 parts (seed2.json)"))
    }

    func testANonReportIsRefusedNamingTheFile() {
        let cases: [(String, String)] = [
            ("not json", "it is not JSON (expected the report halo train --json-out writes)"),
            (#"{"nodes": 3}"#, #"it is not a halo training report: expected a JSON object with "config", "environment" and "epochs", as halo train --json-out writes"#),
            (#"[1, 2]"#, #"it is not a halo training report: expected a JSON object with "config", "environment" and "epochs", as halo train --json-out writes"#),
        ]
        for (text, reason) in cases {
            XCTAssertThrowsError(try RecordedRun.decode(Data(text.utf8), path: "odd.json")) { error in
                XCTAssertEqual(error as? RecordedRunError, RecordedRunError(path: "odd.json", reason: reason))
            }
        }
    }

    func testAReportWithAMissingFieldNamesIt() throws {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(
            with: ReportFixtures.report(method: .vanilla).jsonData()) as? [String: Any])
        var epochs = try XCTUnwrap(object["epochs"] as? [[String: Any]])
        epochs[2]["loss"] = nil
        object["epochs"] = epochs
        let data = try JSONSerialization.data(withJSONObject: object)
        XCTAssertThrowsError(try RecordedRun.decode(data, path: "cut.json")) { error in
            XCTAssertEqual(String(describing: error), "cut.json: field epochs[2].loss is missing")
        }
    }
}
