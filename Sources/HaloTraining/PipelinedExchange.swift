import HaloNN
import HaloQuantization
import HaloTensor
import HaloTransport

/// The pipelined schedule: a layer sends this epoch's rows (and, backward, gradients) on per-(site, peer)
/// channels and computes with blocks from earlier epochs, so transfers overlap whole epochs of computation.
///
/// Which earlier block a layer uses is the `Consumption` rule:
/// - `.previousEpoch` (PipeGCN): exactly the block produced at t − 1. Epoch 0 uses zeros, or, with the `sync`
///   warm-up, waits for epoch 0's own messages.
/// - `.newestWithin` (PipeQS): the newest block that has arrived. If nothing new arrived the cached block is
///   reused (a *bypass*) as long as the `StalenessRule` allows; otherwise the rank waits. A sender whose previous
///   send on a channel has not left yet skips this epoch's send (the link is the bottleneck) when the rule allows.
///   A receiver only ever waits for a message its sender is committed to send: no broadcast, no barrier, no
///   deadlock (the argument is on `StalenessRule`).
///
/// Bypassed backward channels apply their cached gradient block (or nothing, with `bypassedGradients: .dropped`).
/// Evaluation exchanges synchronously in full precision. `finish()` drains every message still in flight.
public final class PipelinedExchange: HaloExchange {
    public enum Consumption: Sendable, Equatable {
        case previousEpoch(warmup: PipelineSettings.Warmup)
        case newestWithin(StalenessRule)
    }

    public let messenger: HaloMessenger
    public let precision: any PrecisionPolicy
    public let consumption: Consumption
    public let settings: PipelineSettings
    /// Whether senders measure drift (PipeQS); PipeGCN does not need it.
    private let measuresDrift: Bool
    /// Synchronous full-precision exchange for evaluation and the one-off layer-0 aggregation.
    private let evaluation: SynchronousExchange
    private var outgoing: [MessageSite: [OutgoingChannel]] = [:]
    private var incoming: [MessageSite: [IncomingChannel]] = [:]
    private var tallies: [MessageSite: PipelineSiteTally] = [:]
    /// The last training epoch begun (the clock of the final drain).
    private var lastEpoch = 0
    /// This rank's computing time in the last epoch: what a message's transfer has to hide behind.
    private var lastComputeSeconds: Double?
    /// Over a network, communication bounded the last epoch: every link of this rank is asked for fewer bytes, even
    /// when no single send looked slow (see `EpochTiming.isCommunicationBound`). In memory, bytes cost nothing.
    private var networkBoundEpoch = false

    public init(messenger: HaloMessenger, precision: any PrecisionPolicy, consumption: Consumption,
                settings: PipelineSettings, measuresDrift: Bool) {
        self.messenger = messenger
        self.precision = precision
        self.consumption = consumption
        self.settings = settings
        self.measuresDrift = measuresDrift
        evaluation = SynchronousExchange(messenger: messenger, precision: UniformPrecision(.full), overlap: false)
    }

    /// The oldest block age the rule can use.
    var maxAge: Int {
        switch consumption {
        case .previousEpoch: 1
        case .newestWithin(let rule): max(rule.maxStaleness, 1)
        }
    }

    private func openChannels(for site: MessageSite) {
        guard outgoing[site] == nil else { return }
        outgoing[site] = (0..<messenger.worldSize).map { _ in OutgoingChannel() }
        incoming[site] = (0..<messenger.worldSize).map { _ in IncomingChannel() }
        tallies[site] = PipelineSiteTally(maxAge: maxAge)
    }

    // MARK: Layers

