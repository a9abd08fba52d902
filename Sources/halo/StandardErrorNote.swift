import Foundation

/// Writes a one-line note from a library (e.g. "this dataset has no checksums") to standard error, where it does not
/// mix with a command's results on standard output.
func noteOnStandardError(_ line: String) {
    FileHandle.standardError.write(Data("halo: \(line)\n".utf8))
}
