import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Replacing a file so that a reader (or a crash) sees the old whole file or the new one, never a torn one:
/// temporary file in the same folder, write, fsync, rename over the target, fsync of the folder (so the rename
/// itself survives a crash). Used by the report and the checkpoints.
enum AtomicFile {
    /// What failed (`what`) and the errno it failed with.
    struct Failure: Error {
        var what: String
        var code: Int32
        var reason: String { "\(what): \(AtomicFile.describe(code))" }
    }

    /// Replaces `target` (in `folder`) with `data`. `temporary` names the hidden file used on the way.
    static func replace(_ target: String, in folder: String, with data: Data, temporary: String) throws(Failure) {
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(what: "cannot create a temporary file in \(folder)", code: errno) }
        var written = 0
        let writeError: Int32? = data.withUnsafeBytes { raw -> Int32? in
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += n
            }
            return nil
        }
        if let writeError {
            close(fd)
            unlink(temporary)
            throw Failure(what: "could not write", code: writeError)
        }
        if fsync(fd) != 0 {
            let code = errno
            close(fd)
            unlink(temporary)
            throw Failure(what: "could not flush to disk", code: code)
        }
        if close(fd) != 0 {
            let code = errno
            unlink(temporary)
            throw Failure(what: "could not write", code: code)
        }
        guard rename(temporary, target) == 0 else {
            let code = errno
            unlink(temporary)
            throw Failure(what: "could not replace the file", code: code)
        }
        syncFolder(folder)
    }

    /// Flushes a folder's entries (renames, removals) to disk. Some file systems cannot sync a folder; what was
    /// written stays written either way.
    static func syncFolder(_ folder: String) {
        let directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
