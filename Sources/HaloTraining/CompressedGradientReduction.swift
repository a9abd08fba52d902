import Dispatch
import HaloQuantization
import HaloTensor
import HaloTransport

/// Sums weight gradients over ranks in a compressed wire format (`GradientCompression`), with error feedback:
/// a reduce-scatter, then an all-gather, both over the transport's channels.
///
/// A bucket's vector is cut into one shard per rank (on `GradientCodec.rowWidth` boundaries). Each rank adds to its
/// gradient what its last encoding of this bucket lost (`workerResiduals`), encodes every shard and sends it to the
/// shard's owner (its own shard it decodes itself). The owner sums the P decoded contributions in rank order, adds
/// what its last encoding of this shard's sum lost (`ownerResiduals`), encodes the sum and sends it to every rank.
/// Every rank decodes those same bytes, so all ranks hold the same sum to the bit and their models stay identical.
/// With error feedback the rounding of one step is carried into the next instead of being lost (Seide et al.'s
/// 1-bit SGD, Karimireddy et al.'s EF-SGD); the residuals are state, saved in checkpoints.
///
/// Each rank sends 2(P − 1)/P of the encoded vector, where a ring all-reduce of float32 moves 2(P − 1)/P of four
/// bytes per value: half the bytes with bf16, about a quarter with int8. Encoding happens on the caller's thread
/// when a bucket starts; the owner's sum and the all-gather run on a serial queue of their own, so they travel
/// while the backward pass goes on, and `PendingReduction.wait()` blocks only for what has not arrived.
///
/// Thread use: `start`, `saveState` and `restoreState` run on the training thread, the phases on `queue`; the
/// worker residuals and the sequence belong to the first, the owner residuals and early messages to the second,
/// and `saveState`/`restoreState` first wait for the queue to be idle.
final class CompressedGradientReduction: @unchecked Sendable {
    /// Channels of the two phases, above every message site's (`MessageSite.channel`).
    static let scatterChannel = ChannelID(ChannelID.limit - 3)
    static let gatherChannel = ChannelID(ChannelID.limit - 2)

    let codec: GradientCodec
    private let channels: any MessageChannels
    private let rank: Int
    private let worldSize: Int
    private let random: CounterRandom
    /// `workerResiduals[bucket]`: the whole bucket's rounding loss of this rank's last encoding.
    private var workerResiduals: [Int: [Float]] = [:]
    /// `ownerResiduals[bucket]`: the rounding loss of this rank's last encoding of its shard's sum.
    private var ownerResiduals: [Int: [Float]] = [:]
    /// `contents[bucket]`: what bucket `bucket` held when its residuals were made (parameters and elements). A bucket
    /// that holds something else now (a run resumed with another cut of a weight into pieces) starts without them:
    /// a residual belongs to the values it was lost from.
    private var contents: [Int: String] = [:]
    /// Counts started reductions; stamps their messages, so a message out of order is caught, not summed.
    private var sequence = 0
    /// Phases run here, one reduction after another (messages on a channel arrive in the order they were sent).
    private let queue = DispatchQueue(label: "halo.gradient-reduction")
    /// Messages taken from a channel but belonging to a later reduction, per channel and peer (used on `queue`).
    private var early: [ChannelID: [[ChannelMessage]]] = [:]

    init(compression: GradientCompression, channels: any MessageChannels, rank: Int, worldSize: Int, seed: UInt64) {
        precondition(worldSize > 1, "a compressed reduction needs at least two ranks")
        codec = GradientCodec(compression)
        self.channels = channels
        self.rank = rank
        self.worldSize = worldSize
        random = CounterRandom(seed: seed)
        early = [Self.scatterChannel: Array(repeating: [], count: worldSize),
                 Self.gatherChannel: Array(repeating: [], count: worldSize)]
    }

    /// Rows `[start, end)` of shard `p` of a bucket of `count` values, in values.
    func shard(_ p: Int, count: Int) -> Range<Int> {
        let rows = GradientCodec.rows(count: count), width = GradientCodec.rowWidth
        return min(count, rows * p / worldSize * width)..<min(count, rows * (p + 1) / worldSize * width)
    }

