import HaloGraph

/// Why a partition directory could not be read or written, e.g.
/// `p4/part-2/in_indices.i32: checksum (xxh64) is 0a1b…, expected 77c0… as manifest.json records`.
public typealias PartitionError = FileFormatError<PartitionErrorKind>

/// The categories of `PartitionError`.
public enum PartitionErrorKind: String, FileFormatFailureKind {
    // Files, manifest.json and meta.json.
    case missingFile, io, badJSON, missingField, badField, wrongFormat, unsupportedVersion
    case notAPartitionDirectory, rankOutOfRange, manifestMismatch, fileListMismatch
    // Parts that do not fit together: another partitioning's part, or totals over all parts that disagree.
    case partitioningMismatch, inconsistentParts
    // Writing: the output is locked by another writer, or holds a half-written partition (replaced only when forced).
    case outputLocked, halfWrittenOutput
    case sizeMismatch, checksumMismatch
    // Content.
    case idOutOfRange, unsortedIDs, duplicateID, inconsistentHalo, badCSR, badDegree, badSendList
    case labelOutOfRange, maskValue, masksOverlap, maskedUnlabelled, nonFinite
}
