import CMPI
import Foundation
import HaloTransport

// The operations the communication thread runs. Buffers handed to non-blocking MPI calls must stay at a fixed
// address until the request completes: C-allocated scalars (counts, sizes) are allocated here; byte messages are
// Swift arrays that the operation keeps alive and never mutates while MPI owns them (a native array's storage does
// not move while it is referenced and not mutated), so messages are neither copied on the way out nor on the way
// in. Caller-owned buffers (all-reduce) are only used while the caller blocks inside `withUnsafe…` for the result.

/// Posts the pieces of one message: at most `maxChunkBytes` per MPI call (MPI counts are `Int32`), tag = piece
/// index. Both sides split identically because every rank's transport uses the same chunk size.
private func postPieces(
    _ requests: inout RequestSet, link: MPILink, comm: MPI_Comm, base: UnsafeMutableRawPointer, count: Int,
    peer: Int, receive: Bool
) throws {
    var offset = 0
    var piece = 0
    while offset < count {
        let length = min(link.maxChunkBytes, count - offset)
        let tag = link.tag(piece: piece)
        let address = base + offset
        if receive {
            try requests.post("MPI_Irecv from rank \(peer)") {
                MPI_Irecv(address, Int32(length), link.byte, Int32(peer), tag, comm, $0)
            }
        } else {
            try requests.post("MPI_Isend to rank \(peer)") {
                MPI_Isend(address, Int32(length), link.byte, Int32(peer), tag, comm, $0)
            }
        }
        offset += length
        piece += 1
    }
}

/// Personalised all-to-all: exchange the byte counts (`MPI_Ialltoall` of `Int64`), then post a receive and a send
/// per peer with a non-empty message. The message to oneself is passed over without MPI.
///
/// Each peer's message is also published as soon as all its pieces are in, so that `poll(peer:)` can hand it out
/// while other peers' messages are still on their way.
final class AllToAllOperation: MPIOperation, PendingAllToAll, @unchecked Sendable {
    private enum Stage { case counts, data, done }

    private var outgoing: [[UInt8]]
    private var incoming: [[UInt8]]
    private let rank: Int
    private let worldSize: Int
    /// `worldSize` counts to send, then `worldSize` received.
    private let counts: UnsafeMutablePointer<Int64>
    private var stage = Stage.counts
    private var requests = RequestSet()
    /// Per request of the data stage: the peer whose message it receives (nil for sends).
    private var receiveOwner: [Int?] = []
    /// Per peer: receive pieces not yet complete.
    private var piecesLeft: [Int]

    /// Messages that are complete, by sender: written by the comm thread, read by `poll` (guarded by `arrivedLock`).
    /// They share storage with `incoming`, which is no longer written once a message is published.
    private let arrivedLock = NSLock()
    private var arrived: [[UInt8]?]

    init(messages: [[UInt8]], rank: Int, worldSize: Int) {
        self.outgoing = messages
        self.incoming = [[UInt8]](repeating: [], count: worldSize)
        self.rank = rank
        self.worldSize = worldSize
        self.piecesLeft = [Int](repeating: 0, count: worldSize)
        self.arrived = [[UInt8]?](repeating: nil, count: worldSize)
        // The message to oneself never travels: it is there from the start.
        self.arrived[rank] = messages[rank]
        self.counts = .allocate(capacity: 2 * worldSize)
        counts.initialize(repeating: 0, count: 2 * worldSize)
    }

    deinit {
        counts.deallocate()
    }

    override var isTransferring: Bool { stage == .data }

    var completionTime: UInt64? { completion.time }

    override func start(_ link: MPILink) throws {
        if worldSize == 1 {
            incoming[0] = outgoing[0]
            stage = .done
            return
        }
        for peer in 0..<worldSize { counts[peer] = Int64(outgoing[peer].count) }
        let comm = try link.communicator
        initiationComplete = false
        try requests.post("MPI_Ialltoall (message sizes)") {
            MPI_Ialltoall(counts, 1, link.int64, counts + worldSize, 1, link.int64, comm, $0)
        }
    }

    override func advance(_ link: MPILink) throws -> (progressed: Bool, finished: Bool) {
        switch stage {
        case .done:
            return (false, true)
        case .counts:
            let completed = try requests.test()
            guard requests.isComplete else { return (completed > 0, false) }
            try postData(link)
            stage = .data
            initiationComplete = true
            return (true, requests.isComplete)
        case .data:
            var complete: [Int] = []
            let completed = try requests.test { index in
                guard let peer = receiveOwner[index] else { return }
                piecesLeft[peer] -= 1
                if piecesLeft[peer] == 0 { complete.append(peer) }
            }
            publish(complete)
            if requests.isComplete { stage = .done }
            return (completed > 0, requests.isComplete)
        }
    }

    private func postData(_ link: MPILink) throws {
        let comm = try link.communicator
        requests = RequestSet()
        receiveOwner = []
        var complete: [Int] = []
        // Receives first: a posted receive lets large messages skip the unexpected-message path.
        for peer in 0..<worldSize {
            let count = counts[worldSize + peer]
            guard count >= 0, count <= Int64(Int.max) else {
                throw TransportError.backend("rank \(peer) announced a message of \(count) bytes")
            }
            if peer == link.rank {
                incoming[peer] = outgoing[peer]
                continue
            }
            guard count > 0 else {
                complete.append(peer)
                continue
            }
            var buffer = [UInt8](repeating: 0, count: Int(count))
            let base = buffer.withUnsafeMutableBytes { $0.baseAddress! }
            incoming[peer] = buffer
            let before = requests.requests.count
            try postPieces(&requests, link: link, comm: comm, base: base, count: Int(count), peer: peer, receive: true)
            piecesLeft[peer] = requests.requests.count - before
            receiveOwner += [Int?](repeating: peer, count: piecesLeft[peer])
        }
        for peer in 0..<worldSize where peer != link.rank && !outgoing[peer].isEmpty {
            let base = outgoing[peer].withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
            try postPieces(
                &requests, link: link, comm: comm, base: base, count: outgoing[peer].count, peer: peer, receive: false)
        }
        receiveOwner += [Int?](repeating: nil, count: requests.requests.count - receiveOwner.count)
        publish(complete)
    }

