import HaloQuantization

// AdaQP's bit-width assignment for ONE (layer, direction): every ordered channel s → p carries the rows rank s
// sends to rank p, cut into groups that share a bit width. The model:
//
//   variance of group g at b bits   V(b, g) = W_g / (2^b − 1)²      (W_g = Σ_{u ∈ g} α_u² T_u, T_u ∝ (D/6)(hi − lo)²)
//   bytes of channel c              Σ_g rows_g · encodedSize(D, b_g) (per-row lo/Δ header included)
//   time of channel c               a_c · bytes_c + c_c
//   exchange                        rounds r = 1 ... P−1; in round r rank s sends to (s + r) mod P;
//                                   a round lasts as long as its slowest channel; T = Σ_r max_{c ∈ r} t_c
//   objective                       λ·norm(Σ V) + (1 − λ)·norm(T)
//
// with each term normalised between its value when every group gets the largest candidate width ("best" variance,
// "worst" time) and the smallest ("worst" variance, "best" time).

/// One group of rows of a channel that is sent at a single bit width.
public struct AssignmentGroup: Sendable, Hashable, Codable {
    /// `W_g = Σ α_u² T_u` over the group's rows: the variance of the group at `b` bits is `W_g / (2^b − 1)²`.
    public var weight: Double
    /// Rows in the group (≥ 1).
    public var rows: Int

    public init(weight: Double, rows: Int) {
        self.weight = weight
        self.rows = rows
    }
}

/// The rows one rank sends to another in one (layer, direction), as groups, and the link they travel on.
public struct AssignmentChannel: Sendable, Equatable, Codable {
    /// Sending rank s.
    public var source: Int
    /// Receiving rank p (≠ s).
    public var destination: Int
    /// The time model of the link `source → destination`.
    public var cost: LinkCost
    /// The channel's groups (may be empty: an empty message still pays the link's latency).
    public var groups: [AssignmentGroup]

    public init(source: Int, destination: Int, cost: LinkCost, groups: [AssignmentGroup]) {
        self.source = source
        self.destination = destination
        self.cost = cost
        self.groups = groups
    }
}

/// The values the objective's two terms are normalised between.
public struct NormalizationBounds: Sendable, Hashable, Codable {
    /// Σ V when every group gets the largest candidate width.
    public var varianceBest: Double
    /// Σ V when every group gets the smallest candidate width.
    public var varianceWorst: Double
    /// T when every group gets the smallest candidate width.
    public var timeBest: Double
    /// T when every group gets the largest candidate width.
    public var timeWorst: Double

    public init(varianceBest: Double, varianceWorst: Double, timeBest: Double, timeWorst: Double) {
        self.varianceBest = varianceBest
        self.varianceWorst = varianceWorst
        self.timeBest = timeBest
        self.timeWorst = timeWorst
    }

    /// `(v − best)/(worst − best)`, or 0 when worst == best.
    public func normalizedVariance(_ v: Double) -> Double {
        varianceWorst == varianceBest ? 0 : (v - varianceBest) / (varianceWorst - varianceBest)
    }

    /// `(t − best)/(worst − best)`, or 0 when worst == best.
    public func normalizedTime(_ t: Double) -> Double {
        timeWorst == timeBest ? 0 : (t - timeBest) / (timeWorst - timeBest)
    }

    /// The coefficient of Σ V in the objective, `λ/(worst − best)` (0 when worst == best).
    func varianceWeight(lambda: Double) -> Double {
        varianceWorst == varianceBest ? 0 : lambda / (varianceWorst - varianceBest)
    }

    /// The coefficient of T in the objective, `(1 − λ)/(worst − best)` (0 when worst == best).
    func timeWeight(lambda: Double) -> Double {
        timeWorst == timeBest ? 0 : (1 - lambda) / (timeWorst - timeBest)
    }
}

/// AdaQP's assignment problem for one (layer, direction).
///
/// Channels not listed send nothing and take no time; a listed channel with no groups sends an empty message and
/// takes its link's latency. An assignment is given as `bits[channel][group]`, indexed like `channels` and their
/// `groups`.
public struct AssignmentProblem: Sendable, Equatable {
    /// Message row width D (elements per row).
    public let width: Int
    /// Number of ranks P.
    public let worldSize: Int
    /// Weight λ ∈ [0, 1] of the variance term (1 − λ weighs the time term).
    public let lambda: Double
    /// The bit widths a group may get, ascending, distinct, quantized (2, 4 or 8 bits).
    public let candidates: [BitWidth]
    /// The channels, each ordered pair at most once.
    public let channels: [AssignmentChannel]
    /// Channel indices of round r = 1 ... P−1 at `rounds[r − 1]` (channel s → p is in round (p − s) mod P).
    public let rounds: [[Int]]
    /// The normalisation bounds of the objective.
    public let bounds: NormalizationBounds