    public func exchangeForward(
        _ layer: LayerIndex, rows: inout Matrix, context: StepContext, overlapping: (Matrix) -> Void
    ) throws {
        guard context.training else {
            return try evaluation.exchangeForward(layer, rows: &rows, context: context, overlapping: overlapping)
        }
        let plan = messenger.plan
        precondition(rows.rows == plan.innerCount + plan.haloCount, "\(layer): exchange buffer has \(rows.rows) rows")
        let site = MessageSite(layer: layer, direction: .forward)
        openChannels(for: site)
        for peer in messenger.peers { try send(rows, site, to: peer, context: context) }
        // Local work first: it gives this epoch's messages time to arrive before the halo is needed.
        overlapping(rows)
        for peer in messenger.peers {
            guard let block = try resolve(site, from: peer, width: rows.cols, context: context).block else { continue }
            let offset = (plan.innerCount + plan.haloRanges[peer].lowerBound) * rows.cols
            rows.storage.withUnsafeMutableBufferPointer { r in
                block.storage.withUnsafeBufferPointer { b in
                    (r.baseAddress! + offset).update(from: b.baseAddress!, count: b.count)
                }
            }
        }
    }

    public func exchangeBackward(
        _ layer: LayerIndex, haloGradient: Matrix, innerGradient: inout Matrix, context: StepContext,
        overlapping: (inout Matrix) -> Void
    ) throws {
        guard context.training else {
            return try evaluation.exchangeBackward(layer, haloGradient: haloGradient, innerGradient: &innerGradient,
                                                   context: context, overlapping: overlapping)
        }
        precondition(haloGradient.rows == messenger.plan.haloCount,
                     "\(layer): halo gradient has \(haloGradient.rows) rows, halo \(messenger.plan.haloCount)")
        let site = MessageSite(layer: layer, direction: .backward)
        openChannels(for: site)
        for peer in messenger.peers { try send(haloGradient, site, to: peer, context: context) }
        // The local product overwrites the inner gradient; the owners' blocks are added after it.
        overlapping(&innerGradient)
        for peer in messenger.peers {
            let (block, bypassed) = try resolve(site, from: peer, width: innerGradient.cols, context: context)
            guard let block, !(bypassed && settings.bypassedGradients == .dropped) else { continue }
            addRows(block, to: &innerGradient, at: messenger.plan.sendLists[peer])
        }
    }

    /// `target[rows[i]] += block[i]`.
    private func addRows(_ block: Matrix, to target: inout Matrix, at rows: [Int32]) {
        let width = target.cols
        precondition(block.cols == width && block.rows == rows.count, "gradient block does not fit its rows")
        target.storage.withUnsafeMutableBufferPointer { t in
            block.storage.withUnsafeBufferPointer { b in
                for (i, row) in rows.enumerated() {
                    let dst = t.baseAddress! + Int(row) * width, src = b.baseAddress! + i * width
                    for j in 0..<width { dst[j] += src[j] }
                }
            }
        }
    }

    // MARK: Sending

    /// Sends `source`'s rows for `peer` on `site`'s channel, unless PipeQS's rule skips this epoch.
    private func send(_ source: Matrix, _ site: MessageSite, to peer: Int, context: StepContext) throws {
        let epoch = context.epoch
        let channel = outgoing[site]![peer]
        let rows = messenger.outgoingRows(site.direction, to: peer)
        let late = channel.isLate(clock: epoch, computeSeconds: lastComputeSeconds)
        // A previous block of another shape (a forged checkpoint's) is no block to compare with.
        let measured = measuresDrift && channel.lastSentEpoch != nil && channel.lastSentBlock.count == rows.count * source.cols
            ? drift(source, rows: rows, previous: channel.lastSentBlock) : .nan
        let highDrift = measured.isFinite && Double(measured) > settings.driftThreshold
        if case .newestWithin(let rule) = consumption,
           rule.maySkip(epoch: epoch, lastSent: channel.lastSentEpoch, late: late, highDrift: highDrift,
                        promised: channel.promisedNext) {
            tallies[site]![.skippedSends] += 1
            return
        }
        if measured.isFinite {
            tallies[site]![.driftSum] += Double(measured)
            tallies[site]![.driftCount] += 1
        }
        // Widths move only on the sends that happen, so a link skipping epochs steps once per message.
        precision.observe(site, to: peer, drift: measured, congested: late || networkBoundEpoch)
        let bits = precision.bits(site, to: peer)
        let bytes = messenger.encode(source, site, to: peer, bits: bits, drift: measured, context: context,
                                     reportingTo: precision)
        let started = DispatchTimeNanoseconds.now
        channel.inFlight.append((try messenger.send(bytes, site, to: peer, epoch: epoch), started))
        channel.sentCount += 1
        channel.lastSentEpoch = epoch
        channel.promisedNext = highDrift
        if measuresDrift { gather(source, rows: rows, into: &channel.lastSentBlock) }
        tallies[site]!.sent(bits)
    }

