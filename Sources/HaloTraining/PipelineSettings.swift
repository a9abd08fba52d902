import HaloQuantization

/// Settings of the pipelined methods (`pipegcn`, `pipeqs`); ignored by the others.
public struct PipelineSettings: Sendable, Codable, Equatable {
    /// What PipeGCN's first epoch uses for the halo, before any earlier epoch's message exists.
    public enum Warmup: String, Sendable, Codable, CaseIterable {
        /// Zero rows and no gradients from peers in epoch 0: PipeGCN's published behaviour.
        case zeros
        /// Epoch 0 waits for its own messages (synchronous), so the first update sees true halo values.
        case sync
    }

    /// What the owner of bypassed rows does with the backward channel's cached gradient block.
    public enum BypassedGradients: String, Sendable, Codable, CaseIterable {
        /// Apply the cached block (bounded-stale, like the rows it belongs to).
        case cached
        /// Apply nothing (the published PipeQS code; biases the update).
        case dropped
    }

    /// Default `sync`: one synchronous epoch out of hundreds costs little, and the first update then sees true halo
    /// values instead of zeros (PipeGCN's `zeros` is kept for fidelity to the paper).
    public var warmup: Warmup
    /// PipeGCN's smoothing of consumed blocks, `avg = m·avg + (1 − m)·received`, for rows and gradients; 0 = off.
    /// `PipelineSettings()` has 0; a `TrainingConfiguration` built without settings takes the method's
    /// (`TrainingMethod.defaultSmoothing`: 0.95 for PipeGCN), as `halo train` does.
    public var smoothing: Double
    /// PipeQS: a block older than this many epochs is never used; the rank waits instead.
    public var maxStaleness: Int
    /// PipeQS: drift `(1 − cos)/2` above which a channel's precision steps up and bypass is forbidden.
    ///
    /// Default 0.3, not the published 0.1: with dropout 0.5 the blocks that carry dropped-out rows drift by
    /// 0.07–0.20 from one epoch to the next, against at most 0.03 without dropout (Amazon-Photo, docs/pipeqs.md), so
    /// at 0.1 those channels would sit at fp32 with bypass forbidden and PipeQS would be PipeGCN.
    /// `--drift-threshold 0.1` runs the published setting.
    public var driftThreshold: Double
    /// PipeQS: whether a late channel may be bypassed with its cached block (off: every epoch consumes a block at
    /// most one epoch old, as PipeGCN does).
    public var bypass: Bool
    /// PipeQS: whether widths move with drift and link lateness (off: every message at `initialBits`).
    public var adaptiveBits: Bool
    /// PipeQS: the width every channel starts at.
    public var initialBits: BitWidth
    public var bypassedGradients: BypassedGradients

    public init(warmup: Warmup = .sync, smoothing: Double = 0, maxStaleness: Int = 2, driftThreshold: Double = 0.3,
                bypass: Bool = true, adaptiveBits: Bool = true, initialBits: BitWidth = .eight,
                bypassedGradients: BypassedGradients = .cached) {
        self.warmup = warmup
        self.smoothing = smoothing
        self.maxStaleness = maxStaleness
        self.driftThreshold = driftThreshold
        self.bypass = bypass
        self.adaptiveBits = adaptiveBits
        self.initialBits = initialBits
        self.bypassedGradients = bypassedGradients
    }

    /// Refuses settings no run can use, naming the setting.
    public func validate() throws {
        func refuse(_ what: String) -> TrainingSetupError { TrainingSetupError(message: what) }
        guard maxStaleness >= 1 else { throw refuse("max staleness must be at least 1 epoch, got \(maxStaleness)") }
        guard smoothing >= 0 && smoothing < 1 else { throw refuse("smoothing must be in [0, 1), got \(smoothing)") }
        guard driftThreshold.isFinite && driftThreshold >= 0 else {
            throw refuse("drift threshold must be a non-negative number, got \(driftThreshold)")
        }
    }
}

/// Settings that cannot make a run.
public struct TrainingSetupError: Error, CustomStringConvertible, Equatable {
    public var message: String

    public init(message: String) {
        self.message = message
    }

    public var description: String { message }
}
