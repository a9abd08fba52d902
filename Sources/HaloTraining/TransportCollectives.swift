import HaloTransport

/// Training's collectives over a `Transport`, timing and counting what they move.
public final class TransportCollectives: Collectives {
    private let transport: any Transport
    public var statistics = CommunicationStatistics()

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
}