    // MARK: Receiving

    /// The block `peer`'s rows (or gradients) on `site` are taken from this epoch (nil: none yet, zeros), and
    /// whether it is a bypass: a cached block more than one epoch old reused because nothing newer had arrived.
    private func resolve(
        _ site: MessageSite, from peer: Int, width: Int, context: StepContext
    ) throws -> (block: Matrix?, bypassed: Bool) {
        let epoch = context.epoch
        let channel = incoming[site]![peer]
        var waited = 0.0
        var bypassed = false
        /// Blocks for at least one more message; only the blocked time counts as waiting.
        func waitForMore() throws {
            let watch = Stopwatch()
            channel.take(try messenger.receive(site, from: peer, epoch: epoch, waiting: true))
            waited += watch.elapsed
        }
        channel.take(try messenger.receive(site, from: peer, epoch: epoch, waiting: false))
        let before = channel.blockEpoch
        switch consumption {
        case .previousEpoch(let warmup):
            var wanted = epoch - 1
            if wanted < 0 {
                guard warmup == .sync else {
                    tallies[site]![.zeroBlocks] += 1
                    return (nil, false)
                }
                wanted = 0
            }
            while channel.blockEpoch < wanted {
                if channel.pending.isEmpty {
                    try waitForMore()
                    continue
                }
                let message = channel.pending.removeFirst()
                guard message.stamp <= wanted else {
                    throw MessageError.malformed("\(site) from rank \(peer): epoch \(message.stamp) arrived before epoch \(wanted)")
                }
                if message.stamp == wanted { try consume(message, into: channel, site, from: peer, width: width, context: context) }
            }
        case .newestWithin(let rule):
            try consumeNewest(channel, site, from: peer, width: width, context: context)
            while true {
                let oldest = rule.oldestUsable(epoch: epoch, blockEpoch: channel.blockEpoch,
                                               promisedNext: channel.promisedNext)
                if channel.block != nil && channel.blockEpoch >= oldest { break }
                try waitForMore()
                try consumeNewest(channel, site, from: peer, width: width, context: context)
            }
            // Reusing last epoch's block is every pipeline's normal staleness; a bypass goes beyond it.
            bypassed = channel.blockEpoch == before && epoch - before > 1
            if bypassed { tallies[site]![.bypasses] += 1 }
        }
        if waited > 0 {
            tallies[site]![.waits] += 1
            tallies[site]![.waitSeconds] += waited
        }
        tallies[site]!.used(age: epoch - channel.blockEpoch)
        return (channel.block, bypassed)
    }

    /// Consumes the newest pending message, if any (older ones are superseded).
    private func consumeNewest(
        _ channel: IncomingChannel, _ site: MessageSite, from peer: Int, width: Int, context: StepContext
    ) throws {
        guard let newest = channel.pending.last else { return }
        channel.pending.removeAll()
        try consume(newest, into: channel, site, from: peer, width: width, context: context)
    }

    /// Decodes a message into the channel's block (blended into it with smoothing on).
    private func consume(
        _ message: ChannelMessage, into channel: IncomingChannel, _ site: MessageSite, from peer: Int,
        width: Int, context: StepContext
    ) throws {
        let count = messenger.incomingRowCount(site.direction, from: peer)
        let m = Float(settings.smoothing)
        var fresh = Matrix.uninitialized(rows: count, cols: width)
        let header = try messenger.decode(message.bytes, site, from: peer, into: &fresh, rows: .range(0..<count),
                                          pool: context.pool)
        if m > 0, let block = channel.block, block.cols == fresh.cols {
            fresh.storage.withUnsafeMutableBufferPointer { f in
                block.storage.withUnsafeBufferPointer { b in
                    for i in f.indices { f[i] = m * b[i] + (1 - m) * f[i] }
                }
            }
        }
        channel.block = fresh
        channel.blockEpoch = message.stamp
        channel.promisedNext = promises(header)
    }

