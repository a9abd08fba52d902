import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `halo` executable (directly or under mpirun) as a user would, with a time limit, capturing its
/// output. Shared by the end-to-end tests of the CLI, the MPI transport and distributed training.
extension XCTestCase {

    struct Outcome: CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        var timedOut: Bool

        var description: String {
            "exit \(status) after \(String(format: "%.1f", seconds)) s\(timedOut ? " (timed out)" : "")\n"
                + "--- stdout\n\(stdout)\n--- stderr\n\(stderr)"
        }
    }

    func launcherArguments(ranks: Int) -> [String] {
        ["--oversubscribe", "--bind-to", "none", "-np", String(ranks)]
    }

    func assertAllRanksOK(_ outcome: Outcome, ranks: Int, pattern: String) throws {
        XCTAssertFalse(outcome.timedOut, "\(outcome)")
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        for rank in 0..<ranks {
            let line = String(format: pattern, rank, ranks)
            XCTAssertTrue(outcome.stdout.contains(line), "missing \"\(line)\"\n\(outcome)")
        }
    }

    func tools() throws -> (mpirun: URL, halo: URL) {
        guard let mpirun = Self.findOnPath("mpirun") else { throw XCTSkip("mpirun is not on PATH") }
        guard let halo = haloBinary() else {
            XCTFail("halo binary not found next to the test bundle (build the package first)")
            throw XCTSkip("halo binary missing")
        }
        return (mpirun, halo)
    }

    /// The products directory holds the test bundle (`…/debug/HaloPackageTests.xctest`) and the `halo` executable.
    func haloBinary() -> URL? {
        var directories: [URL] = []
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        directories.append(Bundle.main.bundleURL)
        directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
        if let argument0 = CommandLine.arguments.first {
            directories.append(URL(fileURLWithPath: argument0).deletingLastPathComponent())
        }
        return directories.map { $0.appendingPathComponent("halo") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    static func findOnPath(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// The cache folder (`XDG_CACHE_HOME`) of every `halo` the tests start: one per test process, so runs calibrate
    /// this host once and never touch the user's ~/.cache.
    static let testCacheHome = FileManager.default.temporaryDirectory
        .appendingPathComponent("halo-test-cache-\(getpid())").path

    /// Runs a program with the root-allow variables set (and no inherited launcher variables), capturing its
    /// output in files; terminates it after `timeout` seconds. `environment` adds or replaces variables.
    func run(_ executable: URL, _ arguments: [String], timeout: TimeInterval,
             environment extra: [String: String] = [:]) throws -> Outcome {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("halo-mpi-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stdoutURL = directory.appendingPathComponent("stdout")
        let stderrURL = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let stdoutHandle = try FileHandle(forWritingTo: stdoutURL)
        let stderrHandle = try FileHandle(forWritingTo: stderrURL)

        var environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !(key.hasPrefix("OMPI_COMM_WORLD") || key.hasPrefix("PMIX_") || key.hasPrefix("PMI_"))
        }
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        environment["XDG_CACHE_HOME"] = Self.testCacheHome
        environment.merge(extra) { _, given in given }

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            if finished.wait(timeout: .now() + 10) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                finished.wait()
            }
        }
        let seconds = Date().timeIntervalSince(start)
        try stdoutHandle.close()
        try stderrHandle.close()
        return Outcome(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "",
            seconds: seconds, timedOut: timedOut)
    }
}
