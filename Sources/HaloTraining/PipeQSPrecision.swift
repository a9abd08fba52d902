import HaloQuantization

/// PipeQS's widths: one per channel (site, peer), moved by what the sender measures just before each send.
///
/// - Congested (the channel's previous send has not completed or took longer than the epoch's computation, or the
///   sender's last epoch was bound by network communication): one step down (32 → 8 → 4 → 2), whatever the drift.
/// - Otherwise, high drift (`d > E` between the block about to be sent and the last one sent): one step up
///   (2 → 4 → 8 → 32), since the receiver will see a block that moved and should see it precisely.
/// - Otherwise unchanged.
///
/// Congestion outranks drift because on a saturated link a wider message does not reach the receiver sooner: it
/// delays every message behind it and the gradient all-reduce, so the receiver's blocks only get older. High drift
/// still forces the send (no skip, no bypass of it at the receiver); it just cannot buy precision the link lacks.
/// The published rule only ever raises precision; here widths move both ways. Each sender decides alone: the
/// width travels in the message header.
public final class PipeQSPrecision: PrecisionPolicy {
    private let settings: PipelineSettings
    private var widths: [ChannelKey: BitWidth] = [:]

    private struct ChannelKey: Hashable {
        var site: MessageSite
        var peer: Int
    }

    public init(settings: PipelineSettings) { self.settings = settings }

    public func bits(_ site: MessageSite, to peer: Int) -> BitAssignment {
        .uniform(widths[ChannelKey(site: site, peer: peer)] ?? settings.initialBits)
    }

    public func observe(_ site: MessageSite, to peer: Int, drift: Float, congested: Bool) {
        guard settings.adaptiveBits else { return }
        let key = ChannelKey(site: site, peer: peer)
        let current = widths[key] ?? settings.initialBits
        if congested {
            widths[key] = current.lower ?? current
        } else if drift.isFinite && Double(drift) > settings.driftThreshold {
            widths[key] = current.higher ?? current
        }
    }

    public func saveState(into writer: inout ByteWriter) {
        let keys = widths.keys.sorted { ($0.site, $0.peer) < ($1.site, $1.peer) }
        writer.append(keys.count)
        for key in keys {
            key.site.write(to: &writer)
            writer.append(key.peer)
            writer.append(widths[key]!.rawValue)
        }
    }

    public func restoreState(from reader: inout ByteReader) throws {
        widths = [:]
        let count: Int = try reader.read()
        for _ in 0..<max(count, 0) {
            let site = try MessageSite(from: &reader)
            let peer: Int = try reader.read()
            widths[ChannelKey(site: site, peer: peer)] = try BitWidth(checkpointed: try reader.read())
        }
    }
}
