import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A `halo` (or `mpirun … halo`) process started in the background, its output going to files in `scratch`.
final class RunningCommand {
    let process = Process()
    let stdout: URL
    let stderr: URL

    init(_ executable: URL, _ arguments: [String], in scratch: URL) throws {
        stdout = scratch.appendingPathComponent("stdout-\(UUID().uuidString)")
        stderr = scratch.appendingPathComponent("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !(key.hasPrefix("OMPI_COMM_WORLD") || key.hasPrefix("PMIX_") || key.hasPrefix("PMI_"))
        }
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        environment["XDG_CACHE_HOME"] = XCTestCase.testCacheHome
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: stdout)
        process.standardError = try FileHandle(forWritingTo: stderr)
        try process.run()
    }

    var output: String {
        "--- stdout\n\((try? String(contentsOf: stdout, encoding: .utf8)) ?? "")\n"
            + "--- stderr\n\((try? String(contentsOf: stderr, encoding: .utf8)) ?? "")"
    }

    var errorText: String { (try? String(contentsOf: stderr, encoding: .utf8)) ?? "" }

    /// Polls (every `interval` seconds) until `condition` holds or the process ends; false after `timeout` seconds.
    func wait(for timeout: TimeInterval, interval: TimeInterval = 0.02, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            if !process.isRunning { return condition() }
            Thread.sleep(forTimeInterval: interval)
        }
        return false
    }

    /// Waits for the process to end (killing it after `timeout` seconds); returns its status and the seconds taken.
    func finish(timeout: TimeInterval) -> (status: Int32, seconds: Double, timedOut: Bool) {
        let start = Date()
        let ended = wait(for: timeout) { !process.isRunning }
        if !ended {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        return (process.terminationStatus, Date().timeIntervalSince(start), !ended)
    }

    /// SIGKILLs the process and every process it started (mpirun's ranks): a crash no handler sees.
    func killTree() {
        for child in Self.children(of: process.processIdentifier) { kill(child, SIGKILL) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// The processes whose parent is `pid` (from /proc).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { candidate in
            guard let stat = try? String(contentsOfFile: "/proc/\(candidate)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            // Fields after the command's closing parenthesis: state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid
        }
    }
}

extension CommandTestCase {
    /// The number of epochs in the report at `json`, or 0 while there is no valid one.
    func epochsWritten(_ json: URL) -> Int {
        guard let data = FileManager.default.contents(atPath: json.path),
              let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return 0 }
        return (report["epochs"] as? [Any])?.count ?? 0
    }
}
