/// PipeQS's contract between the two ends of a channel: when a sender may skip a send, and how old a block a
/// receiver may use. Both halves live here because together they are what keeps every wait finite.
///
/// A sender skips only while `epoch − lastSent < maxStaleness`, so after its step in epoch t its newest message
/// was produced at t − maxStaleness + 1 or later. A receiver in epoch t waits only for a block produced at
/// t − maxStaleness or later, or, after a block its sender flagged as drifting, for the message that sender
/// promised for the following epoch. Every rank sends before it waits in each layer, channels are first-in-
/// first-out, and the gradient all-reduce keeps ranks within an epoch of each other, so every wait is for a
/// message its sender has sent or is committed to send.
public struct StalenessRule: Sendable, Equatable {
    /// The oldest block age a receiver may use (S).
    public let maxStaleness: Int
    /// Whether a late link may be bypassed; without, no block older than one epoch is used and nothing is skipped.
    public let bypass: Bool

    public init(maxStaleness: Int, bypass: Bool) {
        self.maxStaleness = maxStaleness
        self.bypass = bypass
    }

    /// Whether a sender may launch nothing this epoch: its link is still busy with an earlier message (more would
    /// only queue behind it), nothing is drifting, it promised nothing, and the receiver's block stays within the cap.
    func maySkip(epoch: Int, lastSent: Int?, late: Bool, highDrift: Bool, promised: Bool) -> Bool {
        guard bypass, late, !highDrift, !promised, let lastSent else { return false }
        return epoch - lastSent < maxStaleness
    }

    /// The oldest production epoch of a block a receiver may use at `epoch`, holding a block from `blockEpoch`
    /// whose sender promised (or not) a message for the next epoch.
    func oldestUsable(epoch: Int, blockEpoch: Int, promisedNext: Bool) -> Int {
        var oldest = epoch - (bypass ? maxStaleness : 1)
        // After a drifting block, wait for the promised next one rather than reuse a block known to be moving
        // (never for one from the future).
        if promisedNext { oldest = max(oldest, min(blockEpoch + 1, epoch)) }
        return oldest
    }
}
