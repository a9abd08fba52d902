import HaloGraph

/// Why an input of `halo import` could not be converted, naming the file (and, inside an archive, the member), the
/// field, what was found and what was expected, e.g.
/// `arxiv/raw/edge.csv.gz: line 17 is "3,x", expected two integer node ids`.
public typealias ImportError = FileFormatError<ImportErrorKind>

/// The categories of `ImportError`.
public enum ImportErrorKind: String, FileFormatFailureKind {
    // Files.
    case missingFile, io, missingField, badField, badJSON
    // Containers: gzip streams, zip archives, .npy headers.
    case badCompression, badArchive, checksumMismatch, badHeader, unsupportedType
    // Contents.
    case badNumber, columnCount, rowCount, shapeMismatch, idOutOfRange, labelOutOfRange, nonFinite, badSplit
}
