import Foundation
import HaloGraph
import HaloTensor

/// What a calibration's rates depend on, so a cached one is reused only where it still holds: the machine (CPU
/// model, vector ISA, OpenBLAS's kernel family), the threads the kernels ran on, and the binary that ran them.
///
/// The binary is identified by its executable file (resolved path, size, modification time): a rebuild, a build
/// with other compiler flags (`-target-cpu native` changes what Swift's SIMD code becomes) or an upgrade replaces
/// the file and so gives a new key. It cannot tell two byte-identical builds apart, nor an OpenBLAS library
/// replaced under an unchanged executable unless its kernel family changed; `--recalibrate` covers those.
public struct CalibrationKey: Sendable, Codable, Equatable {
    /// Bumped when the measurement changes what it measures, so older cache files are not read as current.
    public static let currentFormat = 1

    public var format: Int
    public var host: HostDescription
    public var threads: Int
    public var build: String

    public init(host: HostDescription, threads: Int, build: String, format: Int = CalibrationKey.currentFormat) {
        self.format = format
        self.host = host
        self.threads = threads
        self.build = build
    }

    /// The key of this process on this machine with `threads` compute threads.
    public static func current(threads: Int) -> CalibrationKey {
        CalibrationKey(host: .current, threads: threads, build: currentBuild())
    }

    /// "executable PATH, N bytes, modified SECONDS.NANOSECONDS" of the running program, from /proc/self/exe
    /// (`CommandLine.arguments[0]` where /proc is missing).
    public static func currentBuild() -> String {
        let link = "/proc/self/exe"
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) ?? CommandLine.arguments[0]
        var info = stat()
        guard stat(path, &info) == 0 else { return "executable \(path)" }
        return "executable \(path), \(info.st_size) bytes, modified \(info.st_mtim.tv_sec).\(String(format: "%09d", info.st_mtim.tv_nsec))"
    }

    /// A short name for the key's cache file: 16 hex digits of the XXH64 of its canonical JSON.
    public var fileStem: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = Array((try? encoder.encode(self)) ?? Data())
        return String(format: "%016llx", XXHash64.hash(bytes))
    }
}
