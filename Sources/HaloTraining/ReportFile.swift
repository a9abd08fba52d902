import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a run's JSON report goes: checked before the run does any work, and rewritten atomically as it progresses.
///
/// A run must not train for hours and only then find that it cannot write its result, and a run that is killed or
/// stops early must still leave a valid report of the epochs it finished. So the destination is checked when it
/// is named (its folder exists and accepts new files; the path is not a directory or a device), and every write
/// goes to a temporary file in the same folder that is flushed to disk and then renamed over the report: a reader
/// sees the previous whole report or the new one, never a torn file.
///
/// Reports of a run still going (`writeProgress`) are compact, reuse the encoding of the epochs already written
/// (re-encoding every epoch after every epoch made a 300-epoch run spend more time writing JSON than training)
/// and are written by a background thread, because a synced write costs milliseconds of disk latency that the
/// training loop should not wait for. If epochs finish faster than the disk syncs, a snapshot not yet started is
/// replaced by the newer one. The final report (`write`) waits for those writes, and is pretty-printed as always.
public final class ReportFile: @unchecked Sendable {
    /// The path as given (used in messages).
    public let path: String
    /// The file actually replaced: `path` with symbolic links resolved, so a link to a report keeps pointing at it.
    private let target: String
    private let folder: String
    /// Compact JSON of the epochs written so far, in order (`writeProgress`). Guarded by `lock`.
    private var encodedEpochs: [Data] = []
    /// The newest snapshot the background writer has not started yet. Guarded by `lock`.
    private var pending: Data?
    /// Whether a background write job is scheduled or running. Guarded by `lock`.
    private var draining = false
    /// The first failure of a background write, thrown by the next call. Guarded by `lock`.
    private var backgroundFailure: (any Error)?
    private let lock = NSLock()
    private let writer = DispatchQueue(label: "halo.report-file")
    /// Left when the background writer has nothing more to write.
    private let idle = DispatchGroup()

    /// Checks that a report can be written at `path`, throwing `ReportFileError` with the reason if not. Nothing
    /// is written at `path` yet (a probe file is created in its folder and removed at once).
    public init(path: String) throws {
        guard !path.isEmpty else { throw ReportFileError(path: path, reason: "the path is empty") }
        self.path = path
        target = Self.resolvingLinks(path)
        let parent = (target as NSString).deletingLastPathComponent
        folder = parent.isEmpty ? "." : parent

        var info = stat()
        if stat(target, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFDIR { throw ReportFileError(path: path, reason: "it is a directory") }
            if info.st_mode & S_IFMT != S_IFREG {
                throw ReportFileError(path: path, reason: "it exists and is not a regular file")
            }
        }
        guard stat(folder, &info) == 0 else {
            let reason = errno == ENOENT ? "folder \(folder) does not exist" : "folder \(folder): \(Self.describe(errno))"
            throw ReportFileError(path: path, reason: reason)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw ReportFileError(path: path, reason: "\(folder) is not a folder") }
        // Permission bits do not tell (root ignores them; a read-only mount or a full quota does not show in them):
        // creating a file is the only real test.
        let probe = temporaryPath(purpose: "probe")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ReportFileError(path: path, reason: "cannot create files in folder \(folder): \(Self.describe(errno))")
        }
        close(fd)
        unlink(probe)
    }

    /// Replaces the report with `report` (pretty-printed), atomically, once the background writes are done (so an
    /// older snapshot never lands after it). For the final report, and for the last one of a run that stops.
    public func write(_ report: TrainingReport) throws {
        idle.wait()
        try lock.withLock { if let backgroundFailure { throw backgroundFailure } }
        try write(report.jsonData())
    }

    /// Schedules `report`, a report of a run still going, to replace the file in the background, atomically. Its
    /// epochs must extend those of the previous call's report: they are encoded once. Throws the failure of an
    /// earlier background write, if any.
    public func writeProgress(_ report: TrainingReport) throws {
        lock.lock()
        defer { lock.unlock() }
        if let backgroundFailure { throw backgroundFailure }
        if report.epochs.count < encodedEpochs.count { encodedEpochs = [] }
        let encoder = Self.compactEncoder()
        for record in report.epochs[encodedEpochs.count...] { encodedEpochs.append(try encoder.encode(record)) }
        var head = report
        head.epochs = []
        let headData = try encoder.encode(head)
        // The only unescaped `"epochs":[]` of the compact encoding is the top-level list just emptied: the
        // configuration's `epochs` is a number, and a quote inside a string value is escaped.
        let slot = Data(#""epochs":[]"#.utf8)
        guard let range = headData.range(of: slot) else {
            preconditionFailure("a report's JSON has an epochs list")
        }
        var data = Data(capacity: headData.count + encodedEpochs.reduce(0) { $0 + $1.count + 1 })
        data.append(headData[..<range.lowerBound])
        data.append(contentsOf: Array(#""epochs":["#.utf8))
        for (i, record) in encodedEpochs.enumerated() {
            if i > 0 { data.append(UInt8(ascii: ",")) }
            data.append(record)
        }
        data.append(UInt8(ascii: "]"))
        data.append(headData[range.upperBound...])
        pending = data
        if !draining {
            draining = true
            idle.enter()
            writer.async { self.drain() }
        }
    }

    /// Writes pending snapshots until there is none.
    private func drain() {
        while true {
            let next: Data? = lock.withLock {
                defer { pending = nil }
                if pending == nil { draining = false }
                return pending
            }
            guard let next else { break }
            do {
                try write(next)
            } catch {
                lock.withLock { if backgroundFailure == nil { backgroundFailure = error } }
            }
        }
        idle.leave()
    }

    /// The keys and formats of `TrainingReport.jsonData`, without the indentation.
    private static func compactEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }

    /// Replaces the file with `data`, atomically (`AtomicFile`): any output a command writes, not only reports.
    public func write(_ data: Data) throws {
        do {
            try AtomicFile.replace(target, in: folder, with: data, temporary: temporaryPath(purpose: "tmp"))
        } catch {
            throw ReportFileError(path: path, reason: error.reason)
        }
    }

    /// A hidden name beside the target, unique to this process and call, so concurrent writers never share one.
    private func temporaryPath(purpose: String) -> String {
        let name = (target as NSString).lastPathComponent
        return "\(folder)/.\(name).\(purpose)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    private static func describe(_ code: Int32) -> String { AtomicFile.describe(code) }

    /// `path` with every symbolic link resolved when it exists; as given otherwise (a new file).
    private static func resolvingLinks(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
