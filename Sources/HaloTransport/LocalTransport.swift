import Foundation

/// Ranks as threads of one process: the default transport, needing no launcher.
///
/// Collectives meet in a shared `Rendezvous`: each collective call of a rank is numbered, a rank deposits its
/// contribution under that number and returns at once (so an all-to-all is "in flight" while the rank computes),
/// and `wait` blocks until every rank has deposited. Messages are handed over by reference (Swift arrays are
/// copy-on-write), so an in-process exchange costs no copy.
public final class LocalTransport: Transport, @unchecked Sendable {
    public let rank: Int
    public var worldSize: Int { rendezvous.worldSize }
    /// Ranks are threads: a message is a copy in memory.
    public var crossesNetwork: Bool { false }
    private let rendezvous: Rendezvous
    /// Number of collective calls this rank has made; the key of the next one. Touched only by this rank's thread.
    private var nextOperation = 0

    init(rank: Int, rendezvous: Rendezvous) {
        self.rank = rank
        self.rendezvous = rendezvous
    }

    /// Runs `body` on `worldSize` threads, one per rank, and returns their results in rank order.
    ///
    /// If a rank throws, the others' pending and later collectives throw `TransportError.peerFailed` naming it, so
    /// the group ends promptly; the first failure (by time) is rethrown here.
    public static func run<Result: Sendable>(
        worldSize: Int, stackSize: Int = 16 << 20, _ body: @escaping @Sendable (LocalTransport) throws -> Result
    ) throws -> [Result] {
        precondition(worldSize >= 1, "world size must be at least 1, got \(worldSize)")
        let rendezvous = Rendezvous(worldSize: worldSize)
        let results = ResultSlots<Result>(count: worldSize)
        let done = DispatchGroup()
        for r in 0..<worldSize {
            done.enter()
            let thread = Thread {
                let transport = LocalTransport(rank: r, rendezvous: rendezvous)
                do {
                    results.set(r, .success(try body(transport)))
                } catch {
                    rendezvous.fail(rank: r, reason: String(describing: error))
                    results.set(r, .failure(error))
                }
                done.leave()
            }
            thread.stackSize = stackSize
            thread.name = "halo-rank-\(r)"
            thread.start()
        }
        done.wait()
        if let failure = rendezvous.failureDescription {
            // Prefer the failing rank's own error over the peers' "peer failed" echoes.
            if case .failure(let error) = results.get(failure.rank) { throw error }
            throw TransportError.peerFailed(rank: failure.rank, reason: failure.reason)
        }
        return try (0..<worldSize).map { try results.get($0)!.get() }
    }

    private func take() -> Int {
        defer { nextOperation += 1 }
        return nextOperation
    }

    public func startAllToAll(_ messages: [[UInt8]]) throws -> any PendingAllToAll {
        guard messages.count == worldSize else {
            throw TransportError.invalidArgument("all-to-all needs \(worldSize) messages, got \(messages.count)")
        }
        let op = take()
        try rendezvous.deposit(op, rank: rank, .messages(messages))
        return LocalPendingAllToAll(transport: self, operation: op)
    }

    fileprivate func peek(_ op: Int, peer: Int) throws -> Contribution? {
        try rendezvous.peek(op, rank: rank, peer: peer)
    }

    fileprivate func collect(_ op: Int) throws -> (messages: [[UInt8]], completedAt: UInt64) {
        let (contributions, completedAt) = try rendezvous.collectTimed(op, rank: rank)
        return (messages(contributions), completedAt)
    }

    private func messages(_ contributions: [Contribution]) -> [[UInt8]] {
        contributions.map { c -> [UInt8] in
            guard case .messages(let m) = c else { preconditionFailure("collective calls out of order across ranks") }
            return m[rank]
        }
    }

    public func allReduceSum(_ values: inout [Float]) throws {
        let op = take()
        try rendezvous.deposit(op, rank: rank, .floats(values))
        values = try finishAllReduce(op, count: values.count).sum
    }

