import Foundation
import HaloTraining

/// How the page names and colours runs: by their configuration (method, dataset, parts), the way people say
/// "adaqp on cora with 4 parts", with the file name added where two runs would otherwise share a name.
enum RunNaming {
    /// Distinct colours, in the order runs are given; more runs than colours reuse them.
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]

    static func color(ofRunAt index: Int) -> String { palette[index % palette.count] }

    /// Dash patterns in turn (solid first), so a curve drawn over another of the same shape leaves it visible.
    static let dashPatterns = ["", "7 4", "2 3", "10 3 2 3"]

    static func dashes(ofRunAt index: Int) -> String { dashPatterns[index % dashPatterns.count] }

    /// "adaqp · cora · 2 parts"; a synthetic dataset is named "synthetic" (its spec is in the summary table).
    static func configurationName(of run: RecordedRun) -> String {
        let dataset = run.setup.dataset.hasPrefix("synthetic:")
            ? "synthetic"
            : URL(fileURLWithPath: run.setup.dataset).standardizedFileURL.lastPathComponent
        let parts = run.ranks == 1 ? "1 part" : "\(run.ranks) parts"
        return "\(run.setup.method) · \(dataset) · \(parts)"
    }

    /// One name per run, unique: configuration names that repeat get their file's name after them.
    static func names(of runs: [ReportPage.Run]) -> [String] {
        let base = runs.map { configurationName(of: $0.record) }
        var counts: [String: Int] = [:]
        for name in base { counts[name, default: 0] += 1 }
        return zip(base, runs).map { name, run in
            counts[name]! > 1 ? "\(name) (\(run.file))" : name
        }
    }
}
