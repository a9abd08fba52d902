import HaloNN
import HaloQuantization
import HaloTensor

/// The synchronous schedule: every layer's messages are sent and received within the layer, at the widths a
/// `PrecisionPolicy` assigns.
///
/// Forward, each rank sends its boundary rows to the ranks that hold them as halo nodes and decodes what it
/// receives into its halo block; backward, each rank sends its halo rows' gradients back to their owners, who
/// add them into their own rows' gradients. The layer's local work (central rows forward, inner columns
/// backward) runs after the messages arrived, or, when `overlap` is on, while they are in flight (AdaQP's
/// central/marginal overlap). With full precision and no overlap this is vanilla training; with a quantizing
/// policy AdaQP-q, with overlap AdaQP-p, with both AdaQP.
public final class SynchronousExchange: HaloExchange {
    public let messenger: HaloMessenger
    public let precision: any PrecisionPolicy
    public let overlap: Bool

    public init(messenger: HaloMessenger, precision: any PrecisionPolicy, overlap: Bool) {
        self.messenger = messenger
        self.precision = precision
        self.overlap = overlap
    }

    /// Full-precision messages carry a block of columns as they would the whole row. Quantized ones are not cut:
    /// each block would get its own row ranges and dither, and AdaQP traces variances and costs per site.
    public var acceptsColumnBlocks: Bool { (precision as? UniformPrecision)?.width == .full }

    /// One message per rank (empty to oneself) of `source`'s rows for each peer.
    func encodeMessages(_ source: Matrix, _ site: MessageSite, context: StepContext) -> [[UInt8]] {
        (0..<messenger.worldSize).map { peer in
            guard peer != messenger.rank else { return [] }
            guard context.training else {
                return messenger.encode(source, site, to: peer, bits: .uniform(.full), context: context)
            }
            return messenger.encode(source, site, to: peer, bits: precision.bits(site, to: peer), context: context,
                                    reportingTo: precision)
        }
    }

    public func exchangeForward(
        _ layer: LayerIndex, rows: inout Matrix, context: StepContext, overlapping: (Matrix) -> Void
    ) throws {
        let plan = messenger.plan
        precondition(rows.rows == plan.innerCount + plan.haloCount, "\(layer): exchange buffer has \(rows.rows) rows")
        let site = MessageSite(layer: layer, direction: .forward)
        var received = try messenger.allToAll(encodeMessages(rows, site, context: context), .forward) {
            if overlap { overlapping(rows) }
        }
        // Each message is let go once decoded: with many halo rows the messages are as large as the halo block.
        for peer in messenger.peers {
            try messenger.decode(received[peer], site, from: peer, into: &rows, pool: context.pool)
            received[peer] = []
        }
        if !overlap { overlapping(rows) }
    }

    public func exchangeBackward(
        _ layer: LayerIndex, haloGradient: Matrix, innerGradient: inout Matrix, context: StepContext,
        overlapping: (inout Matrix) -> Void
    ) throws {
        precondition(haloGradient.rows == messenger.plan.haloCount,
                     "\(layer): halo gradient has \(haloGradient.rows) rows, halo \(messenger.plan.haloCount)")
        let site = MessageSite(layer: layer, direction: .backward)
        var received = try messenger.allToAll(encodeMessages(haloGradient, site, context: context), .backward) {
            if overlap { overlapping(&innerGradient) }
        }
        // The local product overwrites the inner gradient; what the halo's owners send back is added after it.
        if !overlap { overlapping(&innerGradient) }
        for peer in messenger.peers {
            try messenger.decode(received[peer], site, from: peer, into: &innerGradient, accumulate: true, pool: context.pool)
            received[peer] = []
        }
    }

    public func beginEpoch(_ epoch: Int) throws { try precision.beginEpoch(epoch) }

    public func takeStatistics() -> CommunicationStatistics {
        defer { messenger.statistics = CommunicationStatistics() }
        return messenger.statistics
    }

    public func endEpoch(_ epoch: Int, timing: EpochTiming) throws -> [PipelineSiteRecord]? { nil }
    public func finish() throws {}
    public func contribute(to report: inout TrainingReport) { precision.contribute(to: &report) }
    /// A synchronous exchange holds nothing between epochs but its precision policy's state.
    public func saveState(into writer: inout ByteWriter) throws { try precision.saveState(into: &writer) }
    public func restoreState(from reader: inout ByteReader, epochsDone: Int) throws { try precision.restoreState(from: &reader) }
    /// Messages live only within a layer's exchange; what stays is the plan.
    public func tally(into tally: inout MemoryTally) { messenger.plan.tally(into: &tally) }
}
