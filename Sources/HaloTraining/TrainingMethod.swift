/// How halo messages are exchanged during training.
public enum TrainingMethod: String, Sendable, Codable, CaseIterable {
    /// Full-precision synchronous exchange, local work after the messages arrive: the baseline.
    case vanilla
}
