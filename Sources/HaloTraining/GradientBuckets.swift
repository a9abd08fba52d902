import Dispatch
import HaloNN

/// One training step's gradient all-reduce, in buckets: each layer's parameter gradients start their sum over
/// ranks as soon as the backward pass has finished them, so the upper layers' reduction travels while the lower
/// layers compute (as data-parallel trainers bucket theirs). `finish()` waits for all of them and writes the sums
/// back, before the optimiser step.
///
/// In a GNN the first layer usually holds most of the parameters (features × hidden) and is finished last, so a
/// layer's weight can also arrive in pieces of rows (`start(rows:of:)`, `WeightGradientPieces`), each summed as soon
/// as backward has formed it; the layer's bucket then leaves that weight out. The step's report separates the
/// blocked time from the reduction's span. With a `compression`, buckets travel in its format
/// (`CompressedGradientReduction`), numbered in the order they start, which is the same in every step.
///
/// Without `overlapping`, `start` only queues a bucket and `finish()` starts them all, in the same order, before it
/// waits: the reduction after the backward pass, for measuring what the overlap hides.
final class GradientBuckets {
    private let collectives: any Collectives
    private let compression: CompressedGradientReduction?
    private let epoch: Int
    private let overlapping: Bool
    /// A bucket's contents: consecutive elements of parameters' gradients (whole ones, or a piece of rows).
    private typealias Bucket = [(parameter: Parameter, elements: Range<Int>)]
    private var queued: [Bucket] = []
    private var inFlight: [(bucket: Bucket, pending: any PendingReduction)] = []
    /// Parameters whose gradient goes in pieces: whole-parameter buckets leave them out.
    private var sentInPieces: Set<ObjectIdentifier> = []
    private var firstStart: UInt64?

    init(collectives: any Collectives, compression: CompressedGradientReduction? = nil, epoch: Int = 0,
         overlapping: Bool = true) {
        self.collectives = collectives
        self.compression = compression
        self.epoch = epoch
        self.overlapping = overlapping
    }

    /// Starts the sum of `parameters`' gradients over the ranks (collective: every rank starts the same buckets
    /// in the same order, which the layers' fixed order gives), or queues it when not `overlapping`.
    /// Parameters already sent in pieces (`start(rows:of:)`) are left out.
    func start(_ parameters: [Parameter]) throws {
        let whole = parameters.filter { !sentInPieces.contains(ObjectIdentifier($0)) }
        try start(whole.map { ($0, 0..<$0.count) })
    }

    /// Starts the sum of rows `rows` of `parameter`'s gradient (collective, like `start(_:)`). Once a parameter has
    /// gone in pieces, the pieces must cover all its rows: `start(_:)` leaves it out from then on.
    func start(rows: Range<Int>, of parameter: Parameter) throws {
        sentInPieces.insert(ObjectIdentifier(parameter))
        let columns = parameter.gradient.cols
        try start([(parameter, (rows.lowerBound * columns)..<(rows.upperBound * columns))])
    }

    private func start(_ bucket: Bucket) throws {
        guard collectives.worldSize > 1, !bucket.isEmpty else { return }
        if overlapping { try begin(bucket) } else { queued.append(bucket) }
    }

    private func begin(_ bucket: Bucket) throws {
        var flat = [Float]()
        flat.reserveCapacity(bucket.reduce(0) { $0 + $1.elements.count })
        for (p, elements) in bucket { flat.append(contentsOf: p.gradient.storage[elements]) }
        if firstStart == nil { firstStart = DispatchTime.now().uptimeNanoseconds }
        if let compression {
            let content = bucket.map { "\($0.parameter.name)[\($0.elements.lowerBound)..<\($0.elements.upperBound)]" }
                .joined(separator: " ")
            let started = try compression.start(bucket: inFlight.count, content: content, epoch: epoch, values: flat)
            var cost = CommunicationStatistics()
            cost.quantizeSeconds = started.encodeSeconds
            // Like the float32 reduction's count: one copy of the gradients per rank, as encoded.
            cost.allReduceBytes = compression.codec.encodedSize(count: flat.count)
            collectives.record(cost)
            let pending = started.pending
            inFlight.append((bucket, TimedReduction(waiting: pending.wait, completion: { pending.completionTime },
                                                    countedIn: collectives)))
        } else {
            inFlight.append((bucket, try collectives.startAllReduceSum(flat)))
        }
    }

    /// Waits for every bucket and replaces each gradient by its sum over ranks. Returns the reduction's span,
    /// from the first bucket's start to the last one's completion, in seconds (nil when the transport does not
    /// report completion times, or nothing was reduced).
    func finish() throws -> Double? {
        for bucket in queued { try begin(bucket) }
        queued.removeAll()
        sentInPieces.removeAll()
        var lastCompletion: UInt64?
        var spanKnown = true
        for (bucket, pending) in inFlight {
            let sums = try pending.wait()
            var offset = 0
            for (p, elements) in bucket {
                p.gradient.storage.withUnsafeMutableBufferPointer { g in
                    for i in elements { g[i] = sums[offset + i - elements.lowerBound] }
                }
                offset += elements.count
            }
            if let done = pending.completionTime { lastCompletion = max(lastCompletion ?? done, done) } else { spanKnown = false }
        }
        inFlight.removeAll()
        defer { firstStart = nil }
        guard spanKnown, let firstStart, let lastCompletion, lastCompletion >= firstStart else { return nil }
        return Double(lastCompletion - firstStart) / 1e9
    }
}
