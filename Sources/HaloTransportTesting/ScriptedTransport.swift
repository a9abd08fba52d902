import Foundation
import HaloTransport

/// Ranks as threads, like `LocalTransport`, with channel messages delivered when a test says so.
///
/// Collective operations go through an in-process `LocalTransport` unchanged. Channel messages wait in the
/// network until a `DeliveryRule` lets a receiver's non-blocking `takeArrived` see them, which makes every
/// late-message path of pipelined training reproducible without sleeps: "every message one epoch late", "never
/// before the receiver has asked twice", "this link never delivers on its own". A receiver that *waits* gets the
/// oldest pending message whatever the rule says (a late message is late, not lost), so a run always finishes.
/// A send counts as complete once the rule would let its receiver see it at the *sender's* clock (the epoch the
/// sender asks at), so a sender sees a late link as a send still incomplete when its next one is due, as it would
/// on a real network. Under rules decided by stamps and clocks alone (`late(by:)`, or any such closure), a run is
/// reproducible: the all-reduce that ends every epoch keeps ranks in step, so everything stamped before the
/// receiver's clock has been sent when it asks. `immediate` and `afterAsks` also depend on whether a message was
/// sent before an ask, which is thread timing. Under `afterAsks` and `onlyWhenWaitedFor` a send never completes
/// by the rule (only `wait` sees it delivered). A blocked receiver or sender gives up after `deadline` seconds
/// with an error naming the channel, so a broken protocol fails a test instead of hanging it.
public final class ScriptedTransport: Transport, @unchecked Sendable {
    private let local: LocalTransport
    private let network: ScriptedNetwork

    public var rank: Int { local.rank }
    public var worldSize: Int { local.worldSize }
    /// What the transport claims, so a test can exercise the paths that only networked ranks take.
    public let crossesNetwork: Bool

    init(local: LocalTransport, network: ScriptedNetwork, crossesNetwork: Bool) {
        self.local = local
        self.network = network
        self.crossesNetwork = crossesNetwork
    }

    /// Runs `body` on one thread per rank (see `LocalTransport.run`), channel delivery governed by `rule`.
    /// `crossesNetwork` is what the transport reports (the messages stay in memory either way).
    public static func run<Result: Sendable>(
        worldSize: Int, rule: DeliveryRule, deadline: Double = 60, crossesNetwork: Bool = false,
        _ body: @escaping @Sendable (ScriptedTransport) throws -> Result
    ) throws -> [Result] {
        let network = ScriptedNetwork(rule: rule, deadline: deadline)
        return try LocalTransport.run(worldSize: worldSize) { local in
            let transport = ScriptedTransport(local: local, network: network, crossesNetwork: crossesNetwork)
            do {
                return try body(transport)
            } catch {
                network.fail(rank: local.rank, reason: String(describing: error))
                throw error
            }
        }
    }

    /// Messages sent to this rank and not yet delivered, over all peers and channels.
    public var undeliveredCount: Int { network.undelivered(to: rank) }

    public func startAllToAll(_ messages: [[UInt8]]) throws -> any PendingAllToAll { try local.startAllToAll(messages) }
    public func allReduceSum(_ values: inout [Float]) throws { try local.allReduceSum(&values) }
    public func allReduceSum(_ values: inout [Double]) throws { try local.allReduceSum(&values) }
    public func startAllReduceSum(_ values: [Float]) throws -> any PendingAllReduce { try local.startAllReduceSum(values) }
    public var sumIsIndependentOfVectorLayout: Bool { local.sumIsIndependentOfVectorLayout }
    public func broadcast(_ bytes: inout [UInt8], root: Int) throws { try local.broadcast(&bytes, root: root) }
    public func barrier() throws { try local.barrier() }

    public func fail(reason: String) {
        network.fail(rank: rank, reason: reason)
        local.fail(reason: reason)
    }

    public func send(_ bytes: [UInt8], stamp: Int, to peer: Int, on channel: ChannelID) throws -> any PendingSend {
        guard (0..<worldSize).contains(peer), peer != rank else {
            throw TransportError.invalidArgument("rank \(rank) cannot send on a channel to rank \(peer)")
        }
        return try network.post(bytes, stamp: stamp, from: rank, to: peer, on: channel)
    }

