import Foundation

/// Process resource figures read from the operating system.
public enum ResourceUsage {
    /// Peak resident set size of this process in bytes (`VmHWM`), or 0 where unavailable.
    public static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let kb = kilobytes("VmHWM", in: status) else { return 0 }
        return kb * 1024
    }

    /// The value of `field` in a `/proc` file's "Field:  12345 kB" lines. The kernel right-aligns the number in 8
    /// columns after a tab (`/proc/self/status`), so from 10^7 kB (9.5 GiB) on only the tab separates it from the
    /// label: split on any white space.
    public static func kilobytes(_ field: String, in text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.dropFirst(field.count + 1).split(whereSeparator: \.isWhitespace).compactMap { Int($0) }.first
        }
        return nil
    }
}

extension ResourceUsage {
    /// This process's resident set now, in bytes (0 where unavailable): resident pages (second field of
    /// `/proc/self/statm`) times the page size.
    public static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
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

/// The largest resident set this process reached while a piece of work ran, sampled from `/proc/self/statm` every
/// `interval` on a thread of its own: the process-wide peak (`VmHWM`) cannot be narrowed to one phase once an
/// earlier phase went higher, and a phase such as partitioning frees its working memory before it returns.
public final class ResidentMemorySampler: @unchecked Sendable {
    private let lock = NSLock()
    private var largest = 0
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    /// Starts sampling now.
    public init(interval: Double = 0.05) {
        largest = ResourceUsage.residentBytes()
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                let now = ResourceUsage.residentBytes()
                lock.withLock { largest = max(largest, now) }
                Thread.sleep(forTimeInterval: interval)
            }
            done.signal()
        }
        thread.start()
    }

    /// Stops sampling and returns the largest resident set seen, in bytes (0 where the system does not say).
    public func stop() -> Int {
        let now = ResourceUsage.residentBytes()
        lock.withLock {
            running = false
            largest = max(largest, now)
        }
        done.wait()
        return lock.withLock { largest }
    }
}
