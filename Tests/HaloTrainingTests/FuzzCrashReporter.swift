import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Says which fuzz case was running when the process dies or stalls, so the case can be replayed.
///
/// A trap (precondition, index out of range) kills the test process before XCTest can report anything, and a hang
/// reports nothing at all. So the fuzzer stores, before each case, a line naming the seed, the case and its
/// mutations; a handler for the fatal signals writes that line to stderr (with `write`, which is safe in a signal
/// handler) and passes the signal on to the handler it replaced (the runtime's backtracer), and a watchdog thread
/// aborts with the same line when one case runs longer than any case should.
enum FuzzCrashReporter {
    /// The line to print, NUL-terminated; replaced before each case, read only by the handler and the watchdog.
    private static let capacity = 4096
    private nonisolated(unsafe) static let line = UnsafeMutablePointer<CChar>.allocate(capacity: capacity)
    private nonisolated(unsafe) static var lineLength = 0
    private static let lock = NSLock()
    /// When the current case started (seconds since boot), or 0 between cases.
    private nonisolated(unsafe) static var caseStart: Double = 0
    private nonisolated(unsafe) static var installed = false
    /// The handlers the fatal signals had before, by signal number.
    private nonisolated(unsafe) static var previous: [sigaction] = Array(repeating: .init(), count: 65)

    /// Installs the handlers and the watchdog once per process; `caseLimit` is the longest one case may take.
    static func install(caseLimit: Double) {
        lock.lock()
        defer { lock.unlock() }
        guard !installed else { return }
        installed = true
        for fatal in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
            var action: sigaction = .init()
            action.__sigaction_handler.sa_handler = { number in
                _ = write(2, FuzzCrashReporter.line, FuzzCrashReporter.lineLength)
                // The handler installed before (the Swift runtime's backtracer) takes over: the signal raised here
                // is delivered to it when this handler returns.
                _ = sigaction(number, &FuzzCrashReporter.previous[Int(number)], nil)
                raise(number)
            }
            sigemptyset(&action.sa_mask)
            _ = sigaction(fatal, &action, &previous[Int(fatal)])
        }
        let watchdog = Thread {
            while true {
                Thread.sleep(forTimeInterval: 1)
                lock.lock()
                let start = caseStart
                lock.unlock()
                if start > 0 && ProcessInfo.processInfo.systemUptime - start > caseLimit {
                    let message = "fuzz case ran longer than \(caseLimit) s (a hang):\n"
                    FileHandle.standardError.write(Data(message.utf8))
                    abort()
                }
            }
        }
        watchdog.start()
    }

    /// Records the case about to run; `nil` when no case is running.
    static func begin(_ description: String?) {
        lock.lock()
        defer { lock.unlock() }
        let text = description.map { "\n*** halo fuzz: the process died or stalled in " + $0 + "\n" } ?? ""
        // Copied into one fixed buffer (never freed), so the handler never reads freed memory.
        let bytes = Array(text.utf8CString.dropLast().prefix(capacity - 1))
        line.update(from: bytes, count: bytes.count)
        line[bytes.count] = 0
        lineLength = bytes.count
        caseStart = description == nil ? 0 : ProcessInfo.processInfo.systemUptime
    }
}
