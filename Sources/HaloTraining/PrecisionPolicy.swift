import HaloNN
import HaloQuantization

/// Which way a message travels through a layer.
public enum MessageDirection: Int, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Boundary rows to the ranks that hold them as halo nodes.
    case forward
    /// Halo-row gradients back to the rows' owners.
    case backward

    public var description: String { self == .forward ? "forward" : "backward" }

    /// Encoded by name.
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let direction = Self.allCases.first(where: { $0.description == name }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown direction '\(name)'"))
        }
        self = direction
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The bit widths of the training messages a rank sends and receives.
///
/// Sender and receiver must agree on every row's width: the width is not on the wire. Evaluation messages are
/// always full precision and do not consult the policy.
public protocol PrecisionPolicy: AnyObject {
    func bitsSent(layer: LayerIndex, direction: MessageDirection, to peer: Int) -> BitAssignment
    func bitsReceived(layer: LayerIndex, direction: MessageDirection, from peer: Int) -> BitAssignment
    /// Sees every training message's per-row ranges `hi − lo` (AdaQP's variance tracing); `width` is the row width.
    func didSend(layer: LayerIndex, direction: MessageDirection, to peer: Int, ranges: [Float], width: Int)
}

/// One width for every message: `.full` is the vanilla baseline, 2/4/8 AdaQP's `uniform:B` ablation.
public final class UniformPrecision: PrecisionPolicy {
    public let bits: BitWidth

    public init(_ bits: BitWidth) { self.bits = bits }

    public func bitsSent(layer: LayerIndex, direction: MessageDirection, to peer: Int) -> BitAssignment { .uniform(bits) }
    public func bitsReceived(layer: LayerIndex, direction: MessageDirection, from peer: Int) -> BitAssignment { .uniform(bits) }
    public func didSend(layer: LayerIndex, direction: MessageDirection, to peer: Int, ranges: [Float], width: Int) {}
}
