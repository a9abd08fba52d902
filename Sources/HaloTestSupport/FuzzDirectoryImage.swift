import Foundation
import HaloGraph

/// The files of a dataset or partition directory, held in memory: the fuzzer mutates images, not directories, so
/// a case costs one write of a few small files and a mutation is a dictionary edit (delete, rename and swap are
/// key moves).
public struct FuzzDirectoryImage: Sendable {
    /// Contents by path relative to the directory, e.g. `part-1/in_indices.i32`.
    public var files: [String: Data]

    public init(files: [String: Data]) {
        self.files = files
    }

    /// Reads every regular file under `directory` (one level of subdirectories, as partition directories have).
    public init(reading directory: URL) throws {
        var files: [String: Data] = [:]
        let manager = FileManager.default
        for name in try manager.contentsOfDirectory(atPath: directory.path) {
            let url = directory.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: url.path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                for inner in try manager.contentsOfDirectory(atPath: url.path) {
                    files[name + "/" + inner] = try Data(contentsOf: url.appendingPathComponent(inner))
                }
            } else {
                files[name] = try Data(contentsOf: url)
            }
        }
        self.files = files
    }

    /// Writes the image into `directory`, which must not exist yet.
    public func write(to directory: URL) throws {
        let manager = FileManager.default
        try manager.createDirectory(at: directory, withIntermediateDirectories: true)
        for (path, data) in files {
            let url = directory.appendingPathComponent(path)
            if path.contains("/") {
                try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            }
            try Self.writeUnsynced(data, to: url)
        }
    }

    /// Writes `data` with plain POSIX calls: Foundation's `Data.write` fsyncs every file, which made the disk, not
    /// the readers, most of a case's time. A case directory is scratch; it never needs to survive a crash.
    private static func writeUnsynced(_ data: Data, to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path]) }
        defer { close(fd) }
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                guard written > 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path]) }
                offset += written
            }
        }
    }

    /// A partition directory has a manifest; a dataset directory has a meta.json at its root.
    public var isPartitionDirectory: Bool { files["manifest.json"] != nil }

    /// Paths in a fixed order, so that a seed picks the same file on every run (dictionary order is randomised).
    public var sortedPaths: [String] { files.keys.sorted() }

    // MARK: Forged checksums

    /// Rewrites every checksum (and, in a manifest, every byte size) to match the files as they now are, as a
    /// careful forger would: after this only the readers' content checks can object to an edit. JSON that an
    /// earlier mutation made unreadable or reshaped is left as it is (nothing to forge there).
    public mutating func resealChecksums() {
        if isPartitionDirectory {
            resealManifest()
        } else {
            resealDatasetMeta()
        }
    }

    private func xxh64(_ data: Data) -> String {
        XXHash64.hex(data.withUnsafeBytes { XXHash64.hash($0) })
    }

    private mutating func resealDatasetMeta() {
        guard let data = files["meta.json"],
              var meta = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              var sums = meta["xxh64"] as? [String: Any] else { return }
        for file in sums.keys {
            if let content = files[file] { sums[file] = xxh64(content) }
        }
        meta["xxh64"] = sums
        files["meta.json"] = Self.encodeJSON(meta)
    }

    private mutating func resealManifest() {
        guard let data = files["manifest.json"],
              var manifest = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              var list = manifest["part_list"] as? [Any] else { return }
        for k in list.indices {
            guard var entry = list[k] as? [String: Any], let directory = entry["directory"] as? String,
                  var entries = entry["files"] as? [Any] else { continue }
            for f in entries.indices {
                guard var file = entries[f] as? [String: Any], let name = file["name"] as? String,
                      let content = files[directory + "/" + name] else { continue }
                file["bytes"] = content.count
                file["xxh64"] = xxh64(content)
                entries[f] = file
            }
            entry["files"] = entries
            list[k] = entry
        }
        manifest["part_list"] = list
        files["manifest.json"] = Self.encodeJSON(manifest)
    }

    public static func encodeJSON(_ object: Any) -> Data {
        // Only objects decoded from JSON (plus the fuzzer's own JSON-safe values) get here.
        (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }
}
