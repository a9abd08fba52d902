import Foundation
import HaloTensor

/// Resolves what a user wrote after `--dataset` to a dataset: a synthetic spec (`synthetic:…`), a directory in the
/// halo-dataset format, or a bare name looked up in the directories listed in `HALO_DATASETS` (colon-separated).
public struct DatasetSource: Sendable, CustomStringConvertible {
    /// The dataset of the demo and of `halo train` without `--dataset`: generated, so it needs no download.
    public static let defaultSynthetic = "synthetic:nodes=20000,classes=8,features=64,degree=16,homophily=0.8,seed=0"

    public let text: String

    public init(_ text: String) { self.text = text }

    public var description: String { text }

    /// A failure to find the dataset at all (as opposed to a malformed one, which is a `DatasetError`).
    public struct NotFound: Error, CustomStringConvertible {
        public let name: String
        public let searched: [String]
        public var description: String {
            "dataset '\(name)' not found: it is not a synthetic spec (synthetic:key=value,…) nor a dataset directory"
                + (searched.isEmpty ? "; set HALO_DATASETS to directories holding named datasets"
                                    : "; looked in \(searched.joined(separator: ", "))")
        }
    }

    /// `note` receives the reader's one-line notes (see `DatasetFormat.read`).
    public func load(pool: ComputePool = .serial,
                     environment: [String: String] = ProcessInfo.processInfo.environment,
                     note: (String) -> Void = { _ in }) throws -> Dataset {
        if SyntheticGraphSpec.isSpecString(text) {
            return try SyntheticGraphSpec(parsing: text).generate(pool: pool)
        }
        return try DatasetFormat.read(directory: try resolveDirectory(environment: environment), note: note)
    }

    /// The directory `text` names, directly or through `HALO_DATASETS`.
    public func resolveDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: text, isDirectory: &isDirectory), isDirectory.boolValue { return text }
        let roots = (environment["HALO_DATASETS"] ?? "").split(separator: ":").map(String.init)
        if !text.contains("/") {
            for root in roots {
                let candidate = (root as NSString).appendingPathComponent(text)
                if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue {
                    return candidate
                }
            }
        }
        throw NotFound(name: text, searched: roots)
    }
}
