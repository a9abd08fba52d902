import HaloNN
import HaloTransport

/// One kind of message: a layer's forward rows or its backward gradients.
public struct MessageSite: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var layer: LayerIndex
    public var direction: MessageDirection

    public init(layer: LayerIndex, direction: MessageDirection) {
        self.layer = layer
        self.direction = direction
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.layer.rawValue, a.direction.rawValue) < (b.layer.rawValue, b.direction.rawValue)
    }

    var counterWord: UInt32 { UInt32(truncatingIfNeeded: layer.rawValue) << 1 | UInt32(direction.rawValue) }

    public var description: String { "layer \(layer.rawValue) \(direction)" }
}

extension MessageSite {
    /// The channel this site's pipelined messages travel on.
    var channel: ChannelID { ChannelID(Int(counterWord)) }
}

extension MessageSite {
    /// Written into checkpoints as (layer, direction).
    func write(to writer: inout ByteWriter) {
        writer.append(layer.rawValue)
        writer.append(direction.rawValue)
    }

    init(from reader: inout ByteReader) throws {
        let layer: Int = try reader.read(), direction: Int = try reader.read()
        guard layer >= 0, let d = MessageDirection(rawValue: direction) else {
            throw CheckpointStateError("message site (layer \(layer), direction \(direction))")
        }
        self.init(layer: LayerIndex(layer), direction: d)
    }
}