    /// Starts the sum of `values`, bucket `bucket` of the step of `epoch` (collective: every rank starts the same
    /// buckets in the same order), whose values are `content` (e.g. "conv0.weight[0..<32768]"). Returns the
    /// reduction and the seconds spent encoding.
    func start(bucket: Int, content: String, epoch: Int, values: [Float]) throws -> (pending: any PendingReduction, encodeSeconds: Double, bytes: Int) {
        let watch = Stopwatch()
        let count = values.count
        let sameContent = contents[bucket] == content
        contents[bucket] = content
        // The gradient plus what this bucket's last encoding lost; each shard's values become, once encoded, what
        // this encoding loses (the new residual), so one array serves as both.
        var compensated = values
        if let residual = workerResiduals.removeValue(forKey: bucket), sameContent, residual.count == count {
            for i in 0..<count { compensated[i] += residual[i] }
        }
        var messages: [[UInt8]] = []
        try compensated.withUnsafeMutableBufferPointer { c in
            for p in 0..<worldSize {
                let range = shard(p, count: count)
                let bytes = codec.encode(UnsafeBufferPointer(UnsafeMutableBufferPointer(rebasing: c[range])),
                                         randomness: dither(epoch: epoch, bucket: bucket, phase: 0),
                                         firstRow: GradientCodec.rows(count: count) * rank + range.lowerBound / GradientCodec.rowWidth)
                var decoded = [Float](repeating: 0, count: range.count)
                try decoded.withUnsafeMutableBufferPointer { try codec.decode(bytes, into: $0) }
                for (i, d) in zip(range, decoded) { c[i] -= d }
                messages.append(bytes)
            }
        }
        workerResiduals[bucket] = compensated
        let stamp = sequence
        sequence += 1
        for p in 0..<worldSize where p != rank {
            _ = try channels.send(messages[p], stamp: stamp, to: p, on: Self.scatterChannel)
        }
        let pending = Pending()
        let own = messages[rank]
        queue.async { [self] in
            do {
                if !sameContent { ownerResiduals[bucket] = nil }
                pending.finish(.success(try finish(bucket: bucket, epoch: epoch, count: count, stamp: stamp, own: own)))
            } catch {
                pending.finish(.failure(error))
            }
        }
        let sent = messages.indices.reduce(0) { $1 == rank ? $0 : $0 + messages[$1].count }
        return (pending, watch.elapsed, sent)
    }

    /// The owner's sum and the all-gather (on `queue`).
    private func finish(bucket: Int, epoch: Int, count: Int, stamp: Int, own: [UInt8]) throws -> [Float] {
        let mine = shard(rank, count: count)
        var sum = ownerResiduals[bucket].flatMap { $0.count == mine.count ? $0 : nil } ?? Array(repeating: 0, count: mine.count)
        var contribution = [Float](repeating: 0, count: mine.count)
        for p in 0..<worldSize {
            let bytes = p == rank ? own : try take(from: p, on: Self.scatterChannel, stamp: stamp)
            try contribution.withUnsafeMutableBufferPointer { try codec.decode(bytes, into: $0) }
            for i in sum.indices { sum[i] += contribution[i] }
        }
        let encoded = sum.withUnsafeBufferPointer {
            codec.encode($0, randomness: dither(epoch: epoch, bucket: bucket, phase: 1),
                         firstRow: mine.lowerBound / GradientCodec.rowWidth)
        }
        for p in 0..<worldSize where p != rank {
            _ = try channels.send(encoded, stamp: stamp, to: p, on: Self.gatherChannel)
        }
        var result = [Float](repeating: 0, count: count)
        try result.withUnsafeMutableBufferPointer { out in
            for p in 0..<worldSize {
                let range = shard(p, count: count)
                let bytes = p == rank ? encoded : try take(from: p, on: Self.gatherChannel, stamp: stamp)
                try codec.decode(bytes, into: UnsafeMutableBufferPointer(rebasing: out[range]))
            }
        }
        for (i, total) in zip(sum.indices, result[mine]) { sum[i] -= total }
        ownerResiduals[bucket] = sum
        return result
    }

