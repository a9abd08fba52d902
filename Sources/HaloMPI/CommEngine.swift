import CMPI
import Foundation
import HaloTransport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the communication thread waits while operations are in flight but nothing completes. MPI only moves data
/// while it is called, so the thread keeps polling: for `spinMicroseconds` after the last progress it polls without
/// pause (lowest latency), until `yieldMicroseconds` it yields its core between polls, then it sleeps between polls
/// so that waiting does not take a core from the compute threads. While data is moving (an all-to-all or broadcast
/// payload, a large all-reduce) it sleeps `sleepMicroseconds`; while only waiting for other ranks to arrive, the
/// sleep grows with the time waited (an eighth of it, at most `maxSleepMicroseconds`), so a long wait costs little
/// CPU and ends at most ~1/8 later than it could.
public struct MPIPollingPolicy: Sendable, Equatable {
    /// Polling without pause this long after the last progress.
    public var spinMicroseconds: UInt32
    /// Then polls separated by `sched_yield()` until this long after the last progress.
    public var yieldMicroseconds: UInt32
    /// Then the sleep between polls while data is moving, and the shortest sleep otherwise.
    public var sleepMicroseconds: UInt32
    /// The longest sleep between polls while waiting for other ranks.
    public var maxSleepMicroseconds: UInt32

    public init(spinMicroseconds: UInt32 = 50, yieldMicroseconds: UInt32 = 500, sleepMicroseconds: UInt32 = 50,
                maxSleepMicroseconds: UInt32 = 1000) {
        self.spinMicroseconds = spinMicroseconds
        self.yieldMicroseconds = max(yieldMicroseconds, spinMicroseconds)
        self.sleepMicroseconds = sleepMicroseconds
        self.maxSleepMicroseconds = max(maxSleepMicroseconds, sleepMicroseconds)
    }

    public static let `default` = MPIPollingPolicy()

    /// Polls all the time: lowest latency, one core busy whenever an operation is in flight.
    public static let spin = MPIPollingPolicy(
        spinMicroseconds: .max, yieldMicroseconds: .max, sleepMicroseconds: 0, maxSleepMicroseconds: 0)

    enum Pause: Equatable {
        case none
        case yield
        case sleep(microseconds: UInt32)
    }

    /// What to do before the next poll, `idleNanoseconds` after the last progress.
    func pause(idleNanoseconds: UInt64, transferring: Bool) -> Pause {
        let idleMicroseconds = idleNanoseconds / 1000
        if idleMicroseconds < UInt64(spinMicroseconds) { return .none }
        if idleMicroseconds < UInt64(yieldMicroseconds) { return .yield }
        if transferring { return .sleep(microseconds: sleepMicroseconds) }
        let grown = min(UInt64(maxSleepMicroseconds), idleMicroseconds / 8)
        return .sleep(microseconds: UInt32(max(UInt64(sleepMicroseconds), grown)))
    }
}

/// Signals one operation's end to the thread that waits for it.
final class Completion: @unchecked Sendable {
    private let condition = NSCondition()
    private var done = false
    private var error: (any Error)?
    private var finishedAt: UInt64?

    /// When the operation finished (`DispatchTime` uptime nanoseconds), once it has.
    var time: UInt64? {
        condition.lock()
        defer { condition.unlock() }
        return finishedAt
    }

    func finish(_ error: (any Error)? = nil) {
        condition.lock()
        if !done {
            done = true
            self.error = error
            finishedAt = DispatchTime.now().uptimeNanoseconds
        }
        condition.broadcast()
        condition.unlock()
    }

    /// Blocks until `finish`; rethrows its error.
    func wait() throws {
        condition.lock()
        while !done { condition.wait() }
        let error = self.error
        condition.unlock()
        if let error { throw error }
    }
}

/// What the communication thread knows while it works. Touched by that thread only.
final class MPILink {
    /// The engine's private duplicate of `MPI_COMM_WORLD` (nil until the setup operation completes).
    var comm: MPI_Comm?
    let rank: Int
    let worldSize: Int
    /// Largest payload of one MPI call, in bytes.
    let maxChunkBytes: Int
    /// Largest usable tag.
    var tagUpperBound: Int32 = 32767
    let byte: MPI_Datatype = halo_mpi_byte()
    let int64: MPI_Datatype = halo_mpi_int64()
    let float: MPI_Datatype = halo_mpi_float()
    let double: MPI_Datatype = halo_mpi_double()
    let sum: MPI_Op = halo_mpi_sum()

    init(rank: Int, worldSize: Int, maxChunkBytes: Int) {
        self.rank = rank
        self.worldSize = worldSize
        self.maxChunkBytes = maxChunkBytes
    }

    /// The communicator, which exists once setup has run (operations run strictly after it).
    var communicator: MPI_Comm {
        get throws {
            guard let comm else { throw TransportError.backend("MPI communicator not set up") }
            return comm
        }
    }

