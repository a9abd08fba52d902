import ArgumentParser
import Foundation
import HaloGraph
import HaloImport

#if canImport(Glibc)
import Glibc
#endif

/// Where `halo import` writes: checked before the (possibly long) conversion, written into a sibling staging folder
/// `.<name>.tmp-<host>-<pid>`, and renamed into place only once complete, so an interrupted or failed import leaves no
/// directory that looks like a dataset. Only a missing or empty destination is accepted: an import never replaces
/// data (a `rename` onto an empty directory replaces it in one step).
///
/// A killed import leaves its staging folder behind (gigabytes for a large graph); the next import to the same
/// destination deletes the staging folders of processes that no longer exist (`removedLeftovers`). The folder is
/// named `.<name>.tmp-<host>-<pid>`, and only this host's are judged: on a file system shared between machines,
/// another host's pid says nothing here.
struct ImportDestination {
    let destination: URL
    let staging: URL
    /// Staging folders of earlier, dead imports to this destination that were deleted.
    private(set) var removedLeftovers: [String] = []

    init(path: String) throws {
        destination = URL(fileURLWithPath: path).standardizedFileURL
        let parent = destination.deletingLastPathComponent()
        staging = parent.appendingPathComponent(Self.stagingPrefix(of: destination.lastPathComponent) + "\(getpid())")
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: destination.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ValidationError("--out \(path): is a file; expected a new or empty directory") }
            let contents = (try? fm.contentsOfDirectory(atPath: destination.path)) ?? []
            guard contents.isEmpty else {
                throw ValidationError("--out \(path): holds \(contents.count) entr\(contents.count == 1 ? "y" : "ies"); expected a new or empty directory (an import never replaces data)")
            }
        }
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw ValidationError("--out \(path): its parent folder cannot be created (\(UserFacingError.describe(error)))")
        }
        guard access(parent.path, W_OK | X_OK) == 0 else {
            throw ValidationError("--out \(path): \(parent.path) is not writable (the dataset is written beside --out, then renamed)")
        }
        removedLeftovers = Self.removeDeadStagingFolders(in: parent, of: destination.lastPathComponent)
    }

    /// `.<name>.tmp-<host>-`: the staging folders of imports to `name` on this host, before their pid.
    static func stagingPrefix(of name: String) -> String {
        ".\(name).tmp-\(ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_"))-"
    }

    /// Deletes this host's `.<name>.tmp-<host>-<pid>` beside the destination for every pid that is not a live
    /// process. A live pid's folder is kept (another import may be writing it; a pid reused since is kept too,
    /// harmlessly).
    private static func removeDeadStagingFolders(in parent: URL, of name: String) -> [String] {
        let prefix = stagingPrefix(of: name)
        let siblings = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        return siblings.filter { entry in
            guard entry.hasPrefix(prefix), let pid = Int32(entry.dropFirst(prefix.count)), pid > 0, pid != getpid(),
                  kill(pid, 0) != 0, errno == ESRCH else { return false }
            return (try? FileManager.default.removeItem(at: parent.appendingPathComponent(entry))) != nil
        }
    }

    func write(_ imported: ImportedDataset) throws {
        let fm = FileManager.default
        try? fm.removeItem(at: staging)
        do {
            try DatasetFormat.write(imported.dataset, to: staging, source: imported.source, license: "that of the source (see its documentation)",
                                    splitDescription: imported.splitDescription)
            guard rename(staging.path, destination.path) == 0 else {
                throw UserFacingError(description: "--out \(destination.path): could not move the written dataset into place (\(String(cString: strerror(errno))))")
            }
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
    }
}
