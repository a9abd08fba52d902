import Foundation
import HaloGraph

/// Where the outcome of a near tie settled on a run's data (`FirstLayerForwardTrial`) is kept, beside the host
/// calibration it was settled under, so that later runs of the same data and model on this host and binary — a
/// resumed run among them — take the same path without timing again. Like the calibration itself, the timing
/// happens once; after it a seed fixes the run, bit for bit.
///
/// A situation is named by the calibration's file stem (host, ISA, OpenBLAS family, threads, build) and by the
/// plan's estimates, which the cost model computes from those rates and the run's shapes alone: the same cached
/// rates and the same data and model give the same estimates. The file repeats the estimates, and a file whose
/// estimates differ (a hash collision) or that cannot be read counts as absent, so the trial runs again.
public struct FirstLayerTrialCache: Sendable {
    public var directory: String
    /// `CalibrationKey.fileStem` of the calibration whose rates produced the estimates.
    public var calibrationStem: String

    public init(directory: String, calibrationStem: String) {
        self.directory = directory
        self.calibrationStem = calibrationStem
    }

    /// The file for `plan`'s estimates.
    public func file(for plan: FirstLayerPlan) -> String {
        let estimates = (plan.estimatedSeconds ?? [:]).sorted { $0.key < $1.key }
        let bits = estimates.flatMap { [UInt64(FirstLayerPath.allCases.firstIndex(of: $0.key)!), $0.value.bitPattern] }
        return "\(directory)/first-layer-trial-\(calibrationStem)-\(XXHash64.hex(XXHash64.hash(bits))).json"
    }

    private struct Entry: Codable {
        var estimatedSeconds: [String: Double]
        var measuredForwardSeconds: [String: Double]
    }

    /// The forward times stored for `plan`'s estimates, or nil.
    public func lookup(_ plan: FirstLayerPlan) -> [FirstLayerPath: Double]? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: file(for: plan))),
              let entry = try? JSONDecoder().decode(Entry.self, from: data),
              entry.estimatedSeconds == Self.named(plan.estimatedSeconds ?? [:])
        else { return nil }
        var measured: [FirstLayerPath: Double] = [:]
        for (name, seconds) in entry.measuredForwardSeconds {
            guard let path = FirstLayerPath(rawValue: name), seconds.isFinite, seconds >= 0 else { return nil }
            measured[path] = seconds
        }
        return measured[.precomputed] != nil && measured[.hybrid] != nil ? measured : nil
    }

    /// Keeps `measured` for `plan`'s estimates (written aside, then moved over any older file).
    public func store(_ measured: [FirstLayerPath: Double], for plan: FirstLayerPlan) throws {
        let entry = Entry(estimatedSeconds: Self.named(plan.estimatedSeconds ?? [:]), measuredForwardSeconds: Self.named(measured))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let path = file(for: plan)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AtomicFile.replace(path, in: directory, with: try encoder.encode(entry), temporary: "\(path).tmp-\(getpid())")
    }

    private static func named(_ seconds: [FirstLayerPath: Double]) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: seconds.map { ($0.key.rawValue, $0.value) })
    }
}
