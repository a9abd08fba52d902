/// Why a dataset directory could not be read or written, precise enough to fix the file by hand.
///
/// `kind` lets callers and tests tell failures apart; `file`, `field`, `found` and `expected` make the one-line
/// `description`, e.g. `cora/labels.i32: label of node 17 is 9, expected -1 or 0..<7`.
public struct DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        // Files and meta.json.
        case missingFile, io, sizeMismatch, badJSON, missingField, badField
        case wrongFormat, unsupportedVersion, fileListMismatch, countMismatch
        // Edges.
        case idOutOfRange, selfLoop, duplicateEdge, unsortedEdges
        // Labels and split masks.
        case labelOutOfRange, maskValue, masksOverlap, maskedUnlabelled
        // Features.
        case nonFinite, columnOutOfRange, unsortedColumns, indptrStart, indptrDecreasing, indptrEnd
    }

    public let kind: Kind
    /// The file at fault, as `dataset-directory/file-name`.
    public let file: String
    /// What in the file is wrong: a meta.json key, `edge 12`, `label of node 17`, `byte size`, …
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