    /// Whether a message promises the next one: its sender measured a drift above the threshold.
    private func promises(_ header: MessageHeader) -> Bool {
        header.drift.isFinite && Double(header.drift) > settings.driftThreshold
    }

    // MARK: Lifecycle

    public func beginEpoch(_ epoch: Int) throws {
        lastEpoch = epoch
        try precision.beginEpoch(epoch)
    }

    public func takeStatistics() -> CommunicationStatistics {
        defer { messenger.statistics = CommunicationStatistics() }
        return messenger.statistics
    }

    public func endEpoch(_ epoch: Int, timing: EpochTiming) throws -> [PipelineSiteRecord]? {
        lastComputeSeconds = timing.computeSeconds
        networkBoundEpoch = messenger.transport.crossesNetwork && timing.isCommunicationBound
        let sites = tallies.keys.sorted()
        var flat = sites.flatMap { tallies[$0]!.flat }
        try messenger.transport.allReduceSum(&flat)
        let n = PipelineSiteTally.flatCount(maxAge: maxAge)
        for site in sites { tallies[site] = PipelineSiteTally(maxAge: maxAge) }
        return sites.enumerated().map { i, site in
            PipelineSiteTally.record(site, flat: flat[(i * n)..<((i + 1) * n)], maxAge: maxAge)
        }
    }

    /// Receives every message still in flight and drops it: the run is over.
    public func finish() throws { try receiveInFlight(keepingThem: false) }

    /// Receives every message still in flight: each rank tells each peer how many it sent on every channel, and
    /// takes messages until it has them all; then waits for its own sends to leave. `keepingThem`: the messages
    /// stay pending for the epochs to come (a checkpoint, after which training goes on) or are dropped (the end).
    private func receiveInFlight(keepingThem: Bool) throws {
        let sites = outgoing.keys.sorted()
        let counts = (0..<messenger.worldSize).map { peer -> [UInt8] in
            var writer = ByteWriter()
            for site in sites where peer != messenger.rank { writer.append(outgoing[site]![peer].sentCount) }
            return writer.bytes
        }
        let announced = try messenger.transport.allToAll(counts)
        for peer in messenger.peers {
            var reader = ByteReader(announced[peer])
            for site in sites {
                let expected: Int = try reader.read()
                while incoming[site]![peer].takenCount < expected {
                    incoming[site]![peer].take(
                        try messenger.transport.waitForMessages(from: peer, on: site.channel, clock: lastEpoch + 1))
                }
                if !keepingThem { incoming[site]![peer].pending.removeAll() }
            }
        }
        for site in sites {
            for peer in messenger.peers {
                let channel = outgoing[site]![peer]
                for pending in channel.inFlight {
                    try pending.send.wait()
                    if let done = pending.send.completionTime, done >= pending.started {
                        channel.lastTransferSeconds = Double(done - pending.started) / 1e9
                    }
                }
                channel.inFlight.removeAll()
            }
        }
    }

    // MARK: Checkpoints

    /// Receives what is in flight (kept pending, as the next epochs expect it), then writes every channel: the
    /// cached block and its epoch, pending messages as they arrived (still encoded), what each sender last sent,
    /// and the precision policy's widths. PipeGCN resumed from it computes exactly what it would have computed.
    public func saveState(into writer: inout ByteWriter) throws {
        try receiveInFlight(keepingThem: true)
        writer.append(lastEpoch)
        writer.append(lastComputeSeconds ?? -1)
        writer.append(networkBoundEpoch)
        let sites = outgoing.keys.sorted()
        writer.append(sites.count)
        for site in sites {
            site.write(to: &writer)
            for peer in 0..<messenger.worldSize {
                let out = outgoing[site]![peer], into = incoming[site]![peer]
                writer.append(out.lastSentEpoch ?? -1)
                writer.append(out.promisedNext)
                writer.append(out.lastTransferSeconds ?? -1)
                writer.append(elements: out.lastSentBlock)
                writer.append(into.pending.count)
                for message in into.pending {
                    writer.append(message.stamp)
                    writer.append(elements: message.bytes)
                }
                writer.append(into.blockEpoch)
                writer.append(into.promisedNext)
                writer.append(into.block != nil)
                if let block = into.block {
                    writer.append(block.rows)
                    writer.append(block.cols)
                    writer.append(elements: block.storage)
                }
            }
        }
        try precision.saveState(into: &writer)
    }

