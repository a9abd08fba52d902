/// Point-to-point messages that are not collective: what pipelined training needs.
///
/// A collective all-to-all makes every rank call it in the same order and lets nobody skip a round. Pipelined
/// training consumes messages from earlier epochs, may leave a late message unconsumed and use a cached one
/// instead, and may send nothing on a link that is still busy. It therefore talks over *channels*: one stream of
/// messages per (sender, receiver, channel id), in which
/// - a send returns at once and never waits for the receiver;
/// - messages arrive in the order they were sent (per sender and channel), each with the sender's `stamp`
///   (training stamps a message with the epoch it was produced in);
/// - several messages may be in flight at once, and the receiver can take whatever has arrived without blocking,
///   or block until something arrives.
///
/// Channel traffic never interferes with collective operations, which may be in flight at the same time.
public struct ChannelID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Distinct channels must have distinct values in `0..<ChannelID.limit`.
    public let rawValue: Int

    /// Channel ids are below this (so they fit any MPI implementation's tag range, which is at least 32767).
    public static let limit = 32767

    public init(_ rawValue: Int) {
        precondition((0..<Self.limit).contains(rawValue), "channel id \(rawValue) outside 0..<\(Self.limit)")
        self.rawValue = rawValue
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "channel \(rawValue)" }
}

/// One message received on a channel.
public struct ChannelMessage: Sendable, Equatable {
    /// The sender's stamp (the epoch a training message was produced in).
    public var stamp: Int
    public var bytes: [UInt8]
    /// When it arrived at the receiver (`DispatchTime` uptime nanoseconds).
    public var arrivalTime: UInt64

    public init(stamp: Int, bytes: [UInt8], arrivalTime: UInt64) {
        self.stamp = stamp
        self.bytes = bytes
        self.arrivalTime = arrivalTime
    }
}

/// A channel send in flight.
public protocol PendingSend: AnyObject {
    /// Whether the message has left the sender (its buffer is free); never blocks. On a link slower than the
    /// sender's computation, a send that is still incomplete when the next one is due is the sign of a late link.
    var isComplete: Bool { get }
    /// When it completed (`DispatchTime` uptime nanoseconds), once known.
    var completionTime: UInt64? { get }
    /// `isComplete` as seen at the sender's `clock` (its epoch). Real transports ignore the clock; a scripted test
    /// transport decides by it, so what a sender sees never depends on thread timing.
    func isComplete(clock: Int) -> Bool
    /// Blocks until the send is complete.
    func wait() throws
}

extension PendingSend {
    public func isComplete(clock: Int) -> Bool { isComplete }
}

/// The channel half of a transport.
public protocol MessageChannels: AnyObject {
    /// Sends `bytes` to `peer` (not oneself) on `channel`, stamped `stamp`. Returns at once.
    func send(_ bytes: [UInt8], stamp: Int, to peer: Int, on channel: ChannelID) throws -> any PendingSend

    /// Every message from `peer` on `channel` that has arrived and was not taken yet, oldest first; never blocks.
    ///
    /// `clock` is the receiver's notion of now (training passes the epoch). Real transports ignore it; a scripted
    /// test transport decides by it which messages have "arrived".
    func takeArrived(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage]

    /// Blocks until at least one message from `peer` on `channel` is there (a message a scripted transport holds
    /// back is delivered to a receiver that waits for it); returns every message there, oldest first.
    func waitForMessages(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage]

    /// Whether messages cross a network, whose bandwidth can be what bounds an epoch, rather than memory between
    /// threads. Pipelined training lowers its widths on a communication-bound epoch only when they do.
    var crossesNetwork: Bool { get }
}
