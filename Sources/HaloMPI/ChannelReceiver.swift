import CMPI
import Foundation
import HaloTransport

/// The receiving half of the channels, run by the communication thread (wire format: ChannelSend.swift).
///
/// Each poll matches whatever channel messages have come in (`MPI_Improbe` for any source and tag on the channel
/// communicator) and receives each into a buffer of its own (`MPI_Imrecv` of the matched message: a matched probe,
/// so nothing else can receive it in between). Receives complete in any order, since a large message takes longer
/// than a small one behind it, so completed messages are handed to the inbox in *match* order per (sender,
/// channel), which is the order they were sent in.
final class ChannelReceiver {
    /// One channel message being received.
    private final class Incoming {
        let key: ChannelInbox.Key
        /// Received in pieces after a header (see the wire format).
        let chunked: Bool
        /// Stamp (whole messages), or stamp and payload length (the header of a large one).
        let header: UnsafeMutablePointer<Int64>
        var payload: [UInt8] = []
        /// The address of `payload`'s storage, which stays put while MPI writes into it: the array is not
        /// touched again until the message is complete.
        var payloadBase: UnsafeMutableRawPointer?
        /// Large messages: whether the header has arrived (and `payload` has its length).
        var headerArrived = false
        /// Large messages: payload bytes whose pieces have been matched.
        var matchedBytes = 0
        /// Posted receives not complete yet.
        var outstanding = 0

        init(key: ChannelInbox.Key, chunked: Bool) {
            self.key = key
            self.chunked = chunked
            header = .allocate(capacity: 2)
            header.initialize(repeating: 0, count: 2)
        }

        deinit {
            header.deallocate()
        }

        var isComplete: Bool {
            outstanding == 0 && (!chunked || (headerArrived && matchedBytes == payload.count))
        }

        func allocatePayload(_ count: Int) {
            payload = [UInt8](repeating: 0, count: count)
            payloadBase = count > 0 ? payload.withUnsafeMutableBytes { $0.baseAddress! } : nil
        }
    }

    /// A probed message not yet received.
    private struct Matched {
        var message: MPI_Message?
        var source: Int
        var tag: Int
        var count: Int
    }

    /// Whether to probe for new messages (once channels are in use, and while shutting down); receives already
    /// posted progress regardless.
    var pollingEnabled = false

    /// Messages matched and not yet delivered, in match order.
    private var pending: [Incoming] = []
    /// The posted receives and, per request, the message it belongs to and whether it is a large message's header.
    private var requests = RequestSet()
    private var owners: [(incoming: Incoming, isHeader: Bool)] = []
    /// Per source: the large message whose header has arrived and whose pieces are still to be matched; the next
    /// messages matched from that source are its pieces.
    private var assembling: [Int: Incoming] = [:]
    /// Per source: the large message whose header is still being received. Until it is there, the length of the
    /// message is unknown, so messages matched from that source after it (possibly its pieces) wait in `held`.
    private var headerPending: [Int: Incoming] = [:]
    private var held: [Int: [Matched]] = [:]
    /// Matches handled per poll before the engine gets to its other work.
    private let matchesPerPoll = 256

    /// Neither probing nor receiving: the engine may block until there is other work.
    var isIdle: Bool { !pollingEnabled && pending.isEmpty }

    /// Whether any matched message has not been delivered yet.
    var hasReceivesInFlight: Bool { !pending.isEmpty }

    /// Whether a large payload is coming in (the engine then sleeps less between polls).
    var isTransferring: Bool { pending.contains { $0.payload.count >= 256 << 10 } }

    /// Probes for new messages, tests the posted receives, and returns the messages that are complete and next
    /// in their stream, oldest first.
    func advance(_ link: MPILink) throws -> (progressed: Bool, delivered: [(key: ChannelInbox.Key, message: ChannelMessage)]) {
        var progressed = false
        if pollingEnabled {
            let comm = try link.channelCommunicator
            var status = MPI_Status()
            for _ in 0..<matchesPerPoll {
                var flag: Int32 = 0
                var message: MPI_Message? = halo_mpi_message_null()
                try mpiCheck(
                    MPI_Improbe(halo_mpi_any_source(), halo_mpi_any_tag(), comm, &flag, &message, &status),
                    "MPI_Improbe (channels)")
                guard flag != 0 else { break }
                var count: Int32 = 0
                try mpiCheck(MPI_Get_count(&status, link.byte, &count), "MPI_Get_count (channels)")
                guard count >= 0, count != halo_mpi_undefined() else {
                    throw TransportError.backend("channel message from rank \(status.MPI_SOURCE) has no byte count")
                }
                progressed = true
                try handle(
                    Matched(message: message, source: Int(status.MPI_SOURCE), tag: Int(status.MPI_TAG), count: Int(count)),
                    link: link)
            }
        }
        guard !pending.isEmpty else { return (progressed, []) }

        var headers: [Incoming] = []
        let completed = try requests.test { index in
            let owner = owners[index]
            owner.incoming.outstanding -= 1
            if owner.isHeader { headers.append(owner.incoming) }
        }
        if completed > 0 {
            progressed = true
            let kept = requests.compact()
            owners = kept.map { owners[$0] }
        }
        for incoming in headers { try headerArrived(incoming, link: link) }
        return (progressed, takeDeliverable())
    }

