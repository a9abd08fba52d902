import HaloTensor

/// The position of a graph layer in a model, counted from the input (0) upwards.
public struct LayerIndex: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public let rawValue: Int
    public init(_ rawValue: Int) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "layer \(rawValue)" }

    /// Encoded as the bare number.
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(Int.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Where a dropout mask is applied; part of the mask's random-number address.
public enum DropoutSite: Hashable, Sendable {
    /// On the input features, before layer 0.
    case input
    /// On the output of hidden layer `l` (after normalisation and ReLU).
    case hidden(LayerIndex)

    var counterWord: UInt32 {
        switch self {
        case .input: return 0xFFFF_0000
        case .hidden(let l): return UInt32(truncatingIfNeeded: l.rawValue)
        }
    }
}

/// Everything a forward or backward pass needs beyond the data: which epoch (for randomness), whether dropout is
/// active, the random-number key, and the threads to use.
public struct StepContext: Sendable {
    public var epoch: Int
    public var training: Bool
    public var random: CounterRandom
    public var pool: ComputePool

    public init(epoch: Int, training: Bool, random: CounterRandom, pool: ComputePool) {
        self.epoch = epoch
        self.training = training
        self.random = random
        self.pool = pool
    }
}