    public func restoreState(from reader: inout ByteReader, epochsDone: Int) throws {
        lastEpoch = try reader.read()
        // Every later check of an epoch (stamps, block ages, the last send) is bounded by this one.
        guard lastEpoch == epochsDone - 1 else { throw CheckpointStateError("last epoch \(lastEpoch) after \(epochsDone) epochs") }
        let compute: Double = try reader.read()
        lastComputeSeconds = compute >= 0 ? compute : nil
        networkBoundEpoch = try reader.read()
        let count: Int = try reader.read()
        for _ in 0..<max(count, 0) {
            let site = try MessageSite(from: &reader)
            openChannels(for: site)
            for peer in 0..<messenger.worldSize {
                let out = outgoing[site]![peer], into = incoming[site]![peer]
                let lastSent: Int = try reader.read()
                // Epochs are ages' origins (`epoch − blockEpoch`): only -1 (none) up to the epoch saved make sense.
                guard (-1...lastEpoch).contains(lastSent) else {
                    throw CheckpointStateError("last send of epoch \(lastSent) at \(site) to rank \(peer)")
                }
                out.lastSentEpoch = lastSent >= 0 ? lastSent : nil
                out.promisedNext = try reader.read()
                let transfer: Double = try reader.read()
                out.lastTransferSeconds = transfer >= 0 ? transfer : nil
                // Its shape is checked where the drift uses it (`send`): a block of another shape is no block.
                out.lastSentBlock = try reader.readElements()
                let pending: Int = try reader.read()
                guard pending >= 0, pending <= reader.remaining / 16 else {
                    throw CheckpointStateError("\(pending) pending messages at \(site) from rank \(peer)")
                }
                into.pending = try (0..<pending).map { _ in
                    ChannelMessage(stamp: try reader.read(), bytes: try reader.readElements(),
                                   arrivalTime: DispatchTimeNanoseconds.now)
                }
                into.blockEpoch = try reader.read()
                guard (-1...lastEpoch).contains(into.blockEpoch) else {
                    throw CheckpointStateError("block of epoch \(into.blockEpoch) at \(site) from rank \(peer)")
                }
                // PipeGCN's last epoch used at most the block of the epoch before it (epoch 0 its own with a
                // synchronous warm-up): a newer one would make the next epoch skip the message it waits for.
                if case .previousEpoch(let warmup) = consumption {
                    let used = lastEpoch >= 1 ? lastEpoch - 1 : (warmup == .sync ? 0 : -1)
                    guard into.blockEpoch <= used else {
                        throw CheckpointStateError("block of epoch \(into.blockEpoch) at \(site) from rank \(peer) after epoch \(lastEpoch), which used at most epoch \(used)'s")
                    }
                }
                into.promisedNext = try reader.read()
                let hasBlock: Bool = try reader.read()
                into.block = nil
                if hasBlock {
                    let rows: Int = try reader.read(), cols: Int = try reader.read()
                    let values: [Float] = try reader.readElements()
                    let size = rows.multipliedReportingOverflow(by: cols)
                    guard rows >= 0, cols >= 0, rows == messenger.incomingRowCount(site.direction, from: peer),
                          !size.overflow, values.count == size.partialValue else {
                        throw CheckpointStateError("\(rows) × \(cols) block at \(site) from rank \(peer)")
                    }
                    into.block = Matrix(rows: rows, cols: cols, storage: values)
                }
            }
        }
        try precision.restoreState(from: &reader)
        try checkRestoredMessages()
        try checkAgreementWithPeers()
    }

