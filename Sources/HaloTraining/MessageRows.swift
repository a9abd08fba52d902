import HaloPartition

/// The global node ids of the rows of every message a rank sends and receives, in message order.
///
/// A row's width may depend only on things both ends know; the global id of the node it belongs to is one of them.
public struct MessageRows: Sendable {
    /// Per direction, per peer: the nodes of the rows this rank sends to the peer.
    public let sent: [MessageDirection: [[Int32]]]
    /// Per direction, per peer: the nodes of the rows this rank receives from the peer.
    public let received: [MessageDirection: [[Int32]]]

    public init(part: Part) {
        let inner = part.sendLists.map { $0.map { part.innerGlobalIDs[Int($0)] } }
        let halo = part.haloRanges.map { Array(part.haloGlobalIDs[$0]) }
        // Forward: our boundary rows go out, halo rows come in; backward: the reverse.
        sent = [.forward: inner, .backward: halo]
        received = [.forward: halo, .backward: inner]
    }
}