    public func startAllReduceSum(_ values: [Float]) throws -> any PendingAllReduce {
        let op = take()
        try rendezvous.deposit(op, rank: rank, .floats(values))
        return LocalPendingAllReduce(transport: self, operation: op, count: values.count)
    }

    /// One rank sums every element in rank order (`finishAllReduce`), whatever the vector.
    public var sumIsIndependentOfVectorLayout: Bool { true }

    /// Operation `op`'s sum (blocks until every rank contributed). One rank sums, in rank order, and every rank gets
    /// that same array: bit-identical results, and P·n additions per reduction rather than P²·n when each rank summed
    /// all P contributions itself (which made 128 ranks on one host spend most of an epoch summing gradients).
    fileprivate func finishAllReduce(_ op: Int, count: Int) throws -> (sum: [Float], completedAt: UInt64) {
        let (sum, completedAt) = try rendezvous.collectReduced(op, rank: rank) { contributions in
            var values = [Float](repeating: 0, count: count)
            try Self.sumInRankOrder(contributions, into: &values) { if case .floats(let v) = $0 { v } else { nil } }
            return .floats(values)
        }
        guard case .floats(let values) = sum else { preconditionFailure("collective calls out of order across ranks") }
        return (values, completedAt)
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        let op = take()
        let count = values.count
        try rendezvous.deposit(op, rank: rank, .doubles(values))
        let (sum, _) = try rendezvous.collectReduced(op, rank: rank) { contributions in
            var values = [Double](repeating: 0, count: count)
            try Self.sumInRankOrder(contributions, into: &values) { if case .doubles(let v) = $0 { v } else { nil } }
            return .doubles(values)
        }
        guard case .doubles(let v) = sum else { preconditionFailure("collective calls out of order across ranks") }
        values = v
    }

    private static func sumInRankOrder<T: FloatingPoint>(
        _ contributions: [Contribution], into values: inout [T], _ unwrap: (Contribution) -> [T]?
    ) throws {
        let arrays = contributions.map(unwrap)
        guard arrays.allSatisfy({ $0?.count == values.count }) else {
            throw TransportError.invalidArgument("all-reduce lengths differ across ranks: \(arrays.map { $0?.count ?? -1 })")
        }
        for i in values.indices {
            var s = arrays[0]![i]
            for r in 1..<arrays.count { s += arrays[r]![i] }
            values[i] = s
        }
    }

    public func broadcast(_ bytes: inout [UInt8], root: Int) throws {
        guard (0..<worldSize).contains(root) else { throw TransportError.invalidArgument("broadcast root \(root) outside 0..<\(worldSize)") }
        let op = take()
        try rendezvous.deposit(op, rank: rank, .bytes(rank == root ? bytes : []))
        let contributions = try rendezvous.collect(op, rank: rank)
        guard case .bytes(let b) = contributions[root] else { preconditionFailure("collective calls out of order across ranks") }
        bytes = b
    }

    public func barrier() throws {
        let op = take()
        try rendezvous.deposit(op, rank: rank, .bytes([]))
        _ = try rendezvous.collect(op, rank: rank)
    }

    public func fail(reason: String) {
        rendezvous.fail(rank: rank, reason: reason)
    }

    // Channels: a message is in the receiver's mailbox the moment it is sent, so a send is complete at once.

    public func send(_ bytes: [UInt8], stamp: Int, to peer: Int, on channel: ChannelID) throws -> any PendingSend {
        guard (0..<worldSize).contains(peer), peer != rank else {
            throw TransportError.invalidArgument("rank \(rank) cannot send on a channel to rank \(peer)")
        }
        let arrived = try rendezvous.post(ChannelMessage(stamp: stamp, bytes: bytes, arrivalTime: 0),
                                          from: rank, to: peer, on: channel)
        return CompletedSend(completionTime: arrived)
    }

    public func takeArrived(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage] {
        try rendezvous.take(from: peer, to: rank, on: channel, blocking: false)
    }

    public func waitForMessages(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage] {
        try rendezvous.take(from: peer, to: rank, on: channel, blocking: true)
    }
}

