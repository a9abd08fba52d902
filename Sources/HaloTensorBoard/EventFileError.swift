/// An event file that cannot be created or written, naming the path and why.
public struct EventFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The folder or file as the user named it.
    public var path: String
    /// What is wrong, in words: "it is a file, not a folder", "Permission denied", …
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "cannot write TensorBoard events to \(path): \(reason)" }
}
