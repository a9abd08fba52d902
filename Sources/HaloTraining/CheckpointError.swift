/// A checkpoint that cannot be written, read or resumed, naming the path and why (never a raw Foundation error).
public struct CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file or folder concerned, as the user's path leads to it.
    public var path: String
    /// What is wrong, in words: what was expected and what was found.
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "checkpoint \(path): \(reason)" }
}