    /// A problem over explicitly listed channels.
    ///
    /// - Precondition: `width ≥ 1`, `worldSize ≥ 1`, `lambda ∈ [0, 1]`, `candidates` non-empty and quantized
    ///   (duplicates are dropped, order does not matter), every channel `s → p` with `s ≠ p` inside the world and
    ///   listed once, every group with `rows ≥ 1` and a finite `weight ≥ 0`.
    public init(
        width: Int,
        worldSize: Int,
        lambda: Double = 0.5,
        candidates: [BitWidth] = [.two, .four, .eight],
        channels: [AssignmentChannel]
    ) {
        precondition(width >= 1, "message width must be ≥ 1, got \(width)")
        precondition(worldSize >= 1, "world size must be ≥ 1, got \(worldSize)")
        precondition(lambda >= 0 && lambda <= 1, "λ must lie in [0, 1], got \(lambda)")
        let sorted = Array(Set(candidates)).sorted()
        precondition(!sorted.isEmpty, "the candidate bit widths must not be empty")
        precondition(sorted.allSatisfy(\.isQuantized), "candidate bit widths must be 2, 4 or 8, got \(sorted)")
        var seen = Set<Int>()
        var rounds = [[Int]](repeating: [], count: max(0, worldSize - 1))
        for (i, ch) in channels.enumerated() {
            precondition(ch.source >= 0 && ch.source < worldSize && ch.destination >= 0 && ch.destination < worldSize,
                         "channel \(ch.source) → \(ch.destination) outside a world of \(worldSize)")
            precondition(ch.source != ch.destination, "channel \(ch.source) → \(ch.destination) sends to itself")
            precondition(seen.insert(ch.source * worldSize + ch.destination).inserted,
                         "channel \(ch.source) → \(ch.destination) listed twice")
            for g in ch.groups {
                precondition(g.rows >= 1, "a group needs at least one row, got \(g.rows)")
                precondition(g.weight.isFinite && g.weight >= 0, "group weights must be finite and ≥ 0, got \(g.weight)")
            }
            let r = ((ch.destination - ch.source) % worldSize + worldSize) % worldSize
            rounds[r - 1].append(i)
        }
        self.width = width
        self.worldSize = worldSize
        self.lambda = lambda
        self.candidates = sorted
        self.channels = channels
        self.rounds = rounds
        let low = Self.uniformTotals(width: width, channels: channels, rounds: rounds, bits: sorted[0])
        let high = Self.uniformTotals(width: width, channels: channels, rounds: rounds, bits: sorted[sorted.count - 1])
        self.bounds = NormalizationBounds(
            varianceBest: high.variance, varianceWorst: low.variance,
            timeBest: low.time, timeWorst: high.time)
    }

    /// A problem over every ordered pair `s → p`, `s ≠ p` (channels in order s = 0 ..< P, then p = 0 ..< P), with
    /// the links' costs from `links` and the groups from `groups(s, p)`.
    public init(
        width: Int,
        lambda: Double = 0.5,
        candidates: [BitWidth] = [.two, .four, .eight],
        links: LinkCostModel,
        groups: (_ source: Int, _ destination: Int) -> [AssignmentGroup]
    ) {
        var channels: [AssignmentChannel] = []
        for s in 0..<links.worldSize {
            for p in 0..<links.worldSize where p != s {
                channels.append(AssignmentChannel(source: s, destination: p, cost: links[s, p], groups: groups(s, p)))
            }
        }
        self.init(width: width, worldSize: links.worldSize, lambda: lambda, candidates: candidates, channels: channels)
    }

    /// The variance factor `1/(2^b − 1)²` of a width: a group of weight W at `bits` has variance `W·factor`
    /// (0 for `.full`).
    public static func varianceFactor(_ bits: BitWidth) -> Double {
        guard bits.isQuantized else { return 0 }
        let m = Double(bits.maxCode)
        return 1 / (m * m)
    }

    /// Bytes on the wire of one row of this problem's width at `bits` (`RowQuantizer.encodedSize`).
    public func rowBytes(_ bits: BitWidth) -> Int {
        RowQuantizer.encodedSize(width: width, bits: bits)
    }

