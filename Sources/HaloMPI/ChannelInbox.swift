import Foundation
import HaloTransport

/// Channel messages that have arrived and wait to be taken, per (sender, channel): the hand-over point between the
/// communication thread, which receives them, and the caller's threads (`takeArrived`, `waitForMessages`).
///
/// Once the transport breaks (an MPI error) every call throws and every waiter wakes, so that nobody waits for a
/// message that can no longer come; likewise once the communication thread has stopped.
final class ChannelInbox: @unchecked Sendable {
    struct Key: Hashable {
        var peer: Int
        var channel: Int
    }

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var waiting: [Key: [ChannelMessage]] = [:]
    private var failure: TransportError?
    private var closed = false

    /// Adds messages in arrival order (comm thread); each key's messages must come in the order they were sent.
    func deliver(_ messages: [(key: Key, message: ChannelMessage)]) {
        guard !messages.isEmpty else { return }
        condition.lock()
        for (key, message) in messages { waiting[key, default: []].append(message) }
        condition.broadcast()
        condition.unlock()
    }

    /// The transport broke: wakes every waiter with `error`; later calls throw it.
    func fail(_ error: TransportError) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }

    /// The communication thread stopped: nothing more will arrive.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Every waiting message from `peer` on `channel`, oldest first (possibly none); never blocks.
    func take(_ key: Key) throws -> [ChannelMessage] {
        condition.lock()
        defer { condition.unlock() }
        try checkUsable()
        return waiting.removeValue(forKey: key) ?? []
    }

    /// Blocks until at least one message from `peer` on `channel` is waiting; returns all of them, oldest first.
    func wait(_ key: Key) throws -> [ChannelMessage] {
        condition.lock()
        defer { condition.unlock() }
        while true {
            try checkUsable()
            if let messages = waiting.removeValue(forKey: key), !messages.isEmpty { return messages }
            condition.wait()
        }
    }

    /// Throws if the transport broke or stopped (caller holds the lock).
    private func checkUsable() throws {
        if let failure { throw failure }
        if closed { throw TransportError.backend("MPI transport is closed") }
    }
}
