import HaloNN
import HaloQuantization
import HaloTensor
import HaloTransport

/// The synchronous halo exchange through a `Transport`, at the precision a `PrecisionPolicy` assigns.
///
/// Forward, each rank sends the rows `sendLists[p]` to rank `p` and decodes what it receives into its halo
/// block; backward, each rank sends its halo rows' gradients back to their owners, who add them into their own
/// rows' gradients. With a full-precision policy and no overlap this is vanilla training; with a quantizing policy
/// it is AdaQP-q, with `overlap` AdaQP-p, with both AdaQP. With `overlap` the layer's local work (central rows
/// forward, inner columns backward) runs while the messages are in flight, otherwise after they arrived.
///
/// Every row is quantized with dither addressed by (seed, epoch, layer and direction, global node id), so the
/// messages, like the rest of training, do not depend on which rank sends them.
public final class HaloRowExchange: InstrumentedExchange {
    public let plan: HaloExchangePlan
    public let overlap: Bool
    public let policy: any PrecisionPolicy
    private let transport: any Transport
    /// Global node id of every row of `sendLists[p]`, per peer (the dither address of forward rows).
    private let sendNodeIDs: [[Int32]]
    /// Global node id of every halo row (the dither address of backward rows).
    private let haloNodeIDs: [Int32]
    public var statistics = CommunicationStatistics()

    public init(plan: HaloExchangePlan, transport: any Transport, innerNodeIDs: [Int32], haloNodeIDs: [Int32],
                policy: any PrecisionPolicy = UniformPrecision(.full), overlap: Bool = false) {
        precondition(plan.rank == transport.rank && plan.worldSize == transport.worldSize, "plan is for another rank")
        precondition(innerNodeIDs.count == plan.innerCount && haloNodeIDs.count == plan.haloCount, "node ids must cover inner and halo rows")
        self.plan = plan
        self.transport = transport
        self.policy = policy
        self.overlap = overlap
        self.haloNodeIDs = haloNodeIDs
        sendNodeIDs = plan.sendLists.map { $0.map { innerNodeIDs[Int($0)] } }
    }

    private func randomness(_ layer: LayerIndex, _ direction: MessageDirection, _ context: StepContext) -> QuantizationRandomness {
        QuantizationRandomness(random: context.random, epoch: UInt32(truncatingIfNeeded: context.epoch),
                               site: QuantizationRandomness.site(layer: layer.rawValue, backward: direction == .backward))
    }

    private func bits(_ layer: LayerIndex, _ direction: MessageDirection, sentTo peer: Int, _ context: StepContext) -> BitAssignment {
        context.training ? policy.bitsSent(layer: layer, direction: direction, to: peer) : .uniform(.full)
    }

    private func bits(_ layer: LayerIndex, _ direction: MessageDirection, receivedFrom peer: Int, _ context: StepContext) -> BitAssignment {
        context.training ? policy.bitsReceived(layer: layer, direction: direction, from: peer) : .uniform(.full)
    }

    /// Encodes one message per peer (empty to oneself), reporting row ranges of training messages to the policy.
    private func encodeMessages(
        _ source: Matrix, rows: (Int) -> RowSelection, nodeIDs: (Int) -> [Int32], layer: LayerIndex,
        direction: MessageDirection, context: StepContext
    ) -> [[UInt8]] {
        let watch = Stopwatch()
        defer { statistics.quantizeSeconds += watch.elapsed }
        let random = randomness(layer, direction, context)
        var ranges: [Float] = []
        return (0..<plan.worldSize).map { p in
            guard p != plan.rank else { return [] }
            var bytes: [UInt8] = []
            RowQuantizer.encode(source, rows: rows(p), bits: bits(layer, direction, sentTo: p, context), nodeIDs: nodeIDs(p),
                                randomness: random, into: &bytes, ranges: &ranges, pool: context.pool)
            if context.training {
                policy.didSend(layer: layer, direction: direction, to: p, ranges: ranges, width: source.cols)
            }
            return bytes
        }
    }

    public func exchangeForward(
        _ layer: LayerIndex, rows: inout Matrix, context: StepContext, overlapping: (Matrix) -> Void
    ) throws {
        precondition(rows.rows == plan.innerCount + plan.haloCount, "\(layer): exchange buffer has \(rows.rows) rows")
        let messages = encodeMessages(rows, rows: { .indices(self.plan.sendLists[$0]) }, nodeIDs: { self.sendNodeIDs[$0] },
                                      layer: layer, direction: .forward, context: context)
        let received = try transfer(messages, .forward) { if overlap { overlapping(rows) } }
        let watch = Stopwatch()
        for p in 0..<plan.worldSize where p != plan.rank {
            let range = plan.haloRanges[p]
            try RowQuantizer.decode(received[p], bits: bits(layer, .forward, receivedFrom: p, context), into: &rows,
                                    rows: .range((plan.innerCount + range.lowerBound)..<(plan.innerCount + range.upperBound)),
                                    pool: context.pool)
        }
        statistics.quantizeSeconds += watch.elapsed
        if !overlap { overlapping(rows) }
    }

    public func exchangeBackward(
        _ layer: LayerIndex, haloGradient: Matrix, innerGradient: inout Matrix, context: StepContext,
        overlapping: (inout Matrix) -> Void
    ) throws {
        precondition(haloGradient.rows == plan.haloCount, "\(layer): halo gradient has \(haloGradient.rows) rows, halo \(plan.haloCount)")
        let messages = encodeMessages(
            haloGradient, rows: { .range(self.plan.haloRanges[$0]) },
            nodeIDs: { Array(self.haloNodeIDs[self.plan.haloRanges[$0]]) }, layer: layer, direction: .backward,
            context: context)
        let received = try transfer(messages, .backward) { if overlap { overlapping(&innerGradient) } }
        if !overlap { overlapping(&innerGradient) }
        let watch = Stopwatch()
        for p in 0..<plan.worldSize where p != plan.rank {
            try RowQuantizer.decode(received[p], bits: bits(layer, .backward, receivedFrom: p, context), into: &innerGradient,
                                    rows: .indices(plan.sendLists[p]), accumulate: true, pool: context.pool)
        }
        statistics.quantizeSeconds += watch.elapsed
    }

    /// Starts the all-to-all, runs `whileInFlight`, waits; accounts bytes, blocked time and transfer duration.
    private func transfer(_ messages: [[UInt8]], _ direction: MessageDirection, whileInFlight: () -> Void) throws -> [[UInt8]] {
        let bytes = messages.reduce(0) { $0 + $1.count }
        statistics.haloBytesSent += bytes
        if direction == .forward { statistics.forwardBytesSent += bytes }
        let started = DispatchTimeNanoseconds.now
        let pending = try transport.startAllToAll(messages)
        whileInFlight()
        let waitStarted = DispatchTimeNanoseconds.now
        let received = try pending.wait()
        let waitEnded = DispatchTimeNanoseconds.now
        statistics.waitSeconds += Double(waitEnded - waitStarted) / 1e9
        let completed = min(pending.completionTime ?? waitEnded, waitEnded)
        statistics.transferSeconds += Double(completed &- min(started, completed)) / 1e9
        return received
    }
}