    /// Posts the receive for one matched message.
    private func handle(_ matched: Matched, link: MPILink) throws {
        let source = matched.source
        if headerPending[source] != nil {
            held[source, default: []].append(matched)
            return
        }
        if let incoming = assembling[source] {
            // The next piece of a large message.
            guard matched.tag == Int(ChannelID.chunkedTag(channel: incoming.key.channel)), matched.count > 0,
                  incoming.matchedBytes + matched.count <= incoming.payload.count, let base = incoming.payloadBase
            else {
                throw TransportError.backend(
                    "channel message from rank \(source): piece of \(matched.count) bytes (tag \(matched.tag)) does not "
                        + "fit the message on channel \(incoming.key.channel)")
            }
            try receive(matched, into: base + incoming.matchedBytes, for: incoming, isHeader: false, link: link)
            incoming.matchedBytes += matched.count
            if incoming.matchedBytes == incoming.payload.count { assembling[source] = nil }
            return
        }
        let limit = ChannelID.limit
        if (0..<limit).contains(matched.tag) {
            // A whole message: stamp and payload straight into their own buffers.
            guard matched.count >= channelStampBytes else {
                throw TransportError.backend(
                    "channel message from rank \(source) on channel \(matched.tag) has \(matched.count) bytes, "
                        + "shorter than its stamp")
            }
            let incoming = Incoming(key: .init(peer: source, channel: matched.tag), chunked: false)
            incoming.allocatePayload(matched.count - channelStampBytes)
            var blocks = [(address: UnsafeMutableRawPointer(incoming.header), bytes: channelStampBytes)]
            if let base = incoming.payloadBase { blocks.append((base, incoming.payload.count)) }
            var message = matched.message
            try withBlocksDatatype(blocks, link: link) { datatype in
                try requests.post("MPI_Imrecv from rank \(source) on channel \(matched.tag)") {
                    MPI_Imrecv(halo_mpi_bottom(), 1, datatype, &message, $0)
                }
            }
            incoming.outstanding += 1
            owners.append((incoming, false))
            pending.append(incoming)
        } else if (limit..<2 * limit).contains(matched.tag) {
            guard matched.count == channelHeaderBytes else {
                throw TransportError.backend(
                    "channel message header from rank \(source) has \(matched.count) bytes, not \(channelHeaderBytes)")
            }
            let incoming = Incoming(key: .init(peer: source, channel: matched.tag - limit), chunked: true)
            try receive(matched, into: UnsafeMutableRawPointer(incoming.header), for: incoming, isHeader: true, link: link)
            headerPending[source] = incoming
            pending.append(incoming)
        } else {
            throw TransportError.backend("channel message from rank \(source) with unknown tag \(matched.tag)")
        }
    }

    /// `MPI_Imrecv` of `matched.count` bytes at `address`.
    private func receive(
        _ matched: Matched, into address: UnsafeMutableRawPointer, for incoming: Incoming, isHeader: Bool,
        link: MPILink
    ) throws {
        var message = matched.message
        try requests.post("MPI_Imrecv from rank \(matched.source) on channel \(incoming.key.channel)") {
            MPI_Imrecv(address, Int32(matched.count), link.byte, &message, $0)
        }
        incoming.outstanding += 1
        owners.append((incoming, isHeader))
    }

    /// A large message's header is in: its length is known, so its pieces (and whatever came after them) can be
    /// received.
    private func headerArrived(_ incoming: Incoming, link: MPILink) throws {
        let source = incoming.key.peer
        let length = Int64(littleEndian: incoming.header[1])
        guard length >= 0, length <= Int64(Int.max) else {
            throw TransportError.backend("channel message header from rank \(source) announces \(length) bytes")
        }
        incoming.allocatePayload(Int(length))
        incoming.headerArrived = true
        headerPending[source] = nil
        if length > 0 { assembling[source] = incoming }
        let waiting = held.removeValue(forKey: source) ?? []
        for matched in waiting { try handle(matched, link: link) }
    }

    /// Removes and returns the complete messages that no earlier message of their stream is still ahead of.
    private func takeDeliverable() -> [(key: ChannelInbox.Key, message: ChannelMessage)] {
        var delivered: [(key: ChannelInbox.Key, message: ChannelMessage)] = []
        var blocked = Set<ChannelInbox.Key>()
        var now: UInt64?
        pending.removeAll { incoming in
            guard !blocked.contains(incoming.key), incoming.isComplete else {
                blocked.insert(incoming.key)
                return false
            }
            let arrival = now ?? DispatchTime.now().uptimeNanoseconds
            now = arrival
            let stamp = Int(Int64(littleEndian: incoming.header[0]))
            delivered.append((incoming.key, ChannelMessage(stamp: stamp, bytes: incoming.payload, arrivalTime: arrival)))
            return true
        }
        return delivered
    }
}
