import Foundation
import XCTest

/// `halo report`: the page of real runs' reports, one file with nothing to fetch; a file that is not a report, or
/// a destination that cannot be written, refused with the file named.
final class ReportCommandTests: CommandTestCase {
    static let small = "synthetic:nodes=400,classes=3,features=8,degree=6,seed=3"

    func testTwoRunsOnOnePage() throws {
        var reports: [String] = []
        for method in ["vanilla", "pipeqs"] {
            let json = scratch.appendingPathComponent("\(method).json").path
            let outcome = try run(try halo(), ["train", "--dataset", Self.small, "--epochs", "3", "--threads", "1",
                                               "--parts", "2", "--method", method, "--quiet", "--json-out", json],
                                  timeout: 120)
            XCTAssertEqual(outcome.status, 0, "\(outcome)")
            reports.append(json)
        }
        let page = scratch.appendingPathComponent("report.html")
        let outcome = try run(try halo(), ["report"] + reports + ["--out", page.path], timeout: 60)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        let html = try String(contentsOf: page, encoding: .utf8)
        XCTAssertTrue(html.contains("vanilla · synthetic · 2 parts"))
        XCTAssertTrue(html.contains("pipeqs · synthetic · 2 parts"))
        XCTAssertTrue(html.contains("vanilla.json"))
        XCTAssertFalse(html.contains("http"), "nothing to fetch")
        XCTAssertFalse(html.contains("<script"))
        // Loss, two accuracies, a time breakdown per run, bytes, PipeQS's bit widths, staleness.
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 8)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(),
                       ["pipeqs.json", "report.html", "vanilla.json"], "no temporary file is left")
    }

    func testAFileThatIsNotAReportIsNamed() throws {
        let other = scratch.appendingPathComponent("manifest.json")
        try Data(#"{"parts": 2}"#.utf8).write(to: other)
        let page = scratch.appendingPathComponent("report.html")
        let outcome = try run(try halo(), ["report", other.path, "--out", page.path], timeout: 60)
        XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue(outcome.stderr.contains(#"\#(other.path): it is not a halo training report: expected a JSON object with "config", "environment" and "epochs""#),
                      "\(outcome)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: page.path))
    }

    func testAnUnwritableDestinationIsRefused() throws {
        let missing = scratch.appendingPathComponent("missing/report.html").path
        let outcome = try run(try halo(), ["report", scratch.appendingPathComponent("any.json").path, "--out", missing],
                              timeout: 60)
        XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue(outcome.stderr.contains("--out \(missing): folder \(scratch.path)/missing does not exist"), "\(outcome)")
    }
}
