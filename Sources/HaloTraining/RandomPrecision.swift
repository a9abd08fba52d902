import HaloNN
import HaloQuantization
import HaloTensor

/// AdaQP's `random` ablation: each row gets 2, 4 or 8 bits uniformly at random, redrawn every cycle.
///
/// The draw is addressed by (seed, cycle, layer and direction, global node id), which sender and receiver both
/// know, so the two agree without exchanging anything.
public final class RandomPrecision: PrecisionPolicy, EpochAware {
    private let rows: MessageRows
    private let random: CounterRandom
    private let assignCycle: Int
    private var cycle = 0
    private var cache: [MessageSite: (sent: [BitAssignment], received: [BitAssignment])] = [:]

    public init(rows: MessageRows, seed: UInt64, assignCycle: Int) {
        self.rows = rows
        random = CounterRandom(seed: seed)
        self.assignCycle = max(1, assignCycle)
    }

    public func beginEpoch(_ epoch: Int) throws {
        let c = epoch / assignCycle
        if c != cycle {
            cycle = c
            cache.removeAll()
        }
    }

    private func widths(_ nodes: [Int32], _ site: MessageSite) -> BitAssignment {
        let choices: [BitWidth] = [.two, .four, .eight]
        return .perRow(nodes.map { node in
            let w = random.word64(.assignment, UInt32(cycle), site.counterWord, UInt32(bitPattern: node), index: 0)
            return choices[Int(w % 3)]
        })
    }

    private func tables(_ site: MessageSite) -> (sent: [BitAssignment], received: [BitAssignment]) {
        if let t = cache[site] { return t }
        let t = (rows.sent[site.direction]!.map { widths($0, site) }, rows.received[site.direction]!.map { widths($0, site) })
        cache[site] = t
        return t
    }

    public func bitsSent(layer: LayerIndex, direction: MessageDirection, to peer: Int) -> BitAssignment {
        tables(MessageSite(layer: layer, direction: direction)).sent[peer]
    }

    public func bitsReceived(layer: LayerIndex, direction: MessageDirection, from peer: Int) -> BitAssignment {
        tables(MessageSite(layer: layer, direction: direction)).received[peer]
    }

    public func didSend(layer: LayerIndex, direction: MessageDirection, to peer: Int, ranges: [Float], width: Int) {}
}

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

/// Something that changes state at epoch boundaries (assignment cycles). Collective when it communicates.
public protocol EpochAware: AnyObject {
    func beginEpoch(_ epoch: Int) throws
}
