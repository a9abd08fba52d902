import CMPI
import HaloTransport

// Channel messages on the wire. They travel on the engine's second communicator, so the receiver can probe it for
// any source and tag without ever matching a piece of a collective operation. The tag tells what a message is:
//
// - tag = channel (`< ChannelID.limit`): a whole channel message: the stamp (8 bytes, little-endian) followed by
//   the payload. Sender and receiver describe the two parts with a datatype over both buffers, so the payload is
//   neither copied into a stamped buffer on the way out nor out of one on the way in.
// - tag = channel + `ChannelID.limit`: a message too large for one MPI call (more than `maxChunkBytes` with its
//   stamp): first a 16-byte header (stamp, payload length; little-endian `Int64`s), then the payload in pieces of at
//   most `maxChunkBytes`, all with that tag.
//
// A sender's messages to one receiver are posted by its communication thread one after the other, the pieces of a
// large one back to back, and MPI matches messages from one source on one communicator in the order they were sent
// whenever they all match the receive (here: any source, any tag). So the receiver meets, from each source, every
// message in send order and a large message's pieces right after its header.

extension ChannelID {
    /// The tag of the header and pieces of a message that does not fit one MPI call.
    static func chunkedTag(channel: Int) -> Int32 { Int32(channel + limit) }

    /// Whether `tagUpperBound` leaves room for `chunkedTag` of every channel.
    static func chunkingFits(tagUpperBound: Int32) -> Bool { Int(tagUpperBound) >= 2 * limit - 1 }
}

/// Bytes of the stamp that precedes a whole message's payload, and of a large message's header.
let channelStampBytes = 8
let channelHeaderBytes = 16

/// Calls `body` with a committed datatype covering `blocks` (absolute address, length in bytes), to be used with
/// the buffer `MPI_BOTTOM`. The datatype is freed when `body` returns: MPI keeps it for as long as communication
/// posted with it is pending.
func withBlocksDatatype(
    _ blocks: [(address: UnsafeMutableRawPointer, bytes: Int)], link: MPILink,
    _ body: (MPI_Datatype) throws -> Void
) throws {
    var lengths = blocks.map { Int32($0.bytes) }
    var displacements = [MPI_Aint](repeating: 0, count: blocks.count)
    for (index, block) in blocks.enumerated() {
        try mpiCheck(MPI_Get_address(block.address, &displacements[index]), "MPI_Get_address")
    }
    var datatype: MPI_Datatype? = nil
    try mpiCheck(
        MPI_Type_create_hindexed(Int32(blocks.count), &lengths, &displacements, link.byte, &datatype),
        "MPI_Type_create_hindexed")
    defer { MPI_Type_free(&datatype) }
    try mpiCheck(MPI_Type_commit(&datatype), "MPI_Type_commit")
    try body(datatype!)
}

/// One channel send: `MPI_Isend` of the stamped message (or its header and pieces) on the channel communicator.
/// Channel sends do not take part in the collectives' queue order: the engine starts them as soon as they are
/// submitted, in submission order, which keeps each (receiver, channel) stream in order.
final class ChannelSendOperation: MPIOperation, PendingSend, @unchecked Sendable {
    let peer: Int
    let channel: Int
    /// The payload; kept unmutated (so its storage stays put) until the send completes.
    private var bytes: [UInt8]
    private let payloadBytes: Int
    /// Stamp and payload length, little-endian, at a fixed address for MPI.
    private let header: UnsafeMutablePointer<Int64>
    private var requests = RequestSet()

    init(bytes: [UInt8], stamp: Int, peer: Int, channel: Int) {
        self.bytes = bytes
        self.payloadBytes = bytes.count
        self.peer = peer
        self.channel = channel
        self.header = .allocate(capacity: 2)
        header.initialize(to: Int64(stamp).littleEndian)
        (header + 1).initialize(to: Int64(bytes.count).littleEndian)
    }

    deinit {
        header.deallocate()
    }

    /// Whether a message of `payloadBytes` needs the header-and-pieces form.
    static func isChunked(payloadBytes: Int, maxChunkBytes: Int) -> Bool {
        payloadBytes > maxChunkBytes - channelStampBytes
    }

    override var isTransferring: Bool { payloadBytes >= 256 << 10 }

    override func start(_ link: MPILink) throws {
        let comm = try link.channelCommunicator
        let destination = Int32(peer)
        if !Self.isChunked(payloadBytes: payloadBytes, maxChunkBytes: link.maxChunkBytes) {
            var blocks = [(address: UnsafeMutableRawPointer(header), bytes: channelStampBytes)]
            if payloadBytes > 0 {
                let base = bytes.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
                blocks.append((base, payloadBytes))
            }
            let tag = Int32(channel)
            try withBlocksDatatype(blocks, link: link) { datatype in
                try requests.post("MPI_Isend on \(channel) to rank \(peer)") {
                    MPI_Isend(halo_mpi_bottom(), 1, datatype, destination, tag, comm, $0)
                }
            }
            return
        }
        guard ChannelID.chunkingFits(tagUpperBound: link.tagUpperBound) else {
            throw TransportError.invalidArgument(
                "channel message of \(payloadBytes) bytes exceeds maxChunkBytes and MPI's tag range is too small "
                    + "to send it in pieces")
        }
        let tag = ChannelID.chunkedTag(channel: channel)
        try requests.post("MPI_Isend (header) on channel \(channel) to rank \(peer)") {
            MPI_Isend(header, Int32(channelHeaderBytes), link.byte, destination, tag, comm, $0)
        }
        guard payloadBytes > 0 else { return }
        let base = bytes.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
        var offset = 0
        while offset < payloadBytes {
            let length = min(link.maxChunkBytes, payloadBytes - offset)
            let address = base + offset
            try requests.post("MPI_Isend (piece) on channel \(channel) to rank \(peer)") {
                MPI_Isend(address, Int32(length), link.byte, destination, tag, comm, $0)
            }
            offset += length
        }
    }

    override func advance(_ link: MPILink) throws -> (progressed: Bool, finished: Bool) {
        let completed = try requests.test()
        return (completed > 0, requests.isComplete)
    }

    override func didFinish() {
        bytes = []  // sent: the caller's buffer may go
    }

    var isComplete: Bool { completion.time != nil }

    var completionTime: UInt64? { completion.time }

    func wait() throws {
        try completion.wait()
    }
}
