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
}

/// The collectives of a run with one rank: every reduction is the identity.
public final class SingleRank: Collectives {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func allReduceSum(_ values: inout [Float]) throws {}
    public func allReduceSum(_ values: inout [Double]) throws {}
}