    /// The tag of the `index`-th piece of one message. Pieces of successive messages between the same two ranks
    /// are posted in the same order on both sides, and MPI never lets messages with equal source, tag and
    /// communicator overtake each other, so reusing tags across messages is safe; distinct tags within a message
    /// make a piece mix-up impossible.
    func tag(piece index: Int) -> Int32 {
        Int32(index % (Int(tagUpperBound) + 1))
    }
}

/// Throws `TransportError.backend` naming the call unless `code` is `MPI_SUCCESS`.
func mpiCheck(_ code: Int32, _ call: @autoclosure () -> String) throws {
    guard code != MPI_SUCCESS else { return }
    throw TransportError.backend("\(call()) failed: \(mpiErrorString(code))")
}

/// Outstanding requests of one operation stage, tested together.
struct RequestSet {
    private(set) var requests: [MPI_Request?] = []
    private var remaining = 0
    private var indices: [Int32] = []
    private var statuses: [MPI_Status] = []

    var isComplete: Bool { remaining == 0 }

    /// Starts one non-blocking call; `post` receives the request slot to fill.
    mutating func post(_ call: @autoclosure () -> String, _ post: (UnsafeMutablePointer<MPI_Request?>) -> Int32) throws {
        var request: MPI_Request? = halo_mpi_request_null()
        try mpiCheck(post(&request), call())
        requests.append(request)
        remaining += 1
    }

    /// Tests the requests (which also drives MPI's progress engine). Returns how many completed.
    mutating func test() throws -> Int {
        guard remaining > 0 else { return 0 }
        let count = requests.count
        if indices.count < count {
            indices = [Int32](repeating: 0, count: count)
            statuses = [MPI_Status](repeating: MPI_Status(), count: count)
        }
        var completed: Int32 = 0
        let code = requests.withUnsafeMutableBufferPointer { requests in
            indices.withUnsafeMutableBufferPointer { indices in
                statuses.withUnsafeMutableBufferPointer { statuses in
                    MPI_Testsome(
                        Int32(count), requests.baseAddress, &completed, indices.baseAddress, statuses.baseAddress)
                }
            }
        }
        if code == MPI_ERR_IN_STATUS {
            let failed = (0..<Int(max(completed, 0))).map { statuses[$0].MPI_ERROR }.first { $0 != MPI_SUCCESS }
            throw TransportError.backend("MPI request failed: \(mpiErrorString(failed ?? code))")
        }
        try mpiCheck(code, "MPI_Testsome")
        if completed == halo_mpi_undefined() {
            // Every request is already inactive.
            remaining = 0
            return 0
        }
        remaining -= Int(completed)
        return Int(completed)
    }
}

/// One queued collective operation, driven by the communication thread as a small state machine.
///
/// Ordering rule: MPI requires every rank to initiate collectives on a communicator in the same order, and the
/// all-to-all's point-to-point pieces rely on identical posting order. Operations are therefore *initiated*
/// strictly in queue order: an operation that still has an MPI call to initiate (e.g. the data stage of an
/// all-to-all waiting for the size exchange) holds back the start of the next one. Initiated requests of many
/// operations are in flight and progress together.
class MPIOperation: @unchecked Sendable {
    let completion = Completion()

    /// False while this operation has MPI calls left to initiate in queue order.
    var initiationComplete = true

    /// Whether payload is moving (rather than waiting for other ranks to arrive); shortens the polling sleep.
    var isTransferring: Bool { false }

    /// Initiates the first stage. Comm thread only.
    func start(_ link: MPILink) throws {}

    /// Tests outstanding requests and moves to the next stage when one is done. Returns whether anything
    /// completed and whether the operation is finished. Comm thread only.
    func advance(_ link: MPILink) throws -> (progressed: Bool, finished: Bool) { (false, true) }

    /// Called once, on the comm thread, when the operation finished without error (before waiters wake).
    func didFinish() {}
}