    public func takeArrived(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage] {
        try network.take(from: peer, to: rank, on: channel, clock: clock, waiting: false)
    }

    public func waitForMessages(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage] {
        try network.take(from: peer, to: rank, on: channel, clock: clock, waiting: true)
    }
}

/// What a delivery rule sees of one pending message when a receiver asks without waiting.
public struct PendingDelivery: Sendable {
    public var sender: Int
    public var receiver: Int
    public var channel: ChannelID
    /// The sender's stamp (the epoch the message was produced in).
    public var stamp: Int
    /// The receiver's clock at this ask (its epoch).
    public var clock: Int
    /// How many non-blocking asks have seen this message pending, this one included (1 at the first).
    public var asks: Int
}

/// When a pending channel message becomes visible to a non-blocking receiver. Messages of one sender on one
/// channel stay in order: a message is delivered only with (or after) every message sent before it.
public struct DeliveryRule: Sendable {
    public let isVisible: @Sendable (PendingDelivery) -> Bool

    public init(_ isVisible: @escaping @Sendable (PendingDelivery) -> Bool) { self.isVisible = isVisible }

    /// Every message is there as soon as it is sent.
    public static let immediate = DeliveryRule { _ in true }
    /// A message stamped e is visible from clock e + k on (k = 1: "exactly one epoch late").
    public static func late(by k: Int) -> DeliveryRule { DeliveryRule { $0.clock >= $0.stamp + k } }
    /// A message is visible only from the `n`-th time a receiver asked while it was pending.
    public static func afterAsks(_ n: Int) -> DeliveryRule { DeliveryRule { $0.asks >= n } }
    /// Nothing is visible without waiting.
    public static let onlyWhenWaitedFor = DeliveryRule { _ in false }
}

/// The messages in flight between the scripted ranks.
final class ScriptedNetwork: @unchecked Sendable {
    private let rule: DeliveryRule
    let deadline: Double
    private let condition = NSCondition()
    private var queues: [Key: [Entry]] = [:]
    private var failure: (rank: Int, reason: String)?
    /// Each rank's clock: the largest stamp it sent or clock it asked with.
    private var clocks: [Int: Int] = [:]

    private struct Key: Hashable {
        var sender: Int
        var receiver: Int
        var channel: ChannelID
    }

    private struct Entry {
        var stamp: Int
        var bytes: [UInt8]
        var asks = 0
        var send: ScriptedSend
    }

    init(rule: DeliveryRule, deadline: Double) {
        self.rule = rule
        self.deadline = deadline
    }

    func post(_ bytes: [UInt8], stamp: Int, from sender: Int, to receiver: Int, on channel: ChannelID) throws -> ScriptedSend {
        condition.lock()
        defer { condition.unlock() }
        try checkFailure(excluding: sender)
        clocks[sender] = max(clocks[sender] ?? stamp, stamp)
        let send = ScriptedSend(network: self, delivery: PendingDelivery(
            sender: sender, receiver: receiver, channel: channel, stamp: stamp, clock: stamp, asks: 0))
        queues[Key(sender: sender, receiver: receiver, channel: channel), default: []]
            .append(Entry(stamp: stamp, bytes: bytes, send: send))
        condition.broadcast()
        return send
    }

