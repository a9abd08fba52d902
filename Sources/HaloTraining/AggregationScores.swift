import HaloGraph
import HaloPartition

/// How strongly each halo row of a rank enters that rank's aggregation: AdaQP's α, which scales the variance a
/// quantized message adds to the layer's output (`algorithms.md` §5).
///
/// With global degrees `d` (self loop included), for a halo node `u` and the inner nodes `v` it points to:
/// - forward (the row `u` aggregated into its out-neighbours): GCN `Σ_v d_in(v)^-½ d_out(u)^-½`, mean `Σ_v 1/d_in(v)`
///   — exactly the sum of `u`'s column of the forward operator;
/// - backward (the gradient of `u` sent back to its owner): GCN `Σ_v d_out(v)^-½ d_in(u)^-½`, mean `Σ_v 1/d_out(v)`.
/// Both are computed by the rank that holds `u` as a halo node, in halo order.
public struct AggregationScores: Sendable, Equatable {
    public var forward: [Float]
    public var backward: [Float]

    public init(part: Part, aggregation: Aggregation) {
        let inner = part.innerCount
        var forward = [Float](repeating: 0, count: part.haloCount)
        var backward = [Float](repeating: 0, count: part.haloCount)
        let dIn = part.degrees.inDegrees, dOut = part.degrees.outDegrees
        for v in 0..<inner {
            for e in part.inPointers[v]..<part.inPointers[v + 1] {
                let u = Int(part.inSources[e])
                guard u >= inner else { continue }
                switch aggregation {
                case .gcn:
                    forward[u - inner] += 1 / (Float(dIn[v]).squareRoot() * Float(dOut[u]).squareRoot())
                    backward[u - inner] += 1 / (Float(dOut[v]).squareRoot() * Float(dIn[u]).squareRoot())
                case .mean:
                    forward[u - inner] += 1 / Float(dIn[v])
                    backward[u - inner] += 1 / Float(dOut[v])
                }
            }
        }
        self.forward = forward
        self.backward = backward
    }
}