/// A send that completed when it was made.
public final class CompletedSend: PendingSend {
    public let completionTime: UInt64?
    public init(completionTime: UInt64) { self.completionTime = completionTime }
    public var isComplete: Bool { true }
    public func wait() throws {}
}

/// A reduction whose contribution is deposited; the sum is taken on `wait()`, when every rank has contributed.
private final class LocalPendingAllReduce: PendingAllReduce {
    private let transport: LocalTransport
    private let operation: Int
    private let count: Int
    private var result: (sum: [Float], completedAt: UInt64)?

    init(transport: LocalTransport, operation: Int, count: Int) {
        self.transport = transport
        self.operation = operation
        self.count = count
    }

    func wait() throws -> [Float] {
        if let result { return result.sum }
        let finished = try transport.finishAllReduce(operation, count: count)
        result = finished
        return finished.sum
    }

    var completionTime: UInt64? { result?.completedAt }
}

private final class LocalPendingAllToAll: PendingAllToAll {
    private let transport: LocalTransport
    private let operation: Int
    private var result: [[UInt8]]?
    private(set) var completionTime: UInt64?

    init(transport: LocalTransport, operation: Int) {
        self.transport = transport
        self.operation = operation
    }

    func poll(peer: Int) throws -> [UInt8]? {
        if let result { return result[peer] }
        guard case .messages(let m)? = try transport.peek(operation, peer: peer) else { return nil }
        return m[transport.rank]
    }

    func wait() throws -> [[UInt8]] {
        if let result { return result }
        let (messages, completedAt) = try transport.collect(operation)
        result = messages
        completionTime = completedAt
        return messages
    }
}

/// One rank's input to a collective.
enum Contribution {
    case messages([[UInt8]])
    case floats([Float])
    case doubles([Double])
    case bytes([UInt8])
}

/// The meeting point of the in-process ranks.
final class Rendezvous: @unchecked Sendable {
    let worldSize: Int
    private let condition = NSCondition()
    /// Per collective number: every rank's contribution and how many ranks have collected.
    private var rounds: [Int: Round] = [:]

    private struct Round {
        var contributions: [Contribution?]
        var arrived = 0
        var collected = 0
        var completedAt: UInt64 = 0
        /// A reduction's result, computed once by the first rank to collect (`collectReduced`).
        var reduced: Result<Contribution, any Error>?
        var reducing = false

        init(worldSize: Int) { contributions = Array(repeating: nil, count: worldSize) }
    }
    private var failure: (rank: Int, reason: String)?
    /// Channel messages sent and not yet taken.
    private var mailboxes: [MailboxKey: [ChannelMessage]] = [:]

    private struct MailboxKey: Hashable {
        var sender: Int
        var receiver: Int
        var channel: ChannelID
    }

    init(worldSize: Int) { self.worldSize = worldSize }

    func deposit(_ op: Int, rank: Int, _ contribution: Contribution) throws {
        condition.lock()
        defer { condition.unlock() }
        if let failure, failure.rank != rank { throw TransportError.peerFailed(rank: failure.rank, reason: failure.reason) }
        var round = rounds[op] ?? Round(worldSize: worldSize)
        round.contributions[rank] = contribution
        round.arrived += 1
        if round.arrived == worldSize {
            // In process, a message has "arrived" once its sender deposited it.
            round.completedAt = DispatchTime.now().uptimeNanoseconds
            condition.broadcast()
        }
        rounds[op] = round
    }

    /// Blocks until all ranks deposited for `op`; the round is freed once every rank has collected it.
    func collect(_ op: Int, rank: Int) throws -> [Contribution] {
        try collectTimed(op, rank: rank).contributions
    }