    /// Each sender's record of a channel must be what its receiver holds, since whether a rank waits for a message
    /// rests on both (`StalenessRule`): a receiver whose newest block is older than its sender's last send, or that
    /// trusts a promise the sender never made, would wait for a message the sender may skip. A checkpoint is saved
    /// with nothing in flight, so the receiver's newest epoch (its block's or a pending message's) is the sender's
    /// last send, and the promise the receiver will hold (its block's, or the newest pending message's) is the
    /// sender's. One all-to-all: collective, every rank restores together.
    private func checkAgreementWithPeers() throws {
        let sites = outgoing.keys.sorted()
        var messages = [[UInt8]](repeating: [], count: messenger.worldSize)
        for peer in messenger.peers {
            var writer = ByteWriter()
            writer.append(sites.count)
            for site in sites {
                site.write(to: &writer)
                writer.append(outgoing[site]![peer].lastSentEpoch ?? -1)
                writer.append(outgoing[site]![peer].promisedNext)
            }
            messages[peer] = writer.bytes
        }
        let received = try messenger.transport.allToAll(messages)
        for peer in messenger.peers {
            var reader = ByteReader(received[peer])
            let count: Int = try reader.read()
            guard count == sites.count else {
                throw CheckpointStateError("\(count) pipelined sites in rank \(peer)'s checkpoint, \(sites.count) in this rank's")
            }
            for site in sites {
                let theirs = try MessageSite(from: &reader)
                let lastSent: Int = try reader.read(), promised: Bool = try reader.read()
                guard theirs == site else { throw CheckpointStateError("\(theirs) in rank \(peer)'s checkpoint where this rank's has \(site)") }
                let channel = incoming[site]![peer]
                let newest = max(channel.blockEpoch, channel.pending.map(\.stamp).max() ?? -1)
                guard newest == lastSent else {
                    throw CheckpointStateError("disagreement between this rank's checkpoint and rank \(peer)'s: rank \(peer)'s says it last sent epoch \(lastSent)'s message at \(site), this rank's holds epoch \(newest)'s")
                }
                // The promise the receiver will act on: its block's, or the one the newest pending message carries
                // (read when that message is consumed, so read from its header now).
                var held = channel.promisedNext
                if let newestPending = channel.pending.max(by: { $0.stamp < $1.stamp }) {
                    let header = try newestPending.bytes.withUnsafeBytes {
                        try MessageHeader(reading: $0, expectedRows: messenger.incomingRowCount(site.direction, from: peer))
                    }
                    held = promises(header)
                }
                guard promised == held else {
                    throw CheckpointStateError("disagreement between this rank's checkpoint and rank \(peer)'s on the promise of a next message at \(site): \(promised) in rank \(peer)'s, \(held) in this rank's")
                }
            }
        }
    }

    /// The messages a checkpoint holds must be the ones the next epoch waits for: none from a later epoch and, for
    /// PipeGCN, from every peer on every site the one of the epoch saved, which the next epoch consumes (or holds
    /// already: with a synchronous warm-up epoch 0 consumes its own message). Without it a rank would wait for a
    /// message its peer sent before the checkpoint and will never send again.
    private func checkRestoredMessages() throws {
        for (site, channels) in incoming {
            for peer in messenger.peers {
                let pending = channels[peer].pending
                if let odd = pending.first(where: { !(0...lastEpoch).contains($0.stamp) }) {
                    throw CheckpointStateError("message of epoch \(odd.stamp) at \(site) from rank \(peer) in a checkpoint of epoch \(lastEpoch)")
                }
                if case .previousEpoch = consumption, channels[peer].blockEpoch != lastEpoch,
                   !pending.contains(where: { $0.stamp == lastEpoch }) {
                    throw CheckpointStateError("absence of the message of epoch \(lastEpoch) at \(site) from rank \(peer), which the next epoch uses")
                }
            }
        }
    }

    public func contribute(to report: inout TrainingReport) { precision.contribute(to: &report) }

    /// The plan, and per channel the cached block, the messages received ahead of use and the last block sent.
    public func tally(into tally: inout MemoryTally) {
        messenger.plan.tally(into: &tally)
        for channels in incoming.values {
            for channel in channels {
                if let block = channel.block { tally.add(block, as: .messageBuffers) }
                for message in channel.pending { tally.add(message.bytes, as: .messageBuffers) }
            }
        }
        for channels in outgoing.values {
            for channel in channels { tally.add(channel.lastSentBlock, as: .messageBuffers) }
        }
    }
}
