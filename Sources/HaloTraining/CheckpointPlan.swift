/// How a run keeps checkpoints: where, how often, and whether it continues from the one already there.
public struct CheckpointPlan: Sendable {
    public var directory: CheckpointDirectory
    /// Save after every this many epochs; also after the last epoch and when a run is stopped by a signal.
    public var every: Int
    /// Continue from the folder's checkpoint instead of starting at epoch 0.
    public var resume: Bool

    public init(directory: CheckpointDirectory, every: Int, resume: Bool) {
        precondition(every >= 1, "checkpoints are saved every N ≥ 1 epochs, got \(every)")
        self.directory = directory
        self.every = every
        self.resume = resume
    }
}