    /// `collect`, also returning when the last rank deposited.
    func collectTimed(_ op: Int, rank: Int) throws -> (contributions: [Contribution], completedAt: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let failure, failure.rank != rank { throw TransportError.peerFailed(rank: failure.rank, reason: failure.reason) }
            if let round = rounds[op], round.arrived == worldSize {
                let contributions = round.contributions.map { $0! }
                if round.collected + 1 == worldSize { rounds[op] = nil } else { rounds[op]!.collected += 1 }
                return (contributions, round.completedAt)
            }
            try throwInsteadOfWaitingAfterFailure()
            condition.wait()
        }
    }

    /// `collectTimed` for a reduction: the first rank to find every contribution there computes `reduce` (outside the
    /// lock, so other collectives and channel messages go on meanwhile) and every rank returns that one result.
    func collectReduced(
        _ op: Int, rank: Int, _ reduce: ([Contribution]) throws -> Contribution
    ) throws -> (result: Contribution, completedAt: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let failure, failure.rank != rank { throw TransportError.peerFailed(rank: failure.rank, reason: failure.reason) }
            if let round = rounds[op], round.arrived == worldSize {
                if let reduced = round.reduced {
                    if round.collected + 1 == worldSize { rounds[op] = nil } else { rounds[op]!.collected += 1 }
                    return (try reduced.get(), round.completedAt)
                }
                if !round.reducing {
                    rounds[op]!.reducing = true
                    let contributions = round.contributions.map { $0! }
                    condition.unlock()
                    let result = Result { try reduce(contributions) }
                    condition.lock()
                    rounds[op]!.reduced = result
                    condition.broadcast()
                    continue
                }
            }
            try throwInsteadOfWaitingAfterFailure()
            condition.wait()
        }
    }

    /// `peer`'s contribution to `op` if it has deposited it; never blocks.
    func peek(_ op: Int, rank: Int, peer: Int) throws -> Contribution? {
        condition.lock()
        defer { condition.unlock() }
        if let failure, failure.rank != rank { throw TransportError.peerFailed(rank: failure.rank, reason: failure.reason) }
        return rounds[op]?.contributions[peer]
    }

    /// Appends a channel message to the receiver's mailbox; returns its arrival time.
    func post(_ message: ChannelMessage, from sender: Int, to receiver: Int, on channel: ChannelID) throws -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        if let failure, failure.rank != sender { throw TransportError.peerFailed(rank: failure.rank, reason: failure.reason) }
        var stamped = message
        stamped.arrivalTime = DispatchTime.now().uptimeNanoseconds
        mailboxes[MailboxKey(sender: sender, receiver: receiver, channel: channel), default: []].append(stamped)
        condition.broadcast()
        return stamped.arrivalTime
    }

    /// Empties a mailbox, oldest first; with `blocking`, waits until it holds at least one message.
    func take(from sender: Int, to receiver: Int, on channel: ChannelID, blocking: Bool) throws -> [ChannelMessage] {
        let key = MailboxKey(sender: sender, receiver: receiver, channel: channel)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let messages = mailboxes.removeValue(forKey: key), !messages.isEmpty { return messages }
            if let failure, failure.rank != receiver {
                throw TransportError.peerFailed(rank: failure.rank, reason: failure.reason)
            }
            if !blocking { return [] }
            try throwInsteadOfWaitingAfterFailure()
            condition.wait()
        }
    }

    /// Called with the lock held where a rank would wait: once any rank has failed, the calling rank included,
    /// nothing it waits for may come. The checks above skip the caller's own failure (a rank that reported one
    /// may still get what has already arrived), but a thread of the failed rank that outlives it (a gradient
    /// reduction's queue waiting for its peers) would otherwise wait forever.
    private func throwInsteadOfWaitingAfterFailure() throws {
        if let failure { throw TransportError.peerFailed(rank: failure.rank, reason: failure.reason) }
    }

    func fail(rank: Int, reason: String) {
        condition.lock()
        if failure == nil { failure = (rank, reason) }
        condition.broadcast()
        condition.unlock()
    }

    var failureDescription: (rank: Int, reason: String)? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }
}

/// Per-rank result slots written by the rank threads.
private final class ResultSlots<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Swift.Result<Value, any Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: Swift.Result<Value, any Error>) { lock.withLock { slots[i] = r } }
    func get(_ i: Int) -> Swift.Result<Value, any Error>? { lock.withLock { slots[i] } }
}
