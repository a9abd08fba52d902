import HaloAssignment
import HaloTransport

/// Measures every link's time model `t(bytes) = a·bytes + c` through the transport itself, as AdaQP's assignment
/// needs it (`algorithms.md` §5).
///
/// In round r every rank sends one message of each probe size to rank (rank + r) mod P and times the all-to-all;
/// its own outgoing link's samples are fitted locally, then one all-reduce gives every rank every link's model.
public enum LinkProbe {
    public static let defaultSizes = [4 << 10, 64 << 10, 256 << 10, 1 << 20]

    public static func measure(_ transport: any Transport, sizes: [Int] = defaultSizes, repetitions: Int = 3) throws -> LinkCostModel {
        let p = transport.worldSize, rank = transport.rank
        guard p > 1 else { return LinkCostModel(worldSize: 1, uniform: .zero) }
        var flat = [Double](repeating: 0, count: 2 * p * p)
        try transport.barrier()
        for round in 1..<p {
            let destination = (rank + round) % p
            var samples: [(bytes: Int, seconds: Double)] = []
            for size in sizes {
                var messages = [[UInt8]](repeating: [], count: p)
                messages[destination] = [UInt8](repeating: 0xA5, count: size)
                _ = try transport.allToAll(messages)   // warm-up: connections, buffers
                for _ in 0..<max(1, repetitions) {
                    let watch = Stopwatch()
                    _ = try transport.allToAll(messages)
                    samples.append((size, watch.elapsed))
                }
            }
            let cost = LinkCost.fit(samples: samples)
            flat[2 * (rank * p + destination)] = cost.secondsPerByte
            flat[2 * (rank * p + destination) + 1] = cost.latency
        }
        try transport.allReduceSum(&flat)
        return LinkCostModel(worldSize: p, costs: (0..<(p * p)).map {
            LinkCost(secondsPerByte: flat[2 * $0], latency: flat[2 * $0 + 1])
        })
    }

    /// The time model of a gradient sum through the transport, `latency + values · secondsPerValue`, fitted as a
    /// link's line is (`LinkCost.fit`, values in place of bytes): float32 all-reduces of each of `counts` values,
    /// timed on every rank after a warm-up, each rank's fastest of `repetitions`, then the slowest rank's. The same
    /// on every rank.
    public static func measureSum(_ transport: any Transport, counts: [Int], repetitions: Int = 3) throws -> (latency: Double, secondsPerValue: Double) {
        guard transport.worldSize > 1, !counts.isEmpty else { return (0, 0) }
        var times = [Double](repeating: 0, count: counts.count)
        for (i, count) in counts.enumerated() {
            var values = [Float](repeating: 1, count: max(count, 1))
            try transport.allReduceSum(&values)   // warm-up: buffers, the algorithm's first call
            var fastest = Double.infinity
            for _ in 0..<max(1, repetitions) {
                try transport.barrier()
                let watch = Stopwatch()
                try transport.allReduceSum(&values)
                fastest = min(fastest, watch.elapsed)
            }
            times[i] = fastest
        }
        let everyRank = try TransportCollectives(transport).valuesOfEveryRank(times)
        // A link's line fitted to values instead of bytes: its "seconds per byte" is seconds per value.
        let line = LinkCost.fit(samples: counts.enumerated().map { i, count in
            (max(count, 1), everyRank.map { $0[i] }.max()!)
        })
        return (line.latency, line.secondsPerByte)
    }
}
