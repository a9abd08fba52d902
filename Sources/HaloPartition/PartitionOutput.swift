import CSystem
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The directory a partition is written to, claimed before any computing and replaced in one step at the end.
///
/// Opening it (before the dataset is even loaded) checks the destination and takes `PartitionWriteLock`, so a bad
/// `--out` or a concurrent writer costs nothing. `write` then puts every file into a sibling staging folder,
/// `.<name>.tmp-<pid>`, and only a complete partition is moved into place:
///
/// - no destination yet: one `rename`;
/// - an existing one: the two folders are swapped atomically (`renameat2(RENAME_EXCHANGE)`), then the old one is
///   deleted. Where the file system cannot exchange, the old folder is renamed aside to `.<name>.old-<pid>`, the new
///   one renamed in, and the old one deleted: between those two renames (microseconds) the destination is absent,
///   and a run killed exactly there leaves both complete folders beside it, which the next writer reports.
///
/// So at every moment the destination is either the old valid partition or the new one; a run killed while
/// computing or writing leaves the old partition untouched and a staging folder, which the next writer (holding
/// the lock, so it cannot belong to a live writer) deletes.
///
/// What may be replaced: nothing, an empty directory, or a directory with a halo-partitions manifest (an earlier
/// partition). A directory holding only partition files without a readable manifest (written by a run killed under
/// an older Halo, or damaged) is replaced only with `force`. Anything else (a file, a directory with other
/// content) is refused, with or without `force`: `halo partition` deletes only what it could have written.
public final class PartitionOutput: @unchecked Sendable {
    /// What the destination held when the output was opened.
    public enum Existing: Equatable, Sendable {
        case nothing, emptyDirectory, partition, halfWrittenPartition
    }

    public let destination: URL
    public let existing: Existing
    /// The sibling folder the new partition is written into before it is moved into place.
    public let staging: URL
    private let lock: PartitionWriteLock
    private let parent: URL
    private let name: String