    /// Makes the messages of `peers` visible to `poll`. Comm thread only.
    private func publish(_ peers: [Int]) {
        guard !peers.isEmpty else { return }
        arrivedLock.lock()
        for peer in peers { arrived[peer] = incoming[peer] }
        arrivedLock.unlock()
    }

    override func didFinish() {
        outgoing = []  // sent: let the caller's buffers go even if the handle is kept
    }

    func wait() throws -> [[UInt8]] {
        try completion.wait()
        return incoming
    }

    func poll(peer: Int) throws -> [UInt8]? {
        guard (0..<worldSize).contains(peer) else {
            throw TransportError.invalidArgument("poll of peer \(peer) outside 0..<\(worldSize)")
        }
        if let error = completion.failure { throw error }
        arrivedLock.lock()
        defer { arrivedLock.unlock() }
        return arrived[peer]
    }
}

/// In-place element-wise sum over all ranks, in pieces of at most `maxChunkBytes` (and `Int32.max` elements).
final class AllReduceOperation: MPIOperation, @unchecked Sendable {
    enum Element { case float, double }

    private let base: UnsafeMutableRawPointer?
    let count: Int
    private let element: Element
    private var requests = RequestSet()

    init(base: UnsafeMutableRawPointer?, count: Int, element: Element) {
        self.base = base
        self.count = count
        self.element = element
    }

    /// Small reductions mostly wait for the last rank to arrive; large ones move data.
    override var isTransferring: Bool { count * (element == .float ? 4 : 8) >= 256 << 10 }

    override func start(_ link: MPILink) throws {
        guard link.worldSize > 1, count > 0, let base else { return }
        let comm = try link.communicator
        let (datatype, stride) = element == .float
            ? (link.float, MemoryLayout<Float>.stride) : (link.double, MemoryLayout<Double>.stride)
        let perPiece = max(1, min(Int(Int32.max), link.maxChunkBytes / stride))
        var offset = 0
        while offset < count {
            let length = min(perPiece, count - offset)
            let address = base + offset * stride
            try requests.post("MPI_Iallreduce") {
                MPI_Iallreduce(halo_mpi_in_place(), address, Int32(length), datatype, link.sum, comm, $0)
            }
            offset += length
        }
    }

    override func advance(_ link: MPILink) throws -> (progressed: Bool, finished: Bool) {
        let completed = try requests.test()
        return (completed > 0, requests.isComplete)
    }
}

/// Broadcast of a byte array whose length only the root knows: the length first (`MPI_Ibcast` of one `Int64`),
/// then the bytes in pieces.
final class BroadcastOperation: MPIOperation, @unchecked Sendable {
    private let root: Int
    private let rootBytes: [UInt8]
    /// The broadcast bytes (valid after completion).
    private(set) var result: [UInt8] = []
    private let size: UnsafeMutablePointer<Int64>
    private var sizeKnown = false
    private var requests = RequestSet()

    init(bytes: [UInt8], root: Int) {
        self.root = root
        self.rootBytes = bytes
        self.size = .allocate(capacity: 1)
        size.initialize(to: Int64(bytes.count))
    }

    deinit {
        size.deallocate()
    }

    override var isTransferring: Bool { sizeKnown }

    override func start(_ link: MPILink) throws {
        if link.worldSize == 1 {
            result = rootBytes
            sizeKnown = true
            return
        }
        let comm = try link.communicator
        initiationComplete = false
        try requests.post("MPI_Ibcast (size)") { MPI_Ibcast(size, 1, link.int64, Int32(root), comm, $0) }
    }

    override func advance(_ link: MPILink) throws -> (progressed: Bool, finished: Bool) {
        let completed = try requests.test()
        guard requests.isComplete else { return (completed > 0, false) }
        if sizeKnown { return (completed > 0, true) }
        sizeKnown = true
        initiationComplete = true
        let count = size.pointee
        guard count >= 0, count <= Int64(Int.max) else {
            throw TransportError.backend("broadcast root announced \(count) bytes")
        }
        if link.rank == root {
            result = rootBytes
        } else {
            result = [UInt8](repeating: 0, count: Int(count))
        }
        guard count > 0 else { return (true, true) }
        let comm = try link.communicator
        // The root sends from its own (shared, unmutated) storage; the others receive into their fresh array.
        let base = link.rank == root
            ? rootBytes.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
            : result.withUnsafeMutableBytes { $0.baseAddress! }
        requests = RequestSet()
        var offset = 0
        while offset < Int(count) {
            let length = min(link.maxChunkBytes, Int(count) - offset)
            let address = base + offset
            try requests.post("MPI_Ibcast") { MPI_Ibcast(address, Int32(length), link.byte, Int32(root), comm, $0) }
            offset += length
        }
        return (true, false)
    }
}

/// `MPI_Ibarrier`.
final class BarrierOperation: MPIOperation, @unchecked Sendable {
    private var requests = RequestSet()

    override func start(_ link: MPILink) throws {
        guard link.worldSize > 1 else { return }
        let comm = try link.communicator
        try requests.post("MPI_Ibarrier") { MPI_Ibarrier(comm, $0) }
    }

    override func advance(_ link: MPILink) throws -> (progressed: Bool, finished: Bool) {
        let completed = try requests.test()
        return (completed > 0, requests.isComplete)
    }
}
