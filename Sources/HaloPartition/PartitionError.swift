/// Why a partition directory could not be read or written, precise enough to find the file at fault.
///
/// `kind` lets callers and tests tell failures apart; `file`, `field`, `found` and `expected` make the one-line
/// `description`, e.g. `p4/part-2/in_indices.i32: checksum (xxh64) is 0a1b…, expected 77c0… as manifest.json records`.
public struct PartitionError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        // Files, manifest.json and meta.json.
        case missingFile, io, badJSON, missingField, badField, wrongFormat, unsupportedVersion
        case notAPartitionDirectory, rankOutOfRange, manifestMismatch, fileListMismatch
        case sizeMismatch, checksumMismatch
        // Content.
        case idOutOfRange, unsortedIDs, duplicateID, inconsistentHalo, badCSR, badDegree, badSendList
        case labelOutOfRange, maskValue, nonFinite
    }

    public let kind: Kind
    /// The file at fault, as `partition-directory/part-r/file-name` (or `partition-directory/manifest.json`).
    public let file: String
    /// What in the file is wrong: a JSON key, `byte size`, `checksum (xxh64)`, `row 12`, …
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
