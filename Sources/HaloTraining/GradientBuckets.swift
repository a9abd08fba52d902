import Dispatch
import HaloNN

/// One training step's gradient all-reduce, a bucket per layer: each layer's parameter gradients start their sum
/// over ranks as soon as the backward pass has finished them, so the upper layers' reduction travels while the
/// lower layers compute (as data-parallel trainers bucket theirs). `finish()` waits for all of them and writes the
/// sums back, before the optimiser step.
///
/// In a GNN the first layer usually holds most of the parameters (features × hidden) and is finished last, so the
/// share this hides is the upper layers'; the step's report separates the blocked time from the reduction's span.
/// With a `compression`, buckets travel in its format (`CompressedGradientReduction`), numbered in the order they
/// start, which is the same in every step.
///
/// Without `overlapping`, `start` only queues a bucket and `finish()` starts them all, in the same order, before it
/// waits: the reduction after the backward pass, for measuring what the overlap hides.
final class GradientBuckets {
    private let collectives: any Collectives
    private let compression: CompressedGradientReduction?
    private let epoch: Int
    private let overlapping: Bool
    private var queued: [[Parameter]] = []
    private var inFlight: [(parameters: [Parameter], pending: any PendingReduction)] = []
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
    func start(_ parameters: [Parameter]) throws {
        guard collectives.worldSize > 1, !parameters.isEmpty else { return }
        if overlapping { try begin(parameters) } else { queued.append(parameters) }
    }

    private func begin(_ parameters: [Parameter]) throws {
        var flat = [Float]()
        flat.reserveCapacity(parameters.reduce(0) { $0 + $1.count })
        for p in parameters { flat.append(contentsOf: p.gradient.storage) }
        if firstStart == nil { firstStart = DispatchTime.now().uptimeNanoseconds }
        if let compression {
            let started = try compression.start(bucket: inFlight.count, epoch: epoch, values: flat)
            var cost = CommunicationStatistics()
            cost.quantizeSeconds = started.encodeSeconds
            // Like the float32 reduction's count: one copy of the gradients per rank, as encoded.
            cost.allReduceBytes = compression.codec.encodedSize(count: flat.count)
            collectives.record(cost)
            let pending = started.pending
            inFlight.append((parameters, TimedReduction(waiting: pending.wait, completion: { pending.completionTime },
                                                        countedIn: collectives)))
        } else {
            inFlight.append((parameters, try collectives.startAllReduceSum(flat)))
        }
    }

    /// Waits for every bucket and replaces each gradient by its sum over ranks. Returns the reduction's span,
    /// from the first bucket's start to the last one's completion, in seconds (nil when the transport does not
    /// report completion times, or nothing was reduced).
    func finish() throws -> Double? {
        for parameters in queued { try begin(parameters) }
        queued.removeAll()
        var lastCompletion: UInt64?
        var spanKnown = true
        for (parameters, pending) in inFlight {
            let sums = try pending.wait()
            var offset = 0
            for p in parameters {
                p.gradient.storage.withUnsafeMutableBufferPointer { g in
                    for i in g.indices { g[i] = sums[offset + i] }
                }
                offset += p.count
            }
            if let done = pending.completionTime { lastCompletion = max(lastCompletion ?? done, done) } else { spanKnown = false }
        }
        inFlight.removeAll()
        defer { firstStart = nil }
        guard spanKnown, let firstStart, let lastCompletion, lastCompletion >= firstStart else { return nil }
        return Double(lastCompletion - firstStart) / 1e9
    }
}
