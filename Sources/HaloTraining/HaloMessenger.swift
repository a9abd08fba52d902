import HaloNN
import HaloQuantization
import HaloTensor
import HaloTransport

/// Encodes, moves and decodes one rank's halo messages, and accounts for every byte and second of it.
///
/// Every schedule (synchronous, overlapped, pipelined) and every precision policy sends through one messenger,
/// so messages have one format (`MessageHeader` + `RowQuantizer` rows) and the accounting means the same for all
/// methods. Which rows a message holds follows from the plan: forward, rank p gets our rows `sendLists[p]` and
/// they land in our halo block `haloRanges[p]` on the other side; backward, the gradients of our halo block from
/// p go back to p and are added to its rows `sendLists`.
///
/// Every row is quantized with dither addressed by (seed, epoch, layer and direction, global node id), so the
/// messages, like the rest of training, do not depend on which rank sends them.
public final class HaloMessenger {
    public let plan: HaloExchangePlan
    let transport: any Transport
    /// Global node id of every row of `sendLists[p]`, per peer (the dither address of forward rows).
    private let sendNodeIDs: [[Int32]]
    /// Global node ids of the halo rows from each peer (the dither address of backward rows).
    private let haloNodeIDs: [[Int32]]
    public var statistics = CommunicationStatistics()
    /// Every row's `hi − lo` of the message being encoded (reused between messages).
    private var ranges: [Float] = []

    public init(plan: HaloExchangePlan, transport: any Transport, innerNodeIDs: [Int32], haloNodeIDs: [Int32]) {
        precondition(plan.rank == transport.rank && plan.worldSize == transport.worldSize, "plan is for another rank")
        precondition(innerNodeIDs.count == plan.innerCount && haloNodeIDs.count == plan.haloCount, "node ids must cover inner and halo rows")
        self.plan = plan
        self.transport = transport
        sendNodeIDs = plan.sendLists.map { $0.map { innerNodeIDs[Int($0)] } }
        self.haloNodeIDs = plan.haloRanges.map { Array(haloNodeIDs[$0]) }
    }

    public var rank: Int { plan.rank }
    public var worldSize: Int { plan.worldSize }
    /// Every other rank.
    public var peers: [Int] { (0..<plan.worldSize).filter { $0 != plan.rank } }

    /// The rows of the matrix a layer hands over (inner + halo rows forward, halo gradients backward) that go
    /// to `peer`.
    func outgoingRows(_ direction: MessageDirection, to peer: Int) -> RowSelection {
        direction == .forward ? .indices(plan.sendLists[peer]) : .range(plan.haloRanges[peer])
    }

    /// The rows of the receiving matrix (inner + halo rows forward, inner gradients backward) a message from
    /// `peer` fills.
    func incomingRows(_ direction: MessageDirection, from peer: Int) -> RowSelection {
        direction == .forward
            ? .range((plan.innerCount + plan.haloRanges[peer].lowerBound)..<(plan.innerCount + plan.haloRanges[peer].upperBound))
            : .indices(plan.sendLists[peer])
    }

    /// Rows in a message from `peer`.
    func incomingRowCount(_ direction: MessageDirection, from peer: Int) -> Int {
        direction == .forward ? plan.haloRanges[peer].count : plan.sendLists[peer].count
    }

    private func nodeIDs(_ direction: MessageDirection, to peer: Int) -> [Int32] {
        direction == .forward ? sendNodeIDs[peer] : haloNodeIDs[peer]
    }

