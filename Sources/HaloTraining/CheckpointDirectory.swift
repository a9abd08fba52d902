import Foundation
import HaloGraph
#if canImport(Glibc)
import Glibc
#endif

/// A checkpoint folder: `checkpoint.json` (`CheckpointManifest`, written by rank 0) naming the complete epoch, and
/// `epoch-NNNNNN/rank-K.state` (`RankCheckpoint`, one per rank, each written by its rank on its own host).
///
/// A save never overwrites the state it may have to fall back on: every rank writes the new epoch's file (each
/// atomically), the ranks agree that all are written, rank 0 replaces the manifest (atomically), the ranks agree
/// again, and only then does each remove its older files. Killed at any point, the folder holds a manifest and
/// every state file it names. Ranks on several hosts need no shared file system: each reads back its own file;
/// rank 0 tells the others which epoch to read.
public final class CheckpointDirectory: @unchecked Sendable {
    /// The folder as the user named it (used in messages).
    public let path: String
    static let manifestName = "checkpoint.json"

    /// Checks that a checkpoint can be kept in `path` before the run does any work: the folder exists (or is
    /// created, when its parent exists), accepts new files, and holds nothing but a checkpoint's files. A folder
    /// that already holds a checkpoint is refused unless `resuming`: a new run must not replace a saved one.
    public init(path: String, resuming: Bool) throws {
        guard !path.isEmpty else { throw CheckpointError(path: path, reason: "the path is empty") }
        self.path = path
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw CheckpointError(path: path, reason: "it exists and is not a folder") }
        } else if resuming {
            throw CheckpointError(path: path, reason: "there is no such folder to resume from")
        } else if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw CheckpointError(path: path, reason: "cannot create the folder: \(AtomicFile.describe(errno))")
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let foreign = entries.filter { !Self.isOwn($0) }.sorted()
        guard foreign.isEmpty else {
            throw CheckpointError(path: path, reason: "it holds files that are not a checkpoint's (\(foreign.prefix(3).joined(separator: ", "))); give a folder of its own")
        }
        if !resuming && entries.contains(Self.manifestName) {
            let epochs = (try? readManifest().epochsDone).map { " of \($0) epochs" } ?? ""
            throw CheckpointError(path: path, reason: "it already holds a checkpoint\(epochs); continue it with --resume \(path), or give another folder")
        }
        // Permission bits do not tell (root ignores them; a read-only mount does not show in them).
        let probe = "\(path)/.probe-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CheckpointError(path: path, reason: "cannot create files in it: \(AtomicFile.describe(errno))")
        }
        close(fd)
        unlink(probe)
    }

    /// The names a checkpoint folder may hold: the manifest, epoch folders, and hidden files of writes under way.
    private static func isOwn(_ name: String) -> Bool {
        name == manifestName || name.hasPrefix("epoch-") || name.hasPrefix(".")
    }

    private var manifestPath: String { "\(path)/\(Self.manifestName)" }

    private func stateFile(epochsDone: Int, rank: Int) -> String {
        "\(path)/\(CheckpointManifest.stateFolder(epochsDone: epochsDone))/rank-\(rank).state"
    }

    /// The manifest of the complete checkpoint, checked to be one.
    public func readManifest() throws -> CheckpointManifest {
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw CheckpointError(path: manifestPath, reason: "cannot be read (no checkpoint has been completed in \(path))")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let manifest: CheckpointManifest
        do {
            manifest = try JSONFieldProblem.decode(CheckpointManifest.self, from: data, decoder: decoder)
        } catch let problem as JSONFieldProblem {
            let detail = problem.kind == .notJSON
                ? "it is not a valid JSON object"
                : "field \(problem.field): found \(problem.found), expected \(problem.expected)"
            throw CheckpointError(path: manifestPath, reason: "is not a checkpoint manifest: \(detail)")
        }
        guard manifest.format == CheckpointManifest.formatName else {
            throw CheckpointError(path: manifestPath, reason: "field `format`: expected \"\(CheckpointManifest.formatName)\", found \"\(manifest.format)\"")
        }
        guard manifest.formatVersion == CheckpointManifest.formatVersion else {
            throw CheckpointError(path: manifestPath, reason: "field `format_version`: this halo reads version \(CheckpointManifest.formatVersion), found \(manifest.formatVersion)")
        }
        guard manifest.epochsDone >= 1, manifest.worldSize >= 1,
              manifest.stateFolder == CheckpointManifest.stateFolder(epochsDone: manifest.epochsDone) else {
            throw CheckpointError(path: manifestPath, reason: "fields `epochs_done` (\(manifest.epochsDone)), `world_size` (\(manifest.worldSize)) and `state_folder` (\(manifest.stateFolder)) do not describe a saved epoch")
        }
        return manifest
    }

    /// Writes `rank`'s state for `epochsDone` (atomically, beside any older state).
    func writeState(_ data: Data, epochsDone: Int, rank: Int) throws {
        let folder = "\(path)/\(CheckpointManifest.stateFolder(epochsDone: epochsDone))"
        if mkdir(folder, 0o755) != 0 && errno != EEXIST {
            throw CheckpointError(path: folder, reason: "cannot create the folder: \(AtomicFile.describe(errno))")
        }
        let target = stateFile(epochsDone: epochsDone, rank: rank)
        do {
            try AtomicFile.replace(target, in: folder, with: data,
                                   temporary: "\(folder)/.rank-\(rank).state.tmp-\(getpid())")
        } catch {
            throw CheckpointError(path: target, reason: error.reason)
        }
        AtomicFile.syncFolder(path)
    }

    /// Makes `manifest` the checkpoint of this folder (rank 0, once every rank's state is written).
    func commit(_ manifest: CheckpointManifest) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        do {
            try AtomicFile.replace(manifestPath, in: path, with: try encoder.encode(manifest),
                                   temporary: "\(path)/.\(Self.manifestName).tmp-\(getpid())")
        } catch let error as AtomicFile.Failure {
            throw CheckpointError(path: manifestPath, reason: error.reason)
        }
    }

    /// Removes `rank`'s states of every epoch but `epochsDone`, and epoch folders left empty. Best effort: a
    /// leftover file costs disk space, never correctness (the manifest names the state to use).
    func prune(rank: Int, keeping epochsDone: Int) {
        let keep = CheckpointManifest.stateFolder(epochsDone: epochsDone)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for folder in entries where folder.hasPrefix("epoch-") && folder != keep {
            unlink("\(path)/\(folder)/rank-\(rank).state")
            // Fails while another rank's file is still there; the last rank to prune removes the folder.
            rmdir("\(path)/\(folder)")
        }
    }

    /// `rank`'s state for `epochsDone`.
    func readState(epochsDone: Int, rank: Int) throws -> RankCheckpoint {
        let file = stateFile(epochsDone: epochsDone, rank: rank)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CheckpointError(path: file, reason: "cannot be read: rank \(rank)'s state for epoch \(epochsDone) is missing (was this rank's host the one that saved it?)")
        }
        return try RankCheckpoint.decode(data, file: file)
    }
}