/// Owns the communication thread: every MPI call of a transport (except `MPI_Abort`) happens there, in the order
/// operations were submitted, so MPI progresses while callers compute and every rank makes the same calls in the
/// same order.
final class CommEngine: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [MPIOperation] = []
    private var queueHead = 0
    private var stopRequested = false
    private var broken: TransportError?
    private var started = false
    private var joined = false

    private let exited = DispatchSemaphore(value: 0)
    private let policy: MPIPollingPolicy

    // Communication thread only:
    private let link: MPILink
    private var active: [MPIOperation] = []
    /// Operations that failed with requests possibly still posted: kept alive so that MPI never writes into freed
    /// buffers. (After a failure the transport takes no new operations, so this stays small.)
    private var abandoned: [MPIOperation] = []

    init(rank: Int, worldSize: Int, maxChunkBytes: Int, policy: MPIPollingPolicy) {
        self.link = MPILink(rank: rank, worldSize: worldSize, maxChunkBytes: maxChunkBytes)
        self.policy = policy
    }

    /// Starts the thread and duplicates `MPI_COMM_WORLD` on it (collective). Returns when that is done.
    func start() throws {
        condition.lock()
        precondition(!started, "CommEngine started twice")
        started = true
        condition.unlock()
        let thread = Thread { [self] in
            self.run()
            self.exited.signal()
        }
        thread.name = "halo-mpi-comm"
        thread.start()
        let setup = SetupOperation()
        try submit(setup)
        try setup.completion.wait()
    }

    /// Queues an operation; the comm thread initiates it after every operation submitted before.
    func submit(_ operation: MPIOperation) throws {
        condition.lock()
        defer { condition.unlock() }
        if let broken { throw broken }
        guard !stopRequested else { throw TransportError.backend("MPI transport is closed") }
        queue.append(operation)
        condition.signal()
    }

    /// Lets the comm thread finish the queued operations, frees the communicator and joins the thread.
    /// Idempotent; must not be called while another thread still waits for an operation that other ranks will
    /// never join.
    func shutdown() {
        condition.lock()
        stopRequested = true
        condition.signal()
        let mustJoin = started && !joined
        joined = true
        condition.unlock()
        if mustJoin { exited.wait() }
    }

    /// The next queued operation; blocks for one if `blocking` (unless stopping). nil: none (or stop).
    private func dequeue(blocking: Bool) -> MPIOperation? {
        condition.lock()
        defer { condition.unlock() }
        while blocking && queueHead == queue.count && !stopRequested { condition.wait() }
        guard queueHead < queue.count else { return nil }
        let operation = queue[queueHead]
        queueHead += 1
        if queueHead > 64 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        return operation
    }

    private func markBroken(_ error: any Error) -> TransportError {
        let transportError = (error as? TransportError) ?? .backend(String(describing: error))
        condition.lock()
        if broken == nil { broken = transportError }
        let result = broken!
        condition.unlock()
        return result
    }

    private var isBroken: TransportError? {
        condition.lock()
        defer { condition.unlock() }
        return broken
    }

    private func run() {
        var idleSince: UInt64?
        while true {
            var progressed = false
            // Initiate queued operations, in order, as far as the ordering rule allows.
            while active.last?.initiationComplete ?? true {
                guard let operation = dequeue(blocking: active.isEmpty) else { break }
                progressed = true
                if let broken = isBroken {
                    operation.completion.finish(broken)
                    continue
                }
                do {
                    try operation.start(link)
                    active.append(operation)
                } catch {
                    abandoned.append(operation)
                    operation.completion.finish(markBroken(error))
                }
            }
            if active.isEmpty {
                // dequeue(blocking: true) returned nil: stop requested and nothing left.
                break
            }
            var index = 0
            var transferring = false
            while index < active.count {
                let operation = active[index]
                do {
                    let step = try operation.advance(link)
                    progressed = progressed || step.progressed
                    if step.finished {
                        active.remove(at: index)
                        operation.didFinish()
                        operation.completion.finish()
                        continue
                    }
                    transferring = transferring || operation.isTransferring
                } catch {
                    active.remove(at: index)
                    abandoned.append(operation)
                    operation.completion.finish(markBroken(error))
                    continue
                }
                index += 1
            }
            if progressed {
                idleSince = nil
                continue
            }
            let now = DispatchTime.now().uptimeNanoseconds
            let since = idleSince ?? now
            idleSince = since
            switch policy.pause(idleNanoseconds: now &- since, transferring: transferring) {
            case .none: break
            case .yield: sched_yield()
            case .sleep(let microseconds): usleep(microseconds)
            }
        }
        if link.comm != nil {
            MPI_Comm_free(&link.comm)
        }
    }
}

/// Duplicates `MPI_COMM_WORLD` (non-blocking, so a late rank does not make the others spin) and sets
/// `MPI_ERRORS_RETURN` on the copy.
final class SetupOperation: MPIOperation, @unchecked Sendable {
    private var requests = RequestSet()
    /// MPI writes the new communicator when the request completes, so it needs a stable address.
    private let newComm = UnsafeMutablePointer<MPI_Comm?>.allocate(capacity: 1)

    override init() {
        newComm.initialize(to: nil)
    }

    deinit {
        newComm.deallocate()
    }

    override func start(_ link: MPILink) throws {
        initiationComplete = false
        try requests.post("MPI_Comm_idup") { MPI_Comm_idup(halo_mpi_comm_world(), newComm, $0) }
    }

    override func advance(_ link: MPILink) throws -> (progressed: Bool, finished: Bool) {
        let progressed = try requests.test() > 0
        guard requests.isComplete else { return (progressed, false) }
        guard let comm = newComm.pointee else { throw TransportError.backend("MPI_Comm_idup returned no communicator") }
        try mpiCheck(MPI_Comm_set_errhandler(comm, halo_mpi_errors_return()), "MPI_Comm_set_errhandler")
        link.comm = comm
        link.tagUpperBound = halo_mpi_tag_ub(comm)
        initiationComplete = true
        return (true, true)
    }
}
