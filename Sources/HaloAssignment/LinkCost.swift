// The α-β model of one directed link: sending a message of `bytes` bytes takes `a·bytes + c` seconds. AdaQP fits
// it per ordered pair of ranks by timing sends of many sizes at start-up; the assignment only ever uses the fitted
// line.

/// The time model of one directed link: `time(bytes) = secondsPerByte·bytes + latency`.
public struct LinkCost: Sendable, Hashable, Codable {
    /// Seconds per byte, `a` (the inverse bandwidth). Never negative.
    public var secondsPerByte: Double
    /// Seconds per message, `c` (the latency). Never negative.
    public var latency: Double

    public init(secondsPerByte: Double, latency: Double) {
        precondition(secondsPerByte.isFinite && secondsPerByte >= 0, "secondsPerByte must be finite and ≥ 0, got \(secondsPerByte)")
        precondition(latency.isFinite && latency >= 0, "latency must be finite and ≥ 0, got \(latency)")
        self.secondsPerByte = secondsPerByte
        self.latency = latency
    }

    /// A link that costs nothing.
    public static let zero = LinkCost(secondsPerByte: 0, latency: 0)

    private enum CodingKeys: String, CodingKey { case secondsPerByte, latency }

    /// Decoded values meet `init`'s conditions (a checkpoint may hold a forged model): others are a decoding error.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let perByte = try c.decode(Double.self, forKey: .secondsPerByte), latency = try c.decode(Double.self, forKey: .latency)
        guard perByte.isFinite && perByte >= 0 && latency.isFinite && latency >= 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription:
                "a link cost must be finite and ≥ 0, got \(perByte) s/byte and \(latency) s latency"))
        }
        self.init(secondsPerByte: perByte, latency: latency)
    }

    /// Seconds to send one message of `bytes` bytes. An empty message still pays the latency.
    @inlinable
    public func time(bytes: Int) -> Double {
        secondsPerByte * Double(bytes) + latency
    }

    /// The least-squares line through measured `(bytes, seconds)` samples, with both coefficients constrained to
    /// be non-negative.
    ///
    /// This is the exact non-negative least-squares solution: the unconstrained fit when both coefficients come
    /// out ≥ 0, otherwise the better of the two boundary fits (`a = 0`, `c = max(0, mean seconds)`) and
    /// (`c = 0`, `a = max(0, Σ bytes·seconds / Σ bytes²)`); the objective is a convex quadratic, so its constrained
    /// minimum lies on one of those edges. When all samples have the same size the slope cannot be identified and
    /// the fit is the line through the origin (pure bandwidth, so bigger messages cost more), or `a = 0` when that
    /// size is 0. Non-finite samples are a caller bug.
    public static func fit(samples: [(bytes: Int, seconds: Double)]) -> LinkCost {
        precondition(!samples.isEmpty, "fitting a link cost needs at least one sample")
        for s in samples {
            precondition(s.bytes >= 0 && s.seconds.isFinite, "invalid link sample (\(s.bytes) bytes, \(s.seconds) s)")
        }
        let n = Double(samples.count)
        var meanX = 0.0, meanY = 0.0
        for s in samples {
            meanX += Double(s.bytes)
            meanY += s.seconds
        }
        meanX /= n
        meanY /= n
        var sxx = 0.0, sxy = 0.0, xx = 0.0, xy = 0.0
        for s in samples {
            let x = Double(s.bytes), y = s.seconds
            sxx += (x - meanX) * (x - meanX)
            sxy += (x - meanX) * (y - meanY)
            xx += x * x
            xy += x * y
        }
        func sse(_ a: Double, _ c: Double) -> Double {
            var e = 0.0
            for s in samples {
                let r = a * Double(s.bytes) + c - s.seconds
                e += r * r
            }
            return e
        }
        let throughOrigin = xx > 0 ? max(0, xy / xx) : 0
        guard sxx > 0 else {
            // One distinct size: the slope is not identifiable.
            if meanX > 0 { return LinkCost(secondsPerByte: throughOrigin, latency: 0) }
            return LinkCost(secondsPerByte: 0, latency: max(0, meanY))
        }
        let a = sxy / sxx
        let c = meanY - a * meanX
        if a >= 0 && c >= 0 { return LinkCost(secondsPerByte: a, latency: c) }
        let flat = (a: 0.0, c: max(0, meanY))
        let origin = (a: throughOrigin, c: 0.0)
        let best = sse(flat.a, flat.c) <= sse(origin.a, origin.c) ? flat : origin
        return LinkCost(secondsPerByte: best.a, latency: best.c)
    }
}

