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

/// The precision axis of an exchange: the bit widths of the training messages a rank *sends*.
///
/// Widths travel in each message's header, so receivers never consult the policy and sender and receiver never
/// have to agree beforehand. Evaluation messages are always full precision and do not consult it either.
public protocol PrecisionPolicy: AnyObject {
    /// The widths of the rows of this rank's next message on `site` to `peer`.
    func bits(_ site: MessageSite, to peer: Int) -> BitAssignment
    /// Sees every training message's per-row ranges `hi − lo` (AdaQP's variance tracing); `width` is the row width.
    func didEncode(_ site: MessageSite, to peer: Int, ranges: [Float], width: Int)
    /// What a pipelined sender measured on a channel just before sending (PipeQS moves its widths by it): the
    /// block's drift, and whether the channel is congested (its link is late, or the sender's last epoch was
    /// bound by network communication), so that fewer bytes would help.
    func observe(_ site: MessageSite, to peer: Int, drift: Float, congested: Bool)
    /// Before each training epoch; collective (every rank calls it), so it may communicate (assignment cycles).
    func beginEpoch(_ epoch: Int) throws
    /// Adds what the policy decided over the run to the report.
    func contribute(to report: inout TrainingReport)
    /// Writes what the policy carries across epochs into a checkpoint (nothing, for policies whose widths follow
    /// from the settings and the epoch alone).
    func saveState(into writer: inout ByteWriter) throws
    /// Takes back what `saveState` wrote.
    func restoreState(from reader: inout ByteReader) throws
}

extension PrecisionPolicy {
    public func didEncode(_ site: MessageSite, to peer: Int, ranges: [Float], width: Int) {}
    public func observe(_ site: MessageSite, to peer: Int, drift: Float, congested: Bool) {}
    public func beginEpoch(_ epoch: Int) throws {}
    public func contribute(to report: inout TrainingReport) {}
    public func saveState(into writer: inout ByteWriter) throws {}
    public func restoreState(from reader: inout ByteReader) throws {}
}

/// One width for every message: `.full` is the vanilla baseline, 2/4/8 AdaQP's `uniform:B` ablation.
public final class UniformPrecision: PrecisionPolicy {
    public let width: BitWidth

    public init(_ width: BitWidth) { self.width = width }

    public func bits(_ site: MessageSite, to peer: Int) -> BitAssignment { .uniform(width) }
}
