import HaloTensor

/// The aggregation operator one rank applies, with its transpose for the backward pass.
///
/// Rows are the rank's inner nodes, numbered central first (`0..<centralCount`: no in-neighbour outside the
/// rank) then marginal; columns are the inner nodes followed by the halo nodes (`innerCount..<innerCount+haloCount`).
/// Central rows read only inner columns, which is what lets them be aggregated while halo rows are in flight.
/// A single-process run is the special case with every node central and no halo.
public struct PropagationOperator: Sendable {
    public let aggregation: Aggregation
    /// `innerCount × (innerCount + haloCount)`.
    public let forward: SparseMatrix
    /// `forwardᵀ`, `(innerCount + haloCount) × innerCount`: its rows `innerCount...` give the gradient owed to each
    /// halo node's owner.
    public let backward: SparseMatrix
    public let innerCount: Int
    public let centralCount: Int

    public var haloCount: Int { forward.cols - innerCount }
    public var marginalCount: Int { innerCount - centralCount }

    public init(aggregation: Aggregation, forward: SparseMatrix, innerCount: Int, centralCount: Int) {
        precondition(forward.rows == innerCount && forward.cols >= innerCount, "operator must be inner × (inner + halo)")
        precondition(centralCount >= 0 && centralCount <= innerCount, "central count \(centralCount) outside 0...\(innerCount)")
        self.aggregation = aggregation
        self.forward = forward
        self.backward = forward.transposed()
        self.innerCount = innerCount
        self.centralCount = centralCount
    }

    /// The operator of a whole graph on one rank: every node inner and central, no halo.
    public static func wholeGraph(_ graph: Graph, _ aggregation: Aggregation) -> PropagationOperator {
        PropagationOperator(
            aggregation: aggregation, forward: graph.aggregationOperator(aggregation),
            innerCount: graph.nodeCount, centralCount: graph.nodeCount)
    }
}

extension PropagationOperator {
    /// Counts the operator's CSR arrays (forward and its transpose) as graph structure.
    public func tally(into tally: inout MemoryTally) {
        tally.add(forward, as: .graphStructure)
        tally.add(backward, as: .graphStructure)
    }
}