    /// The round (1 ... P−1) of channel `index`.
    public func round(ofChannel index: Int) -> Int {
        let ch = channels[index]
        return ((ch.destination - ch.source) % worldSize + worldSize) % worldSize
    }

    /// Bytes channel `index` sends when its groups get `bits`.
    public func bytes(channel index: Int, bits: [BitWidth]) -> Int {
        let groups = channels[index].groups
        precondition(bits.count == groups.count, "channel \(index) has \(groups.count) groups, got \(bits.count) widths")
        var total = 0
        for (g, b) in zip(groups, bits) { total += g.rows * rowBytes(b) }
        return total
    }

    /// Σ V of channel `index` when its groups get `bits`.
    public func variance(channel index: Int, bits: [BitWidth]) -> Double {
        let groups = channels[index].groups
        precondition(bits.count == groups.count, "channel \(index) has \(groups.count) groups, got \(bits.count) widths")
        var total = 0.0
        for (g, b) in zip(groups, bits) { total += g.weight * Self.varianceFactor(b) }
        return total
    }

    /// Σ V, T and the round times (round r at index r − 1) of an assignment `bits[channel][group]`.
    public func evaluate(_ bits: [[BitWidth]]) -> (variance: Double, time: Double, roundTimes: [Double]) {
        precondition(bits.count == channels.count, "the problem has \(channels.count) channels, got \(bits.count)")
        var variance = 0.0
        var roundTimes = [Double](repeating: 0, count: rounds.count)
        for (r, members) in rounds.enumerated() {
            for c in members {
                variance += self.variance(channel: c, bits: bits[c])
                roundTimes[r] = max(roundTimes[r], channels[c].cost.time(bytes: bytes(channel: c, bits: bits[c])))
            }
        }
        return (variance, roundTimes.reduce(0, +), roundTimes)
    }

    /// The normalised objective `λ·norm(Σ V) + (1 − λ)·norm(T)`.
    public func objective(variance: Double, time: Double) -> Double {
        lambda * bounds.normalizedVariance(variance) + (1 - lambda) * bounds.normalizedTime(time)
    }

    /// The assignment `bits[channel][group]` with its Σ V, T and objective evaluated.
    public func solution(bits: [[BitWidth]]) -> AssignmentSolution {
        for (c, ch) in channels.enumerated() {
            precondition(bits[c].count == ch.groups.count,
                         "channel \(c) has \(ch.groups.count) groups, got \(bits[c].count) widths")
        }
        let e = evaluate(bits)
        return AssignmentSolution(
            bits: bits, variance: e.variance, time: e.time, roundTimes: e.roundTimes,
            objective: objective(variance: e.variance, time: e.time), bounds: bounds)
    }

    /// Σ V and T when every group gets `bits`.
    private static func uniformTotals(
        width: Int, channels: [AssignmentChannel], rounds: [[Int]], bits: BitWidth
    ) -> (variance: Double, time: Double) {
        let rowBytes = RowQuantizer.encodedSize(width: width, bits: bits)
        let factor = varianceFactor(bits)
        var variance = 0.0, time = 0.0
        for members in rounds {
            var roundTime = 0.0
            for c in members {
                var rows = 0
                var channelVariance = 0.0
                for g in channels[c].groups {
                    rows += g.rows
                    channelVariance += g.weight * factor
                }
                variance += channelVariance
                roundTime = max(roundTime, channels[c].cost.time(bytes: rows * rowBytes))
            }
            time += roundTime
        }
        return (variance, time)
    }
}

/// An assignment of bit widths to the groups of an `AssignmentProblem`, with its evaluation.
public struct AssignmentSolution: Sendable, Equatable, Codable {
    /// `bits[channel][group]`, indexed like the problem's channels and their groups.
    public var bits: [[BitWidth]]
    /// Σ V over all groups.
    public var variance: Double
    /// T = Σ_r max_{c ∈ r} t_c.
    public var time: Double
    /// The time of round r = 1 ... P−1 at index r − 1.
    public var roundTimes: [Double]
    /// `λ·norm(Σ V) + (1 − λ)·norm(T)`.
    public var objective: Double
    /// The bounds the objective is normalised with.
    public var bounds: NormalizationBounds

    public init(
        bits: [[BitWidth]], variance: Double, time: Double, roundTimes: [Double], objective: Double,
        bounds: NormalizationBounds
    ) {
        self.bits = bits
        self.variance = variance
        self.time = time
        self.roundTimes = roundTimes
        self.objective = objective
        self.bounds = bounds
    }
}
