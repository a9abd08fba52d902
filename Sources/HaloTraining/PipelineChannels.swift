import HaloQuantization
import HaloTensor
import HaloTransport

/// The sending end of one pipelined channel (site, peer): what was sent, what is still in flight, and the last
/// block sent at full precision (to measure drift against). A class, so its block is updated in place.
final class OutgoingChannel {
    /// Sends not yet known to be complete, oldest first, with when each was handed to the transport.
    var inFlight: [(send: any PendingSend, started: UInt64)] = []
    /// How long the last completed send took, start to completion (seconds), when the transport knows.
    var lastTransferSeconds: Double?
    /// Messages sent over the run (the receiver drains exactly this many at the end).
    var sentCount = 0
    /// Epoch of the last message sent.
    var lastSentEpoch: Int?
    /// The last message carried a drift above the threshold, which promises the receiver a message in the next
    /// epoch too (so a receiver may wait for it without deadlock).
    var promisedNext = false
    /// The rows of the last message sent, at full precision (only kept when drift is measured).
    var lastSentBlock: [Float] = []

    /// Whether the link is slower than the computation a message must hide behind (`computeSeconds`, one epoch's):
    /// the previous send is still under way at the sender's epoch `clock`, or the last one took longer.
    ///
    /// Both signals are needed: on a capped link the gradient all-reduce, waited for before the optimiser step,
    /// queues behind the halo traffic, so every send has completed by the next epoch however slow the link is,
    /// and only its duration tells.
    func isLate(clock: Int, computeSeconds: Double?) -> Bool {
        while let first = inFlight.first, first.send.isComplete(clock: clock) {
            if let done = first.send.completionTime, done >= first.started {
                lastTransferSeconds = Double(done - first.started) / 1e9
            }
            inFlight.removeFirst()
        }
        if !inFlight.isEmpty { return true }
        guard let computeSeconds, let lastTransferSeconds else { return false }
        return lastTransferSeconds > computeSeconds
    }
}

/// The receiving end of one pipelined channel: messages taken from the transport but not yet consumed, and the
/// block in use (the cache a bypass reuses). A class, like `OutgoingChannel`.
final class IncomingChannel {
    var pending: [ChannelMessage] = []
    /// Messages taken from the transport over the run (arrived, consumed or superseded).
    var takenCount = 0
    /// The block in use: decoded rows (smoothed when smoothing is on), nil until the first message is consumed.
    var block: Matrix?
    /// Epoch the block was produced in.
    var blockEpoch = -1
    /// The sender promised a message for `blockEpoch + 1` (the block's drift was high).
    var promisedNext = false

    func take(_ messages: [ChannelMessage]) {
        pending.append(contentsOf: messages)
        takenCount += messages.count
    }
}
