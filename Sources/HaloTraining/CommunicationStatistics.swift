import HaloNN

/// What a rank's communication cost, accumulated until reset (the trainer resets it every epoch).
public struct CommunicationStatistics: Sendable, Equatable, Codable {
    /// Payload bytes this rank handed to the transport for other ranks (halo rows and their gradients).
    public var haloBytesSent = 0
    /// Of `haloBytesSent`, the forward messages (rows); the rest are backward messages (gradients).
    public var forwardBytesSent = 0
    /// Payload bytes of gradient and metric all-reduces this rank contributed.
    public var allReduceBytes = 0
    /// Seconds blocked waiting for halo messages (the part of communication compute did not hide).
    public var waitSeconds = 0.0
    /// Seconds spent inside all-reduce calls.
    public var allReduceSeconds = 0.0
    /// Seconds spent quantizing and dequantizing (packing and unpacking) halo messages.
    public var quantizeSeconds = 0.0
    /// Seconds from starting each halo transfer to the arrival of its last message, summed over transfers.
    /// `1 − waitSeconds / transferSeconds` is the fraction of communication hidden behind computation.
    public var transferSeconds = 0.0

    public init() {}
}

extension CommunicationStatistics {
    static func + (a: Self, b: Self) -> Self {
        var s = a
        s.haloBytesSent += b.haloBytesSent
        s.forwardBytesSent += b.forwardBytesSent
        s.allReduceBytes += b.allReduceBytes
        s.waitSeconds += b.waitSeconds
        s.allReduceSeconds += b.allReduceSeconds
        s.quantizeSeconds += b.quantizeSeconds
        s.transferSeconds += b.transferSeconds
        return s
    }
}
