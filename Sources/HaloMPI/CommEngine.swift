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

    /// The error the operation finished with, if it has finished with one; never blocks.
    var failure: (any Error)? {
        condition.lock()
        defer { condition.unlock() }
        return error
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
    /// A second duplicate, for channel messages only: the receiver probes it for any source and tag, which on
    /// `comm` would match the collectives' point-to-point pieces.
    var channelComm: MPI_Comm?
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

    /// The channel communicator, which exists once setup has run.
    var channelCommunicator: MPI_Comm {
        get throws {
            guard let channelComm else { throw TransportError.backend("MPI channel communicator not set up") }
            return channelComm
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

    /// Tests the requests (which also drives MPI's progress engine). Returns how many completed; `report`
    /// receives the posting index of each (its position in `requests`).
    mutating func test(_ report: (Int) -> Void = { _ in }) throws -> Int {
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
        for i in 0..<Int(completed) { report(Int(indices[i])) }
        return Int(completed)
    }

    /// Drops the completed requests (MPI has set them to `MPI_REQUEST_NULL`), so that a long-lived set does not
    /// grow. Returns the former indices of the requests kept, in order, for callers that track something per
    /// request.
    mutating func compact() -> [Int] {
        let null = halo_mpi_request_null()
        let kept = requests.indices.filter { requests[$0] != null }
        requests = kept.map { requests[$0] }
        remaining = kept.count
        return kept
    }
}

/// One queued collective operation (or channel send, see ChannelSend.swift), driven by the communication thread as
/// a small state machine.
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
///
/// Channel traffic (point-to-point messages that are not collective) runs beside the collectives: sends are
/// started as soon as they are submitted, whatever collective is waiting to be initiated, and once this rank uses
/// channels the thread also probes for incoming channel messages on every pass (so it no longer blocks while idle,
/// but backs off like any wait, see `MPIPollingPolicy`). Received messages wait in `inbox`.
final class CommEngine: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`:
    /// Operations not yet taken by the comm thread. A taken one leaves at once: an all-to-all holds its messages
    /// until released (hundreds of MB at scale), and a queue that kept taken operations for lazy compaction held up
    /// to 64 of them: +0.7 GB per rank per epoch, killed by the kernel in the second epoch of a 1M-node run.
    private var queue: [MPIOperation] = []
    private var channelQueue: [MPIOperation] = []
    private var channelPolling = false
    /// Counts submissions (and other reasons to look at the queues), so that the thread's pause between polls
    /// ends early when something new comes in.
    private var submissions = 0
    private var stopRequested = false
    private var broken: TransportError?
    private var started = false
    private var joined = false

    /// Channel messages received and not yet taken.
    let inbox = ChannelInbox()
    /// The largest tag MPI allows on the engine's communicators; known once `start()` returned.
    private(set) var tagUpperBound: Int32 = 32767

    private let exited = DispatchSemaphore(value: 0)
    private let policy: MPIPollingPolicy

    // Communication thread only:
    private let link: MPILink
    private var active: [MPIOperation] = []
    /// Channel sends in flight, in the order started.
    private var channelSends: [MPIOperation] = []
    private let receiver = ChannelReceiver()
    /// Shutdown: the `MPI_Ibarrier` on the channel communicator that tells every rank's sends are done, and when it
    /// completed.
    private var closingBarrier: RequestSet?
    private var closingBarrierDone: UInt64?
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
        tagUpperBound = setup.tagUpperBound
    }

    /// Queues an operation; the comm thread initiates it after every operation submitted before.
    func submit(_ operation: MPIOperation) throws {
        try enqueue { queue.append(operation) }
    }

    /// Queues a channel operation: the comm thread starts it at its next pass, after the channel operations
    /// submitted before it but regardless of the collectives' queue. Switches channel polling on.
    func submitChannel(_ operation: MPIOperation) throws {
        try enqueue {
            channelQueue.append(operation)
            channelPolling = true
        }
    }

    /// Runs `add` under the lock unless the transport is broken or closed, and wakes the comm thread.
    private func enqueue(_ add: () -> Void) throws {
        condition.lock()
        defer { condition.unlock() }
        if let broken { throw broken }
        guard !stopRequested else { throw TransportError.backend("MPI transport is closed") }
        add()
        submissions += 1
        condition.signal()
    }

    /// From now on the comm thread probes for incoming channel messages. Called by every channel call, so a rank
    /// that never uses channels keeps a thread that sleeps while nothing is in flight.
    func enableChannelPolling() {
        condition.lock()
        if !channelPolling {
            channelPolling = true
            submissions += 1
            condition.signal()
        }
        condition.unlock()
    }

    /// Lets the comm thread finish the queued operations and the channel traffic, frees the communicators and
    /// joins the thread. Idempotent; must not be called while another thread still waits for an operation that
    /// other ranks will never join. With more than one rank it returns once every rank has called it (see
    /// `finishChannelTraffic`), as `MPI_Finalize` would anyway.
    func shutdown() {
        condition.lock()
        stopRequested = true
        submissions += 1
        condition.signal()
        let mustJoin = started && !joined
        joined = true
        condition.unlock()
        if mustJoin { exited.wait() }
    }

    /// The next queued operation; blocks for one if `blocking` (unless stopping, or channel work came in).
    /// nil: none (or stop, or channel work).
    private func dequeue(blocking: Bool) -> MPIOperation? {
        condition.lock()
        defer { condition.unlock() }
        // Polling for channel messages keeps the thread going, unless the transport broke (nothing is received then).
        while blocking && queue.isEmpty && channelQueue.isEmpty && (!channelPolling || broken != nil)
            && !stopRequested {
            condition.wait()
        }
        // The queue holds the few operations submitted ahead of the comm thread: removing from its front is cheap.
        return queue.isEmpty ? nil : queue.removeFirst()
    }

    /// The channel operations submitted since the last call; whether channel polling is on; whether shutdown was
    /// requested and every queued collective has been dequeued.
    private func takeChannelWork() -> (operations: [MPIOperation], polling: Bool, stopping: Bool) {
        condition.lock()
        defer { condition.unlock() }
        let operations = channelQueue
        channelQueue.removeAll()
        return (operations, channelPolling, stopRequested && queue.isEmpty)
    }

    private var submissionCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return submissions
    }

    /// Sleeps up to `microseconds`, or less if something is submitted after the pass that counted `seen`
    /// submissions.
    private func sleep(microseconds: UInt32, seen: Int) {
        let deadline = Date(timeIntervalSinceNow: Double(microseconds) * 1e-6)
        condition.lock()
        while submissions == seen && !stopRequested {
            if !condition.wait(until: deadline) { break }
        }
        condition.unlock()
    }

    private func markBroken(_ error: any Error) -> TransportError {
        let transportError = (error as? TransportError) ?? .backend(String(describing: error))
        condition.lock()
        if broken == nil { broken = transportError }
        let result = broken!
        condition.unlock()
        // Nobody may wait for a channel message that can no longer come.
        inbox.fail(result)
        return result
    }

    private var isBroken: TransportError? {
        condition.lock()
        defer { condition.unlock() }
        return broken
    }

    /// Initiates an operation and adds it to `list`; a failure (or an already broken transport) finishes it with
    /// the error instead.
    private func start(_ operation: MPIOperation, into list: inout [MPIOperation]) {
        if let broken = isBroken {
            operation.completion.finish(broken)
            return
        }
        do {
            try operation.start(link)
            list.append(operation)
        } catch {
            abandoned.append(operation)
            operation.completion.finish(markBroken(error))
        }
    }

    private func run() {
        var idleSince: UInt64?
        while true {
            let seen = submissionCount
            var progressed = false
            // Initiate queued operations, in order, as far as the ordering rule allows.
            while active.last?.initiationComplete ?? true {
                let idle = active.isEmpty && channelSends.isEmpty && (receiver.isIdle || isBroken != nil)
                guard let operation = dequeue(blocking: idle) else { break }
                progressed = true
                start(operation, into: &active)
            }
            // Channel sends start at once, in submission order: they use their own communicator, so the order of
            // collectives does not concern them.
            let channelWork = takeChannelWork()
            for operation in channelWork.operations {
                progressed = true
                start(operation, into: &channelSends)
            }
            var transferring = false
            advance(&active, progressed: &progressed, transferring: &transferring)
            advance(&channelSends, progressed: &progressed, transferring: &transferring)
            if isBroken == nil {
                // While shutting down, every rank receives (see `finishChannelTraffic`).
                receiver.pollingEnabled = channelWork.polling || (channelWork.stopping && active.isEmpty)
                do {
                    let step = try receiver.advance(link)
                    inbox.deliver(step.delivered)
                    progressed = progressed || step.progressed
                    transferring = transferring || receiver.isTransferring
                } catch {
                    _ = markBroken(error)
                }
            }
            if channelWork.stopping && active.isEmpty && finishChannelTraffic(progressed: &progressed) {
                break
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
            case .sleep(let microseconds): sleep(microseconds: microseconds, seen: seen)
            }
        }
        inbox.close()
        if link.channelComm != nil {
            MPI_Comm_free(&link.channelComm)
        }
        if link.comm != nil {
            MPI_Comm_free(&link.comm)
        }
    }

    /// Advances every operation of `operations`; removes those that finished (waking their waiters) or failed.
    private func advance(_ operations: inout [MPIOperation], progressed: inout Bool, transferring: inout Bool) {
        var index = 0
        while index < operations.count {
            let operation = operations[index]
            do {
                let step = try operation.advance(link)
                progressed = progressed || step.progressed
                if step.finished {
                    operations.remove(at: index)
                    operation.didFinish()
                    operation.completion.finish()
                    continue
                }
                transferring = transferring || operation.isTransferring
            } catch {
                operations.remove(at: index)
                abandoned.append(operation)
                operation.completion.finish(markBroken(error))
                continue
            }
            index += 1
        }
    }

    /// Shutdown, once the collectives are done: returns whether the thread may stop.
    ///
    /// A send to a rank that has stopped receiving might never complete (a large message needs the receiver), and
    /// the sender would then hang in its own shutdown. So every rank keeps receiving until its own channel sends
    /// are complete, then enters a barrier on the channel communicator and keeps receiving until the barrier
    /// completes, i.e. until every rank's sends are complete; it then waits (briefly) for receives it has already
    /// matched. Messages never taken from the inbox are dropped. If the transport broke, nothing is waited for.
    /// Needs every rank to shut its transport down, as `MPIEnvironment.finalize()` does.
    private func finishChannelTraffic(progressed: inout Bool) -> Bool {
        guard isBroken == nil, let comm = link.channelComm, link.worldSize > 1 else { return true }
        guard channelSends.isEmpty else { return false }
        do {
            if closingBarrier == nil {
                var barrier = RequestSet()
                try barrier.post("MPI_Ibarrier (channel shutdown)") { MPI_Ibarrier(comm, $0) }
                closingBarrier = barrier
                progressed = true
                return false
            }
            if closingBarrierDone == nil {
                if try closingBarrier!.test() > 0 { progressed = true }
                guard closingBarrier!.isComplete else { return false }
                closingBarrierDone = DispatchTime.now().uptimeNanoseconds
            }
        } catch {
            _ = markBroken(error)
            return true
        }
        // Matched receives complete without help from their senders (whose sends are complete); the limit only
        // guards against a misbehaving library.
        let waited = DispatchTime.now().uptimeNanoseconds &- closingBarrierDone!
        return !receiver.hasReceivesInFlight || waited > 10_000_000_000
    }
}

/// Duplicates `MPI_COMM_WORLD` twice (non-blocking, so a late rank does not make the others spin): one
/// communicator for the collectives, one for channel messages; sets `MPI_ERRORS_RETURN` on both.
final class SetupOperation: MPIOperation, @unchecked Sendable {
    private var requests = RequestSet()
    /// MPI writes the new communicators when the requests complete, so they need a stable address.
    private let newComms = UnsafeMutablePointer<MPI_Comm?>.allocate(capacity: 2)
    /// The largest tag, once finished.
    private(set) var tagUpperBound: Int32 = 32767

    override init() {
        newComms.initialize(repeating: nil, count: 2)
    }

    deinit {
        newComms.deallocate()
    }

    override func start(_ link: MPILink) throws {
        initiationComplete = false
        try requests.post("MPI_Comm_idup") { MPI_Comm_idup(halo_mpi_comm_world(), newComms, $0) }
        try requests.post("MPI_Comm_idup (channels)") { MPI_Comm_idup(halo_mpi_comm_world(), newComms + 1, $0) }
    }

    override func advance(_ link: MPILink) throws -> (progressed: Bool, finished: Bool) {
        let progressed = try requests.test() > 0
        guard requests.isComplete else { return (progressed, false) }
        guard let comm = newComms[0], let channelComm = newComms[1] else {
            throw TransportError.backend("MPI_Comm_idup returned no communicator")
        }
        try mpiCheck(MPI_Comm_set_errhandler(comm, halo_mpi_errors_return()), "MPI_Comm_set_errhandler")
        try mpiCheck(MPI_Comm_set_errhandler(channelComm, halo_mpi_errors_return()), "MPI_Comm_set_errhandler")
        link.comm = comm
        link.channelComm = channelComm
        link.tagUpperBound = halo_mpi_tag_ub(comm)
        tagUpperBound = link.tagUpperBound
        initiationComplete = true
        return (true, true)
    }
}
