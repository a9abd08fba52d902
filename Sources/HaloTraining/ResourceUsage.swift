import Foundation

/// Process resource figures read from the operating system.
public enum ResourceUsage {
    /// Peak resident set size of this process in bytes (`VmHWM`), or 0 where unavailable.
    public static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}

/// A monotonic stopwatch.
public struct Stopwatch: Sendable {
    private var start = DispatchTime.now().uptimeNanoseconds
    public init() {}
    public var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    public mutating func restart() { start = DispatchTime.now().uptimeNanoseconds }
}

extension Array where Element == Double {
    /// The median (mean of the middle two for even counts); 0 for an empty array.
    public var median: Double {
        guard !isEmpty else { return 0 }
        let s = sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// Monotonic clock readings in nanoseconds, comparable with transports' completion times.
enum DispatchTimeNanoseconds {
    static var now: UInt64 { DispatchTime.now().uptimeNanoseconds }
}
