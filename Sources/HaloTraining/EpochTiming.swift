/// Where one rank's time went in one training step, as the trainer measured it.
public struct EpochTiming: Sendable, Equatable {
    /// Computing (the step's time less the communication the rank was blocked on and quantization).
    public var computeSeconds: Double
    /// Blocked on communication: halo messages and the collectives (gradient and loss all-reduce).
    public var exposedCommunicationSeconds: Double

    public init(computeSeconds: Double, exposedCommunicationSeconds: Double) {
        self.computeSeconds = computeSeconds
        self.exposedCommunicationSeconds = exposedCommunicationSeconds
    }

    /// Communication took at least half of the step: the network, not the computation, sets the epoch's pace, so
    /// fewer bytes on it would shorten the epoch.
    ///
    /// Why this and not each send's duration alone: a send completes once its bytes are in the kernel's socket
    /// buffer (megabytes on a 1 Gbit/s link), so on a fast but saturated link every send looks quick while the
    /// gradient all-reduce at the end of the step queues behind them. The step's blocked time sees that.
    public var isCommunicationBound: Bool {
        exposedCommunicationSeconds > computeSeconds
    }
}
