import HaloTensor

/// How a graph layer obtains the rows of its halo nodes and returns their gradients to their owners.
///
/// The layer owns the arithmetic; the exchange owns the messages. Each call takes an `overlapping` closure: the
/// work that does not depend on remote data (central-node aggregation forward, inner-column gradients backward).
/// A synchronous exchange runs it after the messages arrived; an overlapping one runs it while they are in
/// flight; a pipelined one may fill the halo with rows from an earlier epoch. The layer's code is the same for all.
public protocol BoundaryExchange: AnyObject {
    /// Forward. `rows` has the layer's inner rows filled and `haloCount` rows after them to fill with the halo
    /// nodes' rows. `overlapping(rows)` may only read the inner rows.
    func exchangeForward(
        _ layer: LayerIndex, rows: inout Matrix, context: StepContext, overlapping: (Matrix) -> Void
    ) throws

    /// Backward. `haloGradient` holds the gradient with respect to each halo row; the owners add what they
    /// receive into `innerGradient` after `overlapping(&innerGradient)` has computed the local part.
    func exchangeBackward(
        _ layer: LayerIndex, haloGradient: Matrix, innerGradient: inout Matrix, context: StepContext,
        overlapping: (inout Matrix) -> Void
    ) throws

    /// Whether a layer may exchange its rows in column blocks (`GraphConvolution.columnBlockCount`): one call per
    /// block, each with a block's columns. True where a message's content does not depend on how its row is cut:
    /// not for exchanges that cache whole rows between epochs or adapt widths to what a site sent before.
    var acceptsColumnBlocks: Bool { get }

    /// Whether rows travel between ranks at all. Without peers a layer may skip the exchange and form its
    /// backward pass a block of rows at a time (`GraphConvolution.backward`), which needs no halo gradient.
    var crossesRanks: Bool { get }
}

extension BoundaryExchange {
    public var acceptsColumnBlocks: Bool { false }
    public var crossesRanks: Bool { true }
}

/// The exchange of a single-rank run: there are no halo nodes, so nothing is sent and the local work is all.
public final class NoBoundaryExchange: BoundaryExchange {
    public init() {}

    public var acceptsColumnBlocks: Bool { true }
    public var crossesRanks: Bool { false }

    public func exchangeForward(
        _ layer: LayerIndex, rows: inout Matrix, context: StepContext, overlapping: (Matrix) -> Void
    ) throws {
        overlapping(rows)
    }

    public func exchangeBackward(
        _ layer: LayerIndex, haloGradient: Matrix, innerGradient: inout Matrix, context: StepContext,
        overlapping: (inout Matrix) -> Void
    ) throws {
        precondition(haloGradient.rows == 0, "a single-rank exchange has no halo rows")
        overlapping(&innerGradient)
    }
}
