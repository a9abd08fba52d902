import HaloTransport

/// Training's collectives over a `Transport`, timing and counting what they move.
///
/// `allReduceSeconds` counts only the time this rank was blocked: inside a blocking reduction, or in `wait()` of
/// one it started earlier (a reduction that completed while the rank computed costs nothing there).
public final class TransportCollectives: Collectives {
    private let transport: any Transport
    private var statistics = CommunicationStatistics()

    public init(_ transport: any Transport) { self.transport = transport }

    public var rank: Int { transport.rank }
    public var worldSize: Int { transport.worldSize }

    public func allReduceSum(_ values: inout [Float]) throws {
        let watch = Stopwatch()
        defer { statistics.allReduceSeconds += watch.elapsed; statistics.allReduceBytes += values.count * 4 }
        try transport.allReduceSum(&values)
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        let watch = Stopwatch()
        defer { statistics.allReduceSeconds += watch.elapsed; statistics.allReduceBytes += values.count * 8 }
        try transport.allReduceSum(&values)
    }

    public func startAllReduceSum(_ values: [Float]) throws -> any PendingReduction {
        statistics.allReduceBytes += values.count * 4
        let pending = try transport.startAllReduceSum(values)
        return TimedReduction(waiting: pending.wait, completion: { pending.completionTime }, countedIn: self)
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try transport.allToAll(Array(repeating: bytes, count: worldSize))
    }

    public var channels: (any MessageChannels)? { transport }

    public func record(_ cost: CommunicationStatistics) { statistics = statistics + cost }

    public func takeStatistics() -> CommunicationStatistics {
        defer { statistics = CommunicationStatistics() }
        return statistics
    }
}