    func take(from sender: Int, to receiver: Int, on channel: ChannelID, clock: Int, waiting: Bool) throws -> [ChannelMessage] {
        let key = Key(sender: sender, receiver: receiver, channel: channel)
        condition.lock()
        defer { condition.unlock() }
        if clock != .max { clocks[receiver] = max(clocks[receiver] ?? clock, clock) }
        if !waiting {
            try checkFailure(excluding: receiver)
            guard var queue = queues[key], !queue.isEmpty else { return [] }
            var visible = 0
            for i in queue.indices {
                queue[i].asks += 1
                let pending = PendingDelivery(sender: sender, receiver: receiver, channel: channel,
                                              stamp: queue[i].stamp, clock: clock, asks: queue[i].asks)
                if visible == i && rule.isVisible(pending) { visible += 1 }
            }
            queues[key] = queue
            return deliver(key, count: visible)
        }
        let giveUp = Date(timeIntervalSinceNow: deadline)
        while queues[key]?.isEmpty ?? true {
            try checkFailure(excluding: receiver)
            guard condition.wait(until: giveUp) || !(queues[key]?.isEmpty ?? true) else {
                throw TransportError.backend(
                    "scripted transport: rank \(receiver) waited \(deadline) s for rank \(sender) on \(channel)")
            }
        }
        // Everything visible, and at least the oldest message: a late message arrives when waited for.
        var visible = 0
        for entry in queues[key]! {
            let pending = PendingDelivery(sender: sender, receiver: receiver, channel: channel, stamp: entry.stamp,
                                          clock: clock, asks: entry.asks + 1)
            guard rule.isVisible(pending) else { break }
            visible += 1
        }
        return deliver(key, count: max(visible, 1))
    }

    /// Removes the first `count` messages of a queue and completes their sends. Caller holds the lock.
    private func deliver(_ key: Key, count: Int) -> [ChannelMessage] {
        guard count > 0 else { return [] }
        let now = DispatchTime.now().uptimeNanoseconds
        let delivered = queues[key]!.prefix(count)
        queues[key]!.removeFirst(count)
        return delivered.map {
            $0.send.complete(at: now)
            return ChannelMessage(stamp: $0.stamp, bytes: $0.bytes, arrivalTime: now)
        }
    }

    /// Whether the rule lets a message be seen at its sender's clock (given, or the last it used).
    func isVisibleAtSenderClock(_ delivery: PendingDelivery, clock: Int? = nil) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        var d = delivery
        d.clock = clock ?? clocks[delivery.sender] ?? delivery.stamp
        return rule.isVisible(d)
    }

    func failed(excluding rank: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return failure.map { $0.rank != rank } ?? false
    }

    func undelivered(to receiver: Int) -> Int {
        condition.lock()
        defer { condition.unlock() }
        return queues.filter { $0.key.receiver == receiver }.reduce(0) { $0 + $1.value.count }
    }

    func fail(rank: Int, reason: String) {
        condition.lock()
        if failure == nil { failure = (rank, reason) }
        condition.broadcast()
        condition.unlock()
    }

    private func checkFailure(excluding rank: Int) throws {
        if let failure, failure.rank != rank { throw TransportError.peerFailed(rank: failure.rank, reason: failure.reason) }
    }
}

/// A scripted send: complete once the rule shows it to its receiver at the sender's clock; `wait` also returns
/// once it was delivered.
final class ScriptedSend: PendingSend, @unchecked Sendable {
    private unowned let network: ScriptedNetwork
    private let delivery: PendingDelivery
    private let condition = NSCondition()
    private var deliveredAt: UInt64?

    init(network: ScriptedNetwork, delivery: PendingDelivery) {
        self.network = network
        self.delivery = delivery
    }

    var isComplete: Bool { network.isVisibleAtSenderClock(delivery) }
    func isComplete(clock: Int) -> Bool { network.isVisibleAtSenderClock(delivery, clock: clock) }

    /// A scripted link has no durations (lateness is the rule's alone), so that nothing a sender decides depends
    /// on thread timing.
    var completionTime: UInt64? { nil }

    func complete(at time: UInt64) {
        condition.lock()
        deliveredAt = time
        condition.broadcast()
        condition.unlock()
    }

    func wait() throws {
        // The network's lock is never taken while this send's is held (delivery takes them the other way round).
        let giveUp = Date(timeIntervalSinceNow: network.deadline)
        while !network.isVisibleAtSenderClock(delivery) {
            if network.failed(excluding: delivery.sender) {
                throw TransportError.peerFailed(rank: delivery.receiver, reason: "failed before taking a message")
            }
            guard Date() < giveUp else {
                throw TransportError.backend("scripted transport: a send of rank \(delivery.sender) on \(delivery.channel) was never delivered")
            }
            condition.lock()
            defer { condition.unlock() }
            if deliveredAt != nil { return }
            _ = condition.wait(until: Date(timeIntervalSinceNow: 0.01))
        }
    }
}