/// The fitted time model of every ordered pair of ranks `s → p` (`s ≠ p`) of a world of `worldSize` ranks.
public struct LinkCostModel: Sendable, Hashable, Codable {
    /// Number of ranks P.
    public let worldSize: Int
    /// Row-major `P × P` costs, `costs[s·P + p]` for `s → p`; the diagonal is unused (and `.zero`).
    public private(set) var costs: [LinkCost]

    /// Every link with the same cost.
    public init(worldSize: Int, uniform cost: LinkCost) {
        precondition(worldSize >= 1, "world size must be ≥ 1, got \(worldSize)")
        self.worldSize = worldSize
        var costs = [LinkCost](repeating: cost, count: worldSize * worldSize)
        for s in 0..<worldSize { costs[s * worldSize + s] = .zero }
        self.costs = costs
    }

    /// Costs given row-major, `costs[s·P + p]` for `s → p` (the diagonal is ignored).
    public init(worldSize: Int, costs: [LinkCost]) {
        precondition(worldSize >= 1, "world size must be ≥ 1, got \(worldSize)")
        precondition(costs.count == worldSize * worldSize, "need \(worldSize * worldSize) link costs, got \(costs.count)")
        self.worldSize = worldSize
        var costs = costs
        for s in 0..<worldSize { costs[s * worldSize + s] = .zero }
        self.costs = costs
    }

    private enum CodingKeys: String, CodingKey { case worldSize, costs }

    /// Decoded models meet `init`'s conditions (P ≥ 1, P² costs): others are a decoding error.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let worldSize = try c.decode(Int.self, forKey: .worldSize), costs = try c.decode([LinkCost].self, forKey: .costs)
        let expected = worldSize.multipliedReportingOverflow(by: worldSize)
        guard worldSize >= 1, !expected.overflow, costs.count == expected.partialValue else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription:
                "a link model of \(worldSize) ranks needs \(worldSize)² link costs, got \(costs.count)"))
        }
        self.init(worldSize: worldSize, costs: costs)
    }

    /// The cost of the link `source → destination`.
    public subscript(source: Int, destination: Int) -> LinkCost {
        get {
            precondition(source >= 0 && source < worldSize && destination >= 0 && destination < worldSize,
                         "link \(source) → \(destination) outside a world of \(worldSize)")
            return costs[source * worldSize + destination]
        }
        set {
            precondition(source >= 0 && source < worldSize && destination >= 0 && destination < worldSize,
                         "link \(source) → \(destination) outside a world of \(worldSize)")
            precondition(source != destination, "a rank has no link to itself")
            costs[source * worldSize + destination] = newValue
        }
    }

    /// The non-negative least-squares line through measured `(bytes, seconds)` samples of one link
    /// (`LinkCost.fit(samples:)`).
    public static func fit(samples: [(bytes: Int, seconds: Double)]) -> LinkCost {
        LinkCost.fit(samples: samples)
    }

    /// Fits every link `s → p` (`s ≠ p`) from its samples.
    public static func fit(
        worldSize: Int,
        samples: (_ source: Int, _ destination: Int) -> [(bytes: Int, seconds: Double)]
    ) -> LinkCostModel {
        var model = LinkCostModel(worldSize: worldSize, uniform: .zero)
        for s in 0..<worldSize {
            for p in 0..<worldSize where p != s {
                model[s, p] = LinkCost.fit(samples: samples(s, p))
            }
        }
        return model
    }
}
