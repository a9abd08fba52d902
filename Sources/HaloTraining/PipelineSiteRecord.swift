import HaloNN
import HaloQuantization

/// What the pipelined schedule did on one (layer, direction) in one epoch, summed over ranks and peers.
public struct PipelineSiteRecord: Sendable, Codable, Equatable {
    public var layer: LayerIndex
    public var direction: MessageDirection
    /// `blockAges[a]`: halo blocks used at age a epochs (a = epoch used − epoch produced); one count per
    /// (receiving rank, peer). The last entry counts blocks older than the method's bound, which must stay 0.
    /// A block used before any arrived (PipeGCN's zero warm-up) is counted in `zeroBlocks`.
    public var blockAges: [Int]
    /// Blocks that were zeros because nothing had arrived yet (PipeGCN's first epoch).
    public var zeroBlocks: Int
    /// Uses of a cached block more than one epoch old because no newer message had arrived (PipeQS's bypass;
    /// one epoch is every pipeline's normal staleness).
    public var bypasses: Int
    /// Uses that had to wait for a message.
    public var waits: Int
    /// Messages sent, by bit width ("2", "4", "8", "32").
    public var messagesByBits: [String: Int]
    /// Sends skipped because the link was still busy with the previous one (PipeQS).
    public var skippedSends: Int
    /// Mean drift `(1 − cos)/2` between consecutive blocks a sender sent (nil: not measured).
    public var meanDrift: Double?
    /// Seconds ranks spent blocked waiting for this site's messages (summed over ranks).
    public var waitSeconds: Double

    enum CodingKeys: String, CodingKey {
        case layer, direction
        case blockAges = "block_ages"
        case zeroBlocks = "zero_blocks"
        case bypasses, waits
        case messagesByBits = "messages_by_bits"
        case skippedSends = "skipped_sends"
        case meanDrift = "mean_drift"
        case waitSeconds = "wait_s"
    }

    /// Mean age of the blocks used (nil when none was).
    public var meanAge: Double? {
        let n = blockAges.reduce(0, +)
        guard n > 0 else { return nil }
        return Double(blockAges.enumerated().reduce(0) { $0 + $1.offset * $1.element }) / Double(n)
    }
}

/// One rank's running tally for a site, flattened for the all-reduce that sums it over ranks: the age histogram,
/// then one slot per `Counter`.
struct PipelineSiteTally {
    static let widths: [BitWidth] = [.two, .four, .eight, .full]

    /// The slots after the ages, in flattened order; the four message counts follow `widths`.
    enum Counter: Int, CaseIterable {
        case zeroBlocks, bypasses, waits, sentTwo, sentFour, sentEight, sentFull, skippedSends, driftSum, driftCount,
             waitSeconds
    }

    var ages: [Double]
    var counters = [Double](repeating: 0, count: Counter.allCases.count)

    /// Ages 0...maxAge, then one bucket for anything older (a broken bound shows there instead of vanishing).
    init(maxAge: Int) { ages = [Double](repeating: 0, count: maxAge + 2) }

    subscript(_ counter: Counter) -> Double {
        get { counters[counter.rawValue] }
        set { counters[counter.rawValue] = newValue }
    }

    mutating func used(age: Int) { ages[min(age, ages.count - 1)] += 1 }

    mutating func sent(_ bits: BitAssignment) {
        let width: BitWidth
        switch bits {
        case .uniform(let b): width = b
        case .perRow(let list):
            // A message of mixed widths counts once, under its most common width.
            var counts = [Int](repeating: 0, count: Self.widths.count)
            for b in list { counts[Self.widths.firstIndex(of: b)!] += 1 }
            width = Self.widths[counts.indices.max { counts[$0] < counts[$1] }!]
        }
        counters[Counter.sentTwo.rawValue + Self.widths.firstIndex(of: width)!] += 1
    }

    var flat: [Double] { ages + counters }

    static func flatCount(maxAge: Int) -> Int { maxAge + 2 + Counter.allCases.count }

    static func record(_ site: MessageSite, flat: ArraySlice<Double>, maxAge: Int) -> PipelineSiteRecord {
        let v = Array(flat)
        let ageCount = maxAge + 2
        func counter(_ c: Counter) -> Double { v[ageCount + c.rawValue] }
        var bits: [String: Int] = [:]
        for (i, w) in widths.enumerated() {
            let n = v[ageCount + Counter.sentTwo.rawValue + i]
            if n > 0 { bits[String(w.rawValue)] = Int(n) }
        }
        let driftCount = counter(.driftCount)
        return PipelineSiteRecord(
            layer: site.layer, direction: site.direction, blockAges: v[0..<ageCount].map { Int($0) },
            zeroBlocks: Int(counter(.zeroBlocks)), bypasses: Int(counter(.bypasses)), waits: Int(counter(.waits)),
            messagesByBits: bits, skippedSends: Int(counter(.skippedSends)),
            meanDrift: driftCount > 0 ? counter(.driftSum) / driftCount : nil, waitSeconds: counter(.waitSeconds))
    }
}