    /// The next message from `peer` on `channel`, which must carry `stamp` (on `queue`).
    private func take(from peer: Int, on channel: ChannelID, stamp: Int) throws -> [UInt8] {
        while early[channel]![peer].isEmpty {
            early[channel]![peer] = try channels.waitForMessages(from: peer, on: channel, clock: stamp)
        }
        let message = early[channel]![peer].removeFirst()
        guard message.stamp == stamp else {
            throw TransportError.invalidArgument(
                "gradient reduction: rank \(peer) sent reduction \(message.stamp) on \(channel) where rank \(rank) expected \(stamp)")
        }
        return message.bytes
    }

    /// The dither of int8 rows: the run's seed, the epoch, and a message site of the bucket and phase apart from
    /// every halo message's site (theirs are below 2³⁰).
    private func dither(epoch: Int, bucket: Int, phase: Int) -> QuantizationRandomness {
        QuantizationRandomness(random: random, epoch: UInt32(truncatingIfNeeded: epoch),
                               site: 1 << 30 | UInt32(truncatingIfNeeded: bucket) << 1 | UInt32(phase))
    }

    /// Waits until every reduction started has finished (their results are taken by `wait()`; this only makes
    /// sure the residuals are final), so the state can be saved.
    private func drain() { queue.sync {} }

    /// The residuals, for a checkpoint: buckets in order, each with its worker and owner residual, then each
    /// bucket's content in the same order.
    func saveState(into writer: inout ByteWriter) {
        drain()
        let buckets = Set(workerResiduals.keys).union(ownerResiduals.keys).sorted()
        writer.append(buckets.count)
        for bucket in buckets {
            writer.append(bucket)
            writer.append(elements: workerResiduals[bucket] ?? [])
            writer.append(elements: ownerResiduals[bucket] ?? [])
        }
        for bucket in buckets { writer.append(contents[bucket] ?? "") }
    }

    /// Takes back what `saveState` wrote.
    func restoreState(from reader: inout ByteReader) throws {
        drain()
        let count: Int = try reader.read()
        guard count >= 0, count <= reader.remaining else { throw CheckpointStateError("\(count) gradient residual buckets") }
        workerResiduals = [:]
        ownerResiduals = [:]
        contents = [:]
        var buckets: [Int] = []
        for _ in 0..<count {
            let bucket: Int = try reader.read()
            let worker: [Float] = try reader.readElements(), owner: [Float] = try reader.readElements()
            if !worker.isEmpty { workerResiduals[bucket] = worker }
            if !owner.isEmpty { ownerResiduals[bucket] = owner }
            buckets.append(bucket)
        }
        // Checkpoints written before contents were kept end here: their buckets' contents are unknown, so each
        // bucket starts its next sum without residuals.
        guard reader.remaining > 0 else { return }
        for bucket in buckets { contents[bucket] = try reader.read() as String }
    }

    /// The residuals, as gradients' kin (waits for the queue to be idle first).
    func tally(into tally: inout MemoryTally) {
        drain()
        for r in workerResiduals.values { tally.add(r, as: .gradients) }
        for r in ownerResiduals.values { tally.add(r, as: .gradients) }
    }

    /// A reduction whose result the queue fills in.
    private final class Pending: PendingReduction, @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var result: Result<[Float], any Error>?
        private(set) var completionTime: UInt64?

        func finish(_ outcome: Result<[Float], any Error>) {
            completionTime = DispatchTime.now().uptimeNanoseconds
            result = outcome
            done.signal()
        }

        /// Blocks until the queue has finished the reduction (and lets later calls through at once).
        func wait() throws -> [Float] {
            done.wait()
            done.signal()
            return try result!.get()
        }
    }
}
