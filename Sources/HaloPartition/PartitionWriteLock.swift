import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on `.<name>.lock` beside a partition directory, held by whoever writes that directory.
///
/// Two writers into one output would otherwise interleave their parts into a corrupt directory. The lock is taken
/// without waiting: a second writer fails at once, naming the first one's process id (which the holder records in
/// the file). The kernel releases the lock when its holder exits, however it exits, so a killed writer never leaves
/// a stale lock behind; the (empty of meaning) file itself stays, because deleting a lock file races with the next
/// writer opening it.
public final class PartitionWriteLock: @unchecked Sendable {
    /// The lock file, `<parent>/.<name>.lock`.
    public let url: URL
    private var descriptor: Int32

    /// The lock file guarding `directory`.
    public static func lockFile(for directory: URL) -> URL {
        let target = directory.standardizedFileURL
        return target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).lock")
    }

    /// Takes the lock of `directory` or throws a `PartitionError` naming the lock file and, when known, the pid
    /// holding it.
    public init(for directory: URL) throws {
        url = Self.lockFile(for: directory)
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw PartitionError(.io, file: url.path, field: "lock file", found: "not creatable (\(String(cString: strerror(errno))))",
                                 expected: "a writable folder beside the output")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            let holder = Self.recordedHolder(fd)
            close(fd)
            if reason == EWOULDBLOCK {
                throw PartitionError(.outputLocked, file: directory.path, field: "lock \(url.lastPathComponent)",
                                     found: "held by another `halo partition`" + (holder.map { " (pid \($0))" } ?? ""),
                                     expected: "no other writer of this output at the same time")
            }
            throw PartitionError(.io, file: url.path, field: "lock", found: "not taken (\(String(cString: strerror(reason))))",
                                 expected: "a file system that supports flock")
        }
        descriptor = fd
        // Record the holder for the error message of a concurrent writer (informational only: the flock decides).
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    /// Releases the lock (also done on deinit, and by the kernel when the process ends).
    public func release() {
        guard descriptor >= 0 else { return }
        _ = ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }

    private static func recordedHolder(_ fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
