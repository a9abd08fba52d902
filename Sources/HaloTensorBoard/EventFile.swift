#if canImport(Glibc)
import Glibc
#endif

/// A TensorBoard event file being written: created (with its version header) when opened, so a folder that
/// cannot take it is known before a run starts, and appended to one batch of events at a time.
///
/// Each `append` is one `write(2)` of whole records straight to the kernel (no user-space buffer), so a run that
/// is killed leaves a file that ends on a record boundary and that TensorBoard reads up to its last epoch.
public final class EventFile {
    /// The file's full path.
    public let path: String
    private var descriptor: Int32

    /// Creates `events.out.tfevents.<unix seconds>.<host>` in `folder` (creating the folder, as TensorFlow's
    /// writers do) and writes the version event. A name taken already (two runs in the same second) gets a
    /// numbered suffix; TensorBoard reads every file whose name contains "tfevents".
    public init(folder: String, wallTime: Double) throws {
        guard !folder.isEmpty else { throw EventFileError(path: folder, reason: "the path is empty") }
        // "runs/tb/" names the same folder as "runs/tb"; without the slash the file's path reads cleanly.
        var folder = folder
        while folder.count > 1 && folder.hasSuffix("/") { folder.removeLast() }
        try Self.makeFolder(folder)
        let base = "\(folder)/events.out.tfevents.\(Int(wallTime)).\(Self.hostName())"
        var attempt = 0
        while true {
            let candidate = attempt == 0 ? base : "\(base).\(attempt)"
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_APPEND, 0o644)
            if fd >= 0 {
                path = candidate
                descriptor = fd
                break
            }
            let code = errno
            guard code == EEXIST, attempt < 1000 else {
                throw EventFileError(path: folder, reason: "cannot create a file in it: \(Self.describe(code))")
            }
            attempt += 1
        }
        try append([TensorBoardEvent(wallTime: wallTime, step: 0,
                                     content: .fileVersion(TensorBoardEvent.currentFileVersion))])
    }

    deinit { close() }

    /// Writes `events`, framed, in one system call.
    public func append(_ events: [TensorBoardEvent]) throws {
        guard descriptor >= 0 else { throw EventFileError(path: path, reason: "the file is closed") }
        var bytes: [UInt8] = []
        for event in events { RecordFraming.append(event.encoded(), to: &bytes) }
        var written = 0
        let failure: Int32? = bytes.withUnsafeBytes { raw -> Int32? in
            while written < raw.count {
                let n = write(descriptor, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += n
            }
            return nil
        }
        if let failure { throw EventFileError(path: path, reason: "could not write: \(Self.describe(failure))") }
    }

    /// Flushes the file to disk and closes it; later appends throw.
    public func close() {
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        _ = Glibc.close(descriptor)
        descriptor = -1
    }

    /// Closes the file and deletes it (a run that failed before its first epoch leaves no empty log behind).
    public func remove() {
        close()
        _ = unlink(path)
    }

    /// `folder` and its missing parents; refuses a path that exists and is not a folder, naming the path at fault
    /// (FileManager's `createDirectory` would report a parent that is a file as a bare Cocoa error 512).
    private static func makeFolder(_ folder: String) throws {
        var info = stat()
        if stat(folder, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw EventFileError(path: folder, reason: "it exists and is not a folder")
            }
            return
        }
        let parent = Self.parent(of: folder)
        if let parent { try makeFolder(parent) }
        if mkdir(folder, 0o755) != 0 && errno != EEXIST {
            throw EventFileError(path: folder, reason: "cannot create the folder: \(describe(errno))")
        }
    }

    /// The folder holding `path`, or nil at the top ("/" or a relative name without a slash).
    private static func parent(of path: String) -> String? {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return nil }
        let parent = String(trimmed[..<slash])
        return parent.isEmpty ? nil : parent
    }

    /// The host's name as TensorBoard's own writers put it in file names.
    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    private static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
