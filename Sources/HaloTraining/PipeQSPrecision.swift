import HaloQuantization

/// PipeQS's widths: one per channel (site, peer), moved by what the sender measures just before each send.
///
/// - High drift (`d > E` between the block about to be sent and the last one sent): one step up
///   (2 → 4 → 8 → 32), since the receiver will see a block that moved and should see it precisely.
/// - Low drift and a late link (the previous send on the channel has not completed, or the last one took longer
///   than the epoch's computation it should hide behind): one step down.
/// - Otherwise unchanged.
///
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

    public func observe(_ site: MessageSite, to peer: Int, drift: Float, lateLink: Bool) {
        guard settings.adaptiveBits else { return }
        let key = ChannelKey(site: site, peer: peer)
        let current = widths[key] ?? settings.initialBits
        if drift.isFinite && Double(drift) > settings.driftThreshold {
            widths[key] = current.higher ?? current
        } else if lateLink {
            widths[key] = current.lower ?? current
        }
    }
}