    /// One message: header, then `source`'s rows for `peer` at `bits`. A training message's rows' ranges
    /// `hi − lo` go to `policy` (AdaQP's variance trace).
    func encode(
        _ source: Matrix, _ site: MessageSite, to peer: Int, bits: BitAssignment, drift: Float = .nan,
        context: StepContext, reportingTo policy: (any PrecisionPolicy)? = nil
    ) -> [UInt8] {
        let watch = Stopwatch()
        defer { statistics.quantizeSeconds += watch.elapsed }
        let rows = outgoingRows(site.direction, to: peer)
        let header = MessageHeader(rows: rows.count, bits: bits, drift: drift)
        let payload = RowQuantizer.encodedSize(width: source.cols, bits: bits, rows: rows.count)
        var bytes = [UInt8]()
        bytes.reserveCapacity(header.byteCount + payload)
        header.write(to: &bytes)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: payload))
        if ranges.count < rows.count { ranges = [Float](repeating: 0, count: rows.count) }
        let random = QuantizationRandomness(
            random: context.random, epoch: UInt32(truncatingIfNeeded: context.epoch),
            site: QuantizationRandomness.site(layer: site.layer.rawValue, backward: site.direction == .backward))
        bytes.withUnsafeMutableBytes { raw in
            ranges.withUnsafeMutableBufferPointer { r in
                _ = RowQuantizer.encode(source, rows: rows, bits: bits, nodeIDs: nodeIDs(site.direction, to: peer),
                                        randomness: random, into: UnsafeMutableRawBufferPointer(rebasing: raw[start...]),
                                        ranges: r, pool: context.pool)
            }
        }
        policy?.didEncode(site, to: peer, ranges: Array(ranges.prefix(rows.count)), width: source.cols)
        return bytes
    }

    /// Decodes a message from `peer` into `rows` of `target` (added to them when `accumulate`); returns its header.
    @discardableResult
    func decode(
        _ bytes: [UInt8], _ site: MessageSite, from peer: Int, into target: inout Matrix, rows: RowSelection,
        accumulate: Bool = false, pool: ComputePool
    ) throws -> MessageHeader {
        let watch = Stopwatch()
        defer { statistics.quantizeSeconds += watch.elapsed }
        return try bytes.withUnsafeBytes { raw in
            let header = try MessageHeader(reading: raw, expectedRows: rows.count)
            do {
                try RowQuantizer.decode(UnsafeRawBufferPointer(rebasing: raw[header.byteCount...]), bits: header.bits,
                                        into: &target, rows: rows, accumulate: accumulate, pool: pool)
            } catch {
                throw MessageError.malformed("\(site) from rank \(peer): \(error)")
            }
            return header
        }
    }

    /// Decodes a message from `peer` into the rows it belongs to (see `incomingRows`).
    @discardableResult
    func decode(
        _ bytes: [UInt8], _ site: MessageSite, from peer: Int, into target: inout Matrix, accumulate: Bool = false,
        pool: ComputePool
    ) throws -> MessageHeader {
        try decode(bytes, site, from: peer, into: &target, rows: incomingRows(site.direction, from: peer),
                   accumulate: accumulate, pool: pool)
    }

    /// All-to-all of one message per rank (empty to oneself): starts it, runs `whileInFlight`, waits. Accounts
    /// bytes, blocked time and transfer duration.
    func allToAll(_ messages: [[UInt8]], _ direction: MessageDirection, whileInFlight: () -> Void) throws -> [[UInt8]] {
        countSent(messages.reduce(0) { $0 + $1.count }, direction)
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

    /// Sends one pipelined message on `site`'s channel, stamped with the epoch it was produced in.
    func send(_ bytes: [UInt8], _ site: MessageSite, to peer: Int, epoch: Int) throws -> any PendingSend {
        countSent(bytes.count, site.direction)
        return try transport.send(bytes, stamp: epoch, to: peer, on: site.channel)
    }

    /// Channel messages from `peer` that have arrived; with `waiting`, blocks for at least one (the blocked time
    /// is accounted as waiting).
    func receive(_ site: MessageSite, from peer: Int, epoch: Int, waiting: Bool) throws -> [ChannelMessage] {
        guard waiting else { return try transport.takeArrived(from: peer, on: site.channel, clock: epoch) }
        let watch = Stopwatch()
        defer { statistics.waitSeconds += watch.elapsed }
        return try transport.waitForMessages(from: peer, on: site.channel, clock: epoch)
    }

    private func countSent(_ bytes: Int, _ direction: MessageDirection) {
        statistics.haloBytesSent += bytes
        if direction == .forward { statistics.forwardBytesSent += bytes }
    }
}
