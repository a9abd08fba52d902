/// The communication a distributed training run needs, independent of how bytes move.
///
/// One `Transport` object is one rank's endpoint. Every operation is collective: all ranks call it, in the same
/// order. Implementations: `LocalTransport` (ranks are threads of one process) and `MPITransport` (OpenMPI).
///
/// Failure contract: if any rank fails (throws, cannot load its data, is killed), every other rank's pending and
/// future operations end with `TransportError.peerFailed` (or the process is ended by the launcher) within
/// seconds: never a hang.
public protocol Transport: MessageChannels, Sendable {
    var rank: Int { get }
    var worldSize: Int { get }

    /// Personalised all-to-all: `messages[p]` goes to rank `p` (may be empty). Starts the transfer and returns at
    /// once; the returned handle's `wait()` gives `received[p]`, the message from rank `p`. The message to oneself
    /// is delivered as well. Progress happens while the caller computes.
    func startAllToAll(_ messages: [[UInt8]]) throws -> any PendingAllToAll

    /// Element-wise sum over all ranks, result on every rank. Same length on every rank.
    func allReduceSum(_ values: inout [Float]) throws
    func allReduceSum(_ values: inout [Double]) throws

    /// Starts an element-wise sum over all ranks of `values` and returns at once; the handle's `wait()` gives the
    /// sum. Collective like `allReduceSum`: every rank starts the same reductions in the same order. Several may be
    /// in flight, and other operations may be called while they are (training starts one per layer during the
    /// backward pass and waits for them all before the optimiser step).
    func startAllReduceSum(_ values: [Float]) throws -> any PendingAllReduce

    /// Whether each element's sum is the same whatever vector it travels in (default: with at most two ranks).
    var sumIsIndependentOfVectorLayout: Bool { get }

    /// Replaces `bytes` on every rank with root's `bytes`.
    func broadcast(_ bytes: inout [UInt8], root: Int) throws

    /// Returns when every rank has called it.
    func barrier() throws

    /// Reports this rank's failure to the others (so they stop waiting) with a reason they can print.
    func fail(reason: String)
}

extension Transport {
    /// Whether each element's sum (`allReduceSum`, `startAllReduceSum`) comes out the same whatever vector it travels
    /// in (its length, its place in it): true when every element is summed in one fixed order, and with two ranks,
    /// where either order gives the same bits (`a + b == b + a`); with more, MPI's algorithm (and with it the
    /// order) depends on the vector's length. Training cuts a gradient by the measured link only where this holds, so the cut never
    /// changes the model.
    public var sumIsIndependentOfVectorLayout: Bool { worldSize <= 2 }
}

// Point-to-point, non-collective messages (`send`, `takeArrived`, `waitForMessages`) come from `MessageChannels`.

/// A sum over all ranks in flight.
public protocol PendingAllReduce: AnyObject {
    /// Blocks until the reduction is complete; returns the sum (the same on every rank).
    func wait() throws -> [Float]

    /// When the reduction completed (`DispatchTime` uptime nanoseconds), once it has and if the transport knows.
    var completionTime: UInt64? { get }
}

/// An all-to-all in flight.
public protocol PendingAllToAll: AnyObject {
    /// Blocks until every message to this rank has arrived; returns them indexed by sender.
    func wait() throws -> [[UInt8]]

    /// The message from `peer` if it has arrived, without blocking (nil: not yet).
    func poll(peer: Int) throws -> [UInt8]?

    /// When the last message to this rank arrived (`DispatchTime` uptime nanoseconds), once known. Together with
    /// the start time it gives the transfer's duration, of which the caller's blocked `wait` is the unhidden part.
    var completionTime: UInt64? { get }
}

extension Transport {
    /// Blocking all-to-all.
    public func allToAll(_ messages: [[UInt8]]) throws -> [[UInt8]] {
        try startAllToAll(messages).wait()
    }
}

/// Why a collective operation could not complete.
public enum TransportError: Error, CustomStringConvertible, Equatable {
    /// Another rank failed; its reason is given.
    case peerFailed(rank: Int, reason: String)
    /// Arguments that differ between ranks or are malformed (e.g. wrong message count).
    case invalidArgument(String)
    /// The underlying library reported an error.
    case backend(String)

    public var description: String {
        switch self {
        case .peerFailed(let rank, let reason): return "rank \(rank) failed: \(reason)"
        case .invalidArgument(let what): return "invalid collective call: \(what)"
        case .backend(let what): return "transport error: \(what)"
        }
    }
}
