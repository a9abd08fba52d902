import CMPI
import Foundation
import HaloTransport

/// `Transport` over OpenMPI: one rank per process, started by `mpirun`.
///
/// A dedicated communication thread makes every MPI call (except `MPI_Abort` in `fail`), taking operations from a
/// FIFO queue in submission order. So MPI progresses while the caller's threads compute, and all ranks make the
/// same MPI calls in the same order. Non-blocking MPI (`MPI_Ialltoall`, `MPI_Isend`/`MPI_Irecv`,
/// `MPI_Iallreduce`, `MPI_Ibcast`, `MPI_Ibarrier`) is polled with `MPI_Testsome`, backing off to short sleeps when
/// idle (`MPIPollingPolicy`), so neither a waiting caller nor the communication thread holds a core.
///
/// Payloads larger than `maxChunkBytes` (default 1 GiB; MPI counts are `Int32`) travel in several pieces with
/// distinct tags. Every rank must use the same `maxChunkBytes`.
///
/// Channels (`send`, `takeArrived`, `waitForMessages`) use a second duplicate of `MPI_COMM_WORLD`; the
/// communication thread starts sends as they come and, once this rank uses channels, probes for incoming messages
/// and collects them for the caller (see `CommEngine`, ChannelSend.swift and ChannelReceiver.swift).
///
/// Failure: `fail(reason:)` prints `halo: rank R failed: reason` and calls `MPI_Abort`, so `mpirun` ends every rank;
/// a rank that dies is noticed by `mpirun`, which ends the others. MPI errors (the communicator uses
/// `MPI_ERRORS_RETURN`) surface as `TransportError.backend` with MPI's message; after one, the transport refuses
/// further operations, since ranks may no longer agree on the call order.
public final class MPITransport: Transport, @unchecked Sendable {
    /// Largest payload of one MPI call unless told otherwise: 1 GiB, safely below `Int32.max`.
    public static let defaultMaxChunkBytes = 1 << 30

    public let rank: Int
    public let worldSize: Int
    /// Ranks may be on other machines (and on one machine, nothing can tell an emulated link from a real one).
    public var crossesNetwork: Bool { true }
    /// Largest payload of one MPI call, in bytes.
    public let maxChunkBytes: Int
    /// The environment this transport belongs to (kept alive by the transport).
    public let environment: MPIEnvironment
    private let engine: CommEngine

    /// Starts the communication thread and duplicates `MPI_COMM_WORLD` for this transport (collective: every rank
    /// creates its transports in the same order).
    /// - Parameters:
    ///   - maxChunkBytes: largest payload per MPI call, 1...Int32.max; small values test the chunking.
    ///   - polling: how the communication thread waits for progress.
    public init(
        environment: MPIEnvironment, maxChunkBytes: Int = MPITransport.defaultMaxChunkBytes,
        polling: MPIPollingPolicy = .default
    ) throws {
        guard maxChunkBytes >= 1, maxChunkBytes <= Int(Int32.max) else {
            throw TransportError.invalidArgument("maxChunkBytes must be in 1...\(Int32.max), got \(maxChunkBytes)")
        }
        self.environment = environment
        self.rank = environment.rank
        self.worldSize = environment.worldSize
        self.maxChunkBytes = maxChunkBytes
        self.engine = CommEngine(
            rank: environment.rank, worldSize: environment.worldSize, maxChunkBytes: maxChunkBytes, policy: polling)
        try environment.register(engine)
        try engine.start()
    }

    deinit {
        engine.shutdown()
    }

    /// Finishes the queued operations and stops the communication thread; later operations throw. Idempotent.
    /// (`MPIEnvironment.finalize()` does this for every transport.) With more than one rank it returns once every
    /// rank has closed the transport, so that no channel send is left waiting for a receiver that stopped;
    /// channel messages never taken are dropped.
    public func close() {
        engine.shutdown()
    }

    public func startAllToAll(_ messages: [[UInt8]]) throws -> any PendingAllToAll {
        guard messages.count == worldSize else {
            throw TransportError.invalidArgument(
                "all-to-all needs \(worldSize) messages (one per rank), got \(messages.count)")
        }
        let operation = AllToAllOperation(messages: messages, rank: rank, worldSize: worldSize)
        try engine.submit(operation)
        return operation
    }

    public func allReduceSum(_ values: inout [Float]) throws {
        let count = values.count
        try values.withUnsafeMutableBytes { raw in
            try run(AllReduceOperation(base: raw.baseAddress, count: count, element: .float))
        }
    }

