/// A report destination that cannot be written, naming the path and why (never a raw Foundation error).
public struct ReportFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path as the user gave it.
    public var path: String
    /// What is wrong, in words: "folder /x does not exist", "is a directory", "No space left on device", …
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "cannot write the report to \(path): \(reason)" }
}
