import Foundation

/// The categories of failure of one on-disk format (a dataset directory, a partition directory).
///
/// Each format lists its own, but every format's list has the failures any directory of files with JSON metadata
/// can have, so that `FormatDirectory` reports them the same way for all formats.
public protocol FileFormatFailureKind: Hashable, Sendable, CaseIterable, RawRepresentable where RawValue == String {
    /// A file exists but cannot be read or written.
    static var io: Self { get }
    /// A JSON file lacks a required key.
    static var missingField: Self { get }
    /// A JSON key has the wrong type or value.
    static var badField: Self { get }
    /// A file that must be JSON is not.
    static var badJSON: Self { get }
}

/// Why a file of an on-disk format could not be read or written, precise enough to fix the file by hand.
///
/// `kind` lets callers and tests tell failures apart; `file`, `field`, `found` and `expected` make the one-line
/// `description`, e.g. `cora/labels.i32: label of node 17 is 9, expected -1 or 0..<7`.
public struct FileFormatError<Category: FileFormatFailureKind>: Error, CustomStringConvertible, Equatable, Sendable {
    public typealias Kind = Category

    public let kind: Kind
    /// The file at fault, as `directory/relative-path`.
    public let file: String
    /// What in the file is wrong: a JSON key, `edge 12`, `byte size`, `checksum (xxh64)`, …
    public let field: String
    public let found: String
    public let expected: String

    public init(_ kind: Kind, file: String, field: String, found: String, expected: String) {
        self.kind = kind
        self.file = file
        self.field = field
        self.found = found
        self.expected = expected
    }

    public var description: String { "\(file): \(field) is \(found), expected \(expected)" }
}

/// A directory in one on-disk format: where its files are, and the failures any such directory can have (the
/// file system refusing, JSON that does not decode) as `FileFormatError`s naming `directory/relative-path`.
public struct FormatDirectory<Category: FileFormatFailureKind>: Sendable {
    public typealias Kind = Category

    public let root: URL
    /// The directory's own name, the prefix of every file named in an error.
    public let name: String

    public init(_ root: URL) {
        self.root = root
        name = root.standardizedFileURL.lastPathComponent
    }

    public func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }
    public func path(_ relative: String) -> String { "\(name)/\(relative)" }
    public func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: url(relative).path) }

    /// An error about the file `relative` of this directory.
    public func error(
        _ kind: Kind, _ relative: String, field: String, found: String, expected: String
    ) -> FileFormatError<Kind> {
        FileFormatError(kind, file: path(relative), field: field, found: found, expected: expected)
    }

    /// Runs a file-system operation on `relative`; a failure becomes an `.io` error about that file (errors of this
    /// format pass through unchanged).
    public func perform<T>(on relative: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as FileFormatError<Kind> { throw error } catch {
            throw self.error(.io, relative, field: "file", found: "inaccessible (\(error.localizedDescription))",
                             expected: "a readable, writable path")
        }
    }

    /// Decodes the JSON file `relative`, naming the key at fault when it does not decode; `document` says what
    /// the file should have been when it is not JSON at all.
    public func decode<T: Decodable>(_ type: T.Type, from data: Data, file relative: String, document: String) throws -> T {
        do {
            return try JSONFieldProblem.decode(T.self, from: data)
        } catch let problem as JSONFieldProblem {
            let kind: Kind = switch problem.kind {
            case .missingField: .missingField
            case .badField: .badField
            case .notJSON: .badJSON
            }
            throw error(kind, relative, field: problem.field, found: problem.found,
                        expected: problem.kind == .notJSON ? document : problem.expected)
        }
    }
}