    public func startAllReduceSum(_ values: [Float]) throws -> any PendingAllReduce {
        let pending = MPIPendingAllReduce(values)
        try engine.submit(pending.operation)
        return pending
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        let count = values.count
        try values.withUnsafeMutableBytes { raw in
            try run(AllReduceOperation(base: raw.baseAddress, count: count, element: .double))
        }
    }

    public func broadcast(_ bytes: inout [UInt8], root: Int) throws {
        guard (0..<worldSize).contains(root) else {
            throw TransportError.invalidArgument("broadcast root \(root) outside 0..<\(worldSize)")
        }
        let operation = BroadcastOperation(bytes: rank == root ? bytes : [], root: root)
        try run(operation)
        if rank != root { bytes = operation.result }
    }

    public func barrier() throws {
        try run(BarrierOperation())
    }

    // MARK: Channels

    /// Sends on the channel communicator (tag = channel, stamp in front of the payload); returns at once. Messages
    /// larger than `maxChunkBytes` travel in pieces.
    public func send(_ bytes: [UInt8], stamp: Int, to peer: Int, on channel: ChannelID) throws -> any PendingSend {
        try checkChannelPeer(peer)
        if ChannelSendOperation.isChunked(payloadBytes: bytes.count, maxChunkBytes: maxChunkBytes)
            && !ChannelID.chunkingFits(tagUpperBound: engine.tagUpperBound) {
            throw TransportError.invalidArgument(
                "channel message of \(bytes.count) bytes does not fit one MPI call (maxChunkBytes \(maxChunkBytes) "
                    + "with its stamp), and MPI's tag range (\(engine.tagUpperBound)) is too small to send it in pieces")
        }
        let operation = ChannelSendOperation(bytes: bytes, stamp: stamp, peer: peer, channel: channel.rawValue)
        try engine.submitChannel(operation)
        return operation
    }

    /// Received messages are collected by the communication thread; this takes them (`clock` is not used).
    public func takeArrived(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage] {
        try checkChannelPeer(peer)
        engine.enableChannelPolling()
        return try engine.inbox.take(.init(peer: peer, channel: channel.rawValue))
    }

    public func waitForMessages(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage] {
        try checkChannelPeer(peer)
        engine.enableChannelPolling()
        return try engine.inbox.wait(.init(peer: peer, channel: channel.rawValue))
    }

    private func checkChannelPeer(_ peer: Int) throws {
        guard (0..<worldSize).contains(peer), peer != rank else {
            throw TransportError.invalidArgument(
                "channel peer \(peer) of rank \(rank): must be another rank in 0..<\(worldSize)")
        }
    }

    /// Prints `halo: rank R failed: reason` to stderr and aborts the whole MPI job (`mpirun` then ends every rank
    /// and exits non-zero). Does not return.
    public func fail(reason: String) {
        FileHandle.standardError.write(Data("halo: rank \(rank) failed: \(reason)\n".utf8))
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 {
            MPI_Abort(halo_mpi_comm_world(), 1)
        }
        exit(1)
    }

    /// Submits an operation and blocks until it is done.
    private func run(_ operation: MPIOperation) throws {
        try engine.submit(operation)
        try operation.completion.wait()
    }
}

/// A non-blocking `MPI_Iallreduce` (through the communication thread) on a buffer of its own, which lives until the
/// reduction is done: the caller's array may go away or change meanwhile.
final class MPIPendingAllReduce: PendingAllReduce, @unchecked Sendable {
    private let buffer: UnsafeMutableBufferPointer<Float>
    let operation: AllReduceOperation

    init(_ values: [Float]) {
        buffer = .allocate(capacity: max(values.count, 1))
        _ = buffer.initialize(from: values)
        operation = AllReduceOperation(base: UnsafeMutableRawPointer(buffer.baseAddress), count: values.count,
                                       element: .float)
    }

    deinit {
        // A reduction that failed may still have MPI requests on the buffer; the engine keeps such operations
        // (`abandoned`) but not their buffers, so leak it rather than free memory MPI may write.
        if operation.completion.failure == nil, operation.completion.time != nil { buffer.deallocate() }
    }

    func wait() throws -> [Float] {
        try operation.completion.wait()
        return Array(buffer.prefix(operation.count))
    }

    var completionTime: UInt64? { operation.completion.time }
}
