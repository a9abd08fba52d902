/// Why a dataset directory could not be read or written, e.g.
/// `cora/labels.i32: label of node 17 is 9, expected -1 or 0..<7`.
public typealias DatasetError = FileFormatError<DatasetErrorKind>

/// The categories of `DatasetError`.
public enum DatasetErrorKind: String, FileFormatFailureKind {
    // Files and meta.json.
    case missingFile, io, sizeMismatch, badJSON, missingField, badField
    case wrongFormat, unsupportedVersion, fileListMismatch, countMismatch, checksumMismatch
    // Edges.
    case idOutOfRange, selfLoop, duplicateEdge, unsortedEdges
    // Labels and split masks.
    case labelOutOfRange, maskValue, masksOverlap, maskedUnlabelled
    // Features.
    case nonFinite, columnOutOfRange, unsortedColumns, indptrStart, indptrDecreasing, indptrEnd
}
