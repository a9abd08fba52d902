import HaloTransport

/// The collective operations training needs across ranks: summing weight gradients and metric counts.
///
/// Transports (in-process threads, MPI) provide implementations; a single-process run uses `SingleRank`.
public protocol Collectives: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// Element-wise sum over all ranks, result on every rank.
    func allReduceSum(_ values: inout [Float]) throws
    /// Element-wise sum over all ranks in double precision (counts and losses).
    func allReduceSum(_ values: inout [Double]) throws
    /// Starts an element-wise sum over all ranks and returns at once (collective: every rank starts the same
    /// reductions in the same order).
    func startAllReduceSum(_ values: [Float]) throws -> any PendingReduction
    /// Every rank's `bytes`, in rank order, on every rank (evaluation scores that need all of them, e.g. ROC-AUC).
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
    /// What the collectives cost since the last call, then reset.
    func takeStatistics() -> CommunicationStatistics
    /// The transport's point-to-point channels, for reductions in a wire format of their own
    /// (`CompressedGradientReduction`); nil with one rank.
    var channels: (any MessageChannels)? { get }
    /// Adds the cost of such a reduction to what `takeStatistics` reports.
    func record(_ cost: CommunicationStatistics)
}

extension Collectives {
    /// Every rank's `values` (the same count on every rank), by rank, on every rank. One all-reduce of a slot per
    /// rank that only that rank fills: each sum is one rank's numbers plus zeros, so every rank gets them exactly,
    /// and decisions taken from them are the same on every rank.
    func valuesOfEveryRank(_ values: [Double]) throws -> [[Double]] {
        let n = values.count
        var slots = [Double](repeating: 0, count: worldSize * n)
        slots.replaceSubrange((rank * n)..<((rank + 1) * n), with: values)
        try allReduceSum(&slots)
        return (0..<worldSize).map { Array(slots[($0 * n)..<(($0 + 1) * n)]) }
    }
}

/// A reduction started by `Collectives.startAllReduceSum`.
public protocol PendingReduction: AnyObject {
    /// Blocks until the sum is there; returns it.
    func wait() throws -> [Float]
    /// When the reduction completed (`DispatchTime` uptime nanoseconds), once known.
    var completionTime: UInt64? { get }
}

/// A reduction in flight whose `wait()` adds the time it blocked to `collectives`' all-reduce seconds (the part
/// of the reduction that computation did not hide), for either kind of reduction: the transport's own and the
/// compressed one over channels.
final class TimedReduction: PendingReduction {
    private let waitForSum: () throws -> [Float]
    private let completion: () -> UInt64?
    private let collectives: any Collectives

    init(waiting: @escaping () throws -> [Float], completion: @escaping () -> UInt64?, countedIn collectives: any Collectives) {
        waitForSum = waiting
        self.completion = completion
        self.collectives = collectives
    }

    func wait() throws -> [Float] {
        let watch = Stopwatch()
        defer {
            var cost = CommunicationStatistics()
            cost.allReduceSeconds = watch.elapsed
            collectives.record(cost)
        }
        return try waitForSum()
    }

    var completionTime: UInt64? { completion() }
}

/// The collectives of a run with one rank: every reduction is the identity.
public final class SingleRank: Collectives {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func allReduceSum(_ values: inout [Float]) throws {}
    public func allReduceSum(_ values: inout [Double]) throws {}
    public func startAllReduceSum(_ values: [Float]) throws -> any PendingReduction { Identity(values) }
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func takeStatistics() -> CommunicationStatistics { CommunicationStatistics() }
    public var channels: (any MessageChannels)? { nil }
    public func record(_ cost: CommunicationStatistics) {}

    private final class Identity: PendingReduction {
        let values: [Float]
        init(_ values: [Float]) { self.values = values }
        func wait() throws -> [Float] { values }
        var completionTime: UInt64? { nil }
    }
}