    /// Checks `destination` and locks it against other writers; throws a `PartitionError` naming the path and the
    /// reason. Missing parent folders are created (as before atomic writes); they must end up writable.
    public init(_ destination: URL, force: Bool = false) throws {
        let target = destination.standardizedFileURL
        self.destination = target
        parent = target.deletingLastPathComponent()
        name = target.lastPathComponent
        staging = parent.appendingPathComponent(".\(name).tmp-\(getpid())")
        let fm = FileManager.default

        var isDirectory: ObjCBool = false
        if !fm.fileExists(atPath: parent.path, isDirectory: &isDirectory) {
            do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
                throw PartitionError(.io, file: parent.path, field: "parent folder", found: "missing and not creatable (\(Self.reason(error)))",
                                     expected: "an existing, writable folder")
            }
        } else if !isDirectory.boolValue {
            throw PartitionError(.io, file: parent.path, field: "parent folder", found: "a file", expected: "a folder to write the parts in")
        }
        guard access(parent.path, W_OK | X_OK) == 0 else {
            throw PartitionError(.io, file: parent.path, field: "parent folder", found: "not writable (\(String(cString: strerror(errno))))",
                                 expected: "a folder this user may create files in (the parts are written beside the output, then renamed)")
        }
        lock = try PartitionWriteLock(for: target)
        existing = try Self.classify(target, force: force)
        try removeLeftovers(force: force)
    }

    /// Releases the lock; the output must not be written afterwards.
    public func release() { lock.release() }

    /// Writes the partition into the staging folder and moves it into place (see the type's documentation).
    /// `afterPart` runs after each part's files are written (tests fail a write midway with it).
    @discardableResult
    public func write(
        parts: [Part], partitioning: GraphPartitioning, quality: PartitionQuality, fingerprint: DatasetFingerprint,
        afterPart: (Int) throws -> Void = { _ in }
    ) throws -> PartitionManifest {
        let fm = FileManager.default
        try? fm.removeItem(at: staging)
        let manifest: PartitionManifest
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch {
            throw PartitionError(.io, file: staging.path, field: "staging folder", found: "not creatable (\(Self.reason(error)))",
                                 expected: "room for the new partition beside \(destination.path)")
        }
        do {
            // File-system failures arrive as `PartitionError`s naming the file (`StoreDirectory.perform`).
            manifest = try PartitionStore.writeContents(
                parts: parts, partitioning: partitioning, quality: quality, fingerprint: fingerprint,
                into: StoreDirectory(staging), afterPart: afterPart)
            try moveIntoPlace()
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
        return manifest
    }

    private func moveIntoPlace() throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: destination.path) else {
            return try rename(staging, to: destination)
        }
        if halo_exchange_paths(staging.path, destination.path) == 0 {
            // `staging` now holds the previous partition.
            try? fm.removeItem(at: staging)
            return
        }
        let exchangeError = errno
        guard exchangeError == EINVAL || exchangeError == ENOSYS || exchangeError == EPERM else {
            throw PartitionError(.io, file: destination.path, field: "replacement", found: "refused (\(String(cString: strerror(exchangeError))))",
                                 expected: "a folder that can be replaced by the new partition in \(staging.path)")
        }
        let aside = parent.appendingPathComponent(".\(name).old-\(getpid())")
        try rename(destination, to: aside)
        try rename(staging, to: destination)
        try? fm.removeItem(at: aside)
    }

    private func rename(_ source: URL, to target: URL) throws {
        guard Glibc.rename(source.path, target.path) == 0 else {
            throw PartitionError(.io, file: target.path, field: "rename from \(source.path)", found: "refused (\(String(cString: strerror(errno))))",
                                 expected: "a rename within one folder")
        }
    }

    /// Sorts out what `destination` holds; refuses what may not be replaced.
    private static func classify(_ destination: URL, force: Bool) throws -> Existing {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: destination.path, isDirectory: &isDirectory) else { return .nothing }
        guard isDirectory.boolValue else {
            throw PartitionError(.notAPartitionDirectory, file: destination.path, field: "output", found: "a file",
                                 expected: "a directory or nothing (refusing to replace a file)")
        }
        let contents: [String]
        do { contents = try fm.contentsOfDirectory(atPath: destination.path).sorted() } catch {
            throw PartitionError(.io, file: destination.path, field: "output", found: "unreadable (\(reason(error)))", expected: "a readable directory")
        }
        if contents.isEmpty { return .emptyDirectory }
        if hasPartitionManifest(destination) { return .partition }
        let foreign = contents.filter { $0 != PartitionStore.manifestFile && !isPartDirectoryName($0) && !$0.hasPrefix(".\(PartitionStore.manifestFile)") }
        guard foreign.isEmpty else {
            let shown = foreign.prefix(3).map { "\"\($0)\"" }.joined(separator: ", ") + (foreign.count > 3 ? ", …" : "")
            throw PartitionError(.notAPartitionDirectory, file: destination.path, field: "contents",
                                 found: "\(entries(contents.count)), no halo-partitions manifest, and \(shown) that no partition holds",
                                 expected: "an empty directory or an earlier partition directory (refusing to overwrite, even with --force)")
        }
        guard force else {
            throw PartitionError(.halfWrittenOutput, file: destination.path, field: "contents",
                                 found: "a half-written partition (\(entries(contents.count)), no readable manifest.json)",
                                 expected: "a complete partition or an empty directory; pass --force to replace it")
        }
        return .halfWrittenPartition
    }

    /// Deletes the staging and set-aside folders of earlier writers of this output: none of them is alive, since
    /// this process holds the lock. A set-aside folder with no destination means a run was killed between its two
    /// renames: the previous partition is only there, so it is kept unless `force`.
    private func removeLeftovers(force: Bool) throws {
        let fm = FileManager.default
        let siblings = (try? fm.contentsOfDirectory(atPath: parent.path)) ?? []
        // Exactly `.<name>.tmp-<pid>`: not the staging folder of an output whose name merely starts like ours.
        func leftovers(_ kind: String) -> [String] {
            siblings.filter { $0.hasPrefix(".\(name).\(kind)-") && $0.dropFirst(name.count + kind.count + 3).allSatisfy(\.isNumber) }
        }
        let staged = leftovers("tmp")
        let aside = leftovers("old")
        if existing == .nothing, let kept = aside.first, !force {
            throw PartitionError(.halfWrittenOutput, file: destination.path, field: "output",
                                 found: "missing, with the previous partition set aside in \(parent.appendingPathComponent(kept).path) by a run killed while replacing it",
                                 expected: "the output in place: move that folder back, or pass --force to discard it")
        }
        for leftover in staged + aside {
            try? fm.removeItem(at: parent.appendingPathComponent(leftover))
        }
    }

    static func hasPartitionManifest(_ directory: URL) -> Bool {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(PartitionStore.manifestFile)),
              let header = try? JSONDecoder().decode(FormatHeader.self, from: data) else { return false }
        return header.format == PartitionManifest.formatName
    }

    static func isPartDirectoryName(_ entry: String) -> Bool {
        entry.hasPrefix("part-") && !entry.dropFirst(5).isEmpty && entry.dropFirst(5).allSatisfy(\.isNumber)
    }

    private static func entries(_ count: Int) -> String { count == 1 ? "1 entry" : "\(count) entries" }

    private static func reason(_ error: any Error) -> String {
        (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
    }
}
