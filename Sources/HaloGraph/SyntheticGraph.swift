import Foundation
import HaloTensor

/// A synthetic node-classification task: a degree-corrected contextual stochastic block model.
///
/// - Every node gets a class uniformly at random and a degree propensity `θ` (Pareto with tail exponent
///   `degreeExponent`, or 1 for every node when the exponent is 0).
/// - Node `v` draws about `averageDegree/2 · θ_v / mean(θ)` undirected edges. Each other endpoint is in `v`'s class
///   with probability `homophily`, otherwise in a uniformly chosen other class; inside the class it is chosen
///   proportionally to `θ` (alias tables). Both directions are stored, so the expected degree of `v` is
///   `averageDegree · θ_v / mean(θ)` and the edge homophily is `homophily` (self loops and duplicates dropped).
/// - Features are `featureSignal · μ_c + N(0, I)`, where `μ_c` is a random unit vector per class: `featureSignal` is
///   the length of the class signal in units of the per-coordinate noise. Two class means are about
///   `featureSignal · √2` apart, so one node's own features separate two classes with error `≈ Φ(−featureSignal/√2)`,
///   while averaging over a homophilous neighbourhood shrinks the noise and makes the graph worth using.
/// - Every node falls into train, validation or test (or none) by one uniform draw against the fractions.
///
/// Every random number is a Philox draw addressed by node id (or by global edge index, or by (node, column)), so the
/// dataset is a pure function of the spec: the thread count of the pool never changes a single bit.
///
/// As a `--dataset` argument the spec is written `synthetic:nodes=100000,classes=8,features=64,degree=16,…` with every
/// key optional; `description` prints the canonical string of all keys back.
public struct SyntheticGraphSpec: Sendable, Equatable, Codable {
    /// Number of nodes.
    public var nodes: Int
    /// Number of classes (at least 2).
    public var classes: Int
    /// Width of the dense feature vectors (`features=` in the spec string).
    public var featureWidth: Int
    /// Requested mean degree, counting both directions of each undirected edge (`degree=`).
    public var averageDegree: Double
    /// Fraction of edges whose endpoints share a class.
    public var homophily: Double
    /// Length of each class mean vector relative to unit per-coordinate noise (`signal=`).
    public var featureSignal: Double
    /// Pareto tail exponent of the degree propensities; 0 gives every node the same propensity (`exponent=`).
    public var degreeExponent: Double
    /// Expected fraction of training nodes (`train=`).
    public var trainFraction: Double
    /// Expected fraction of validation nodes (`val=`).
    public var validationFraction: Double
    /// Expected fraction of test nodes (`test=`); nodes outside all three fractions are in no split.
    public var testFraction: Double
    /// Seed of the counter-based generator.
    public var seed: UInt64

    public init(
        nodes: Int = 100_000, classes: Int = 8, featureWidth: Int = 64, averageDegree: Double = 16,
        homophily: Double = 0.8, featureSignal: Double = 1, degreeExponent: Double = 2.5,
        trainFraction: Double = 0.6, validationFraction: Double = 0.2, testFraction: Double = 0.2, seed: UInt64 = 1
    ) {
        self.nodes = nodes
        self.classes = classes
        self.featureWidth = featureWidth
        self.averageDegree = averageDegree
        self.homophily = homophily
        self.featureSignal = featureSignal
        self.degreeExponent = degreeExponent
        self.trainFraction = trainFraction
        self.validationFraction = validationFraction
        self.testFraction = testFraction
        self.seed = seed
    }

    /// The scheme of the spec string: `synthetic` or `synthetic:key=value,…`.
    public static let scheme = "synthetic"

    /// Whether `text` names a synthetic dataset (rather than a dataset path or name).
    public static func isSpecString(_ text: String) -> Bool {
        text == scheme || text.hasPrefix(scheme + ":")
    }
}

// MARK: - Spec strings

extension SyntheticGraphSpec {
    /// A malformed or out-of-range synthetic dataset spec.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The offending key (or the offending item when it is not `key=value`).
        public var key: String
        /// What a valid value looks like.
        public var expected: String
        /// What was given.
        public var found: String

        public init(key: String, expected: String, found: String) {
            self.key = key
            self.expected = expected
            self.found = found
        }

        public var description: String {
            "synthetic dataset spec: '\(key)' expects \(expected), found '\(found)'"
        }
    }

    /// The keys of the spec string, in canonical order.
    public static let keys = ["nodes", "classes", "features", "degree", "homophily", "signal", "exponent", "train", "val", "test", "seed"]

    /// Generous sanity bounds that keep a typo from allocating the machine away.
    static let maxClasses = 65_536
    static let maxFeatureWidth = 1 << 20
    static let maxDegree = 100_000.0

    /// What each key accepts (shared by the parser and `validate`).
    static func expectation(_ key: String) -> String {
        switch key {
        case "nodes": return "an integer in 1...\(Int32.max)"
        case "classes": return "an integer in 2...\(maxClasses)"
        case "features": return "an integer in 1...\(maxFeatureWidth)"
        case "degree": return "a number in [0, \(Int(maxDegree))]"
        case "homophily", "train", "val", "test": return "a number in [0, 1]"
        case "signal": return "a finite number ≥ 0"
        case "exponent": return "0 (equal degrees) or a finite number > 1 (Pareto tail exponent)"
        case "seed": return "an unsigned 64-bit integer"
        default: return "one of the keys " + keys.joined(separator: ", ")
        }
    }

    /// Parses `synthetic`, `synthetic:` or `synthetic:key=value,key=value,…`; missing keys keep their defaults.
    ///
    /// Throws `ParseError` naming the key, the expected form and what was found for an unknown or repeated key, an
    /// item without `=`, a value that is not a number, or a value out of range.
    public init(parsing text: String) throws {
        self.init()
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard Self.isSpecString(trimmed) else {
            throw ParseError(key: Self.scheme, expected: "'synthetic' or 'synthetic:key=value,…'", found: text)
        }
        let body = trimmed.dropFirst(Self.scheme.count + (trimmed.count > Self.scheme.count ? 1 : 0))
        var seen = Set<String>()
        for rawItem in body.split(separator: ",", omittingEmptySubsequences: true) {
            let item = rawItem.trimmingCharacters(in: .whitespaces)
            if item.isEmpty { continue }
            guard let eq = item.firstIndex(of: "=") else {
                throw ParseError(key: item, expected: "key=value with a key among " + Self.keys.joined(separator: ", "), found: item)
            }
            let key = item[..<eq].trimmingCharacters(in: .whitespaces)
            let value = item[item.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard Self.keys.contains(key) else {
                throw ParseError(key: key, expected: Self.expectation(key), found: item)
            }
            guard seen.insert(key).inserted else {
                throw ParseError(key: key, expected: "at most one value", found: "a second value '\(value)'")
            }
            let bad = ParseError(key: key, expected: Self.expectation(key), found: value)
            switch key {
            case "nodes": nodes = try Self.parseInt(value, or: bad)
            case "classes": classes = try Self.parseInt(value, or: bad)
            case "features": featureWidth = try Self.parseInt(value, or: bad)
            case "degree": averageDegree = try Self.parseDouble(value, or: bad)
            case "homophily": homophily = try Self.parseDouble(value, or: bad)
            case "signal": featureSignal = try Self.parseDouble(value, or: bad)
            case "exponent": degreeExponent = try Self.parseDouble(value, or: bad)
            case "train": trainFraction = try Self.parseDouble(value, or: bad)
            case "val": validationFraction = try Self.parseDouble(value, or: bad)
            case "test": testFraction = try Self.parseDouble(value, or: bad)
            case "seed":
                guard let s = UInt64(value.replacingOccurrences(of: "_", with: "")) else { throw bad }
                seed = s
            default: preconditionFailure("unhandled key \(key)")
            }
            // Range errors quote the value as written.
            do { try validate(only: key) } catch { throw bad }
        }
        try validate()
    }

    /// Integers may use `_` separators or an exact exponent form such as `1e6`.
    private static func parseInt(_ text: String, or error: ParseError) throws -> Int {
        let plain = text.replacingOccurrences(of: "_", with: "")
        if let i = Int(plain) { return i }
        if let d = Double(plain), d.isFinite, d == d.rounded(), abs(d) < 0x1p62 { return Int(d) }
        throw error
    }

    private static func parseDouble(_ text: String, or error: ParseError) throws -> Double {
        guard let d = Double(text.replacingOccurrences(of: "_", with: "")), !d.isNaN else { throw error }
        return d
    }

    /// Checks every field's range; the error names the key as written in spec strings.
    public func validate() throws {
        for key in Self.keys { try validate(only: key) }
        let sum = trainFraction + validationFraction + testFraction
        if sum > 1 + 1e-9 {
            throw ParseError(key: "train+val+test", expected: "a sum of at most 1", found: Self.format(sum))
        }
    }

    private func validate(only key: String) throws {
        func check(_ ok: Bool, _ value: String) throws {
            if !ok { throw ParseError(key: key, expected: Self.expectation(key), found: value) }
        }
        func fraction(_ x: Double) -> Bool { x >= 0 && x <= 1 }
        switch key {
        case "nodes": try check(nodes >= 1 && nodes <= Int(Int32.max), String(nodes))
        case "classes": try check(classes >= 2 && classes <= Self.maxClasses, String(classes))
        case "features": try check(featureWidth >= 1 && featureWidth <= Self.maxFeatureWidth, String(featureWidth))
        case "degree": try check(averageDegree >= 0 && averageDegree <= Self.maxDegree, Self.format(averageDegree))
        case "homophily": try check(fraction(homophily), Self.format(homophily))
        case "signal": try check(featureSignal.isFinite && featureSignal >= 0, Self.format(featureSignal))
        case "exponent":
            try check(degreeExponent == 0 || (degreeExponent.isFinite && degreeExponent > 1), Self.format(degreeExponent))
        case "train": try check(fraction(trainFraction), Self.format(trainFraction))
        case "val": try check(fraction(validationFraction), Self.format(validationFraction))
        case "test": try check(fraction(testFraction), Self.format(testFraction))
        default: break
        }
    }

    /// Shortest round-tripping decimal, without a trailing `.0` for whole numbers.
    static func format(_ x: Double) -> String {
        if x.isFinite, x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }
}

extension SyntheticGraphSpec: CustomStringConvertible {
    /// The canonical spec string with every key, which parses back to an equal spec.
    public var description: String {
        let values = [
            String(nodes), String(classes), String(featureWidth), Self.format(averageDegree), Self.format(homophily),
            Self.format(featureSignal), Self.format(degreeExponent), Self.format(trainFraction),
            Self.format(validationFraction), Self.format(testFraction), String(seed),
        ]
        return Self.scheme + ":" + zip(Self.keys, values).map { "\($0)=\($1)" }.joined(separator: ",")
    }
}

// MARK: - Generation

extension SyntheticGraphSpec {
    /// What a Philox block is for: the `a` word of every counter `(stream tag, purpose, b, c)`.
    private enum Purpose: UInt32 {
        /// `(0, node)`: class, propensity, split and edge-count rounding of one node.
        case node = 1
        /// `(edge >> 32, edge)`: homophily coin, other class, slot and alias coin of one edge.
        case edge = 2
        /// `(column / 4, node)`: four noise normals of one node.
        case feature = 3
        /// `(column / 4, class)`: four normals of one class mean.
        case classMean = 4
    }

    /// Generates the dataset. Identical for every pool; the pool only decides how fast.
    ///
    /// Memory is a handful of flat arrays: per node a label, a propensity, split flags and alias-table entries; two
    /// `Int32` arrays of all directed edges (released once the graph is built); the feature matrix.
    public func generate(pool: ComputePool = .serial) -> Dataset {
        do { try validate() } catch { preconditionFailure("\(error)") }
        let n = nodes, classCount = classes
        let rng = CounterRandom(seed: seed)
        let tag = CounterRandom.Stream.synthetic.rawValue &<< 24
        let grain = 4096

        // Per-node draws: class, propensity, split.
        var labels = [Int32](repeating: 0, count: n)
        var theta = [Float](repeating: 1, count: n)
        var train = [Bool](repeating: false, count: n)
        var validation = [Bool](repeating: false, count: n)
        var test = [Bool](repeating: false, count: n)
        let alpha = degreeExponent
        let trainCut = trainFraction, validationCut = trainFraction + validationFraction
        let testCut = validationCut + testFraction
        labels.withUnsafeMutableBufferPointer { labelsOut in
            theta.withUnsafeMutableBufferPointer { thetaOut in
                train.withUnsafeMutableBufferPointer { trainOut in
                    validation.withUnsafeMutableBufferPointer { validationOut in
                        test.withUnsafeMutableBufferPointer { testOut in
                            pool.forEachChunk(of: n, grain: grain) { range in
                                for v in range {
                                    let w = rng.block(tag, Purpose.node.rawValue, 0, UInt32(v))
                                    labelsOut[v] = Int32(truncatingIfNeeded: (UInt64(w[0]) &* UInt64(classCount)) >> 32)
                                    if alpha > 0 {
                                        // Pareto(x_min = 1, alpha) by inversion; 1 - u lies in [2^-32, 1].
                                        let tail = 1 - Double(w[1]) * 0x1p-32
                                        thetaOut[v] = Float(pow(tail, -1 / alpha))
                                    }
                                    let u = Double(w[2]) * 0x1p-32
                                    if u < trainCut {
                                        trainOut[v] = true
                                    } else if u < validationCut {
                                        validationOut[v] = true
                                    } else if u < testCut {
                                        testOut[v] = true
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        let graph = generateGraph(labels: labels, theta: theta, rng: rng, tag: tag, pool: pool)
        theta = []
        let features = generateFeatures(labels: labels, rng: rng, tag: tag, pool: pool)
        return Dataset(
            name: description, graph: graph, features: .dense(features),
            labels: .singleLabel(classes: labels, classCount: classCount),
            split: NodeSplit(train: train, validation: validation, test: test))
    }

    /// Draws the edges and builds the symmetric graph. The edge lists live only inside this call.
    private func generateGraph(labels: [Int32], theta: [Float], rng: CounterRandom, tag: UInt32, pool: ComputePool) -> Graph {
        let n = nodes, classCount = classes
        // Edges drawn per node: stochastic rounding of degree/2 · θ_v / mean θ. Sequential sum: thread-independent.
        var thetaSum = 0.0
        for t in theta { thetaSum += Double(t) }
        let scale = thetaSum > 0 ? averageDegree / 2 / (thetaSum / Double(n)) : 0
        var edgeOffsets = [Int](repeating: 0, count: n + 1)
        edgeOffsets.withUnsafeMutableBufferPointer { out in
            pool.forEachChunk(of: n, grain: 4096) { range in
                for v in range {
                    let expected = scale * Double(theta[v])
                    let whole = expected.rounded(.down)
                    let w = rng.block(tag, Purpose.node.rawValue, 0, UInt32(v))
                    out[v + 1] = Int(whole) + (Double(w[3]) * 0x1p-32 < expected - whole ? 1 : 0)
                }
            }
        }
        for v in 0..<n { edgeOffsets[v + 1] += edgeOffsets[v] }
        let offsets = edgeOffsets
        let edgeCount = offsets[n]

        // Nodes grouped by class (counting sort), with one alias table per class over the propensities.
        var classStarts = [Int](repeating: 0, count: classCount + 1)
        for c in labels { classStarts[Int(c) + 1] += 1 }
        for c in 0..<classCount { classStarts[c + 1] += classStarts[c] }
        let classStart = classStarts
        var slots = [AliasSlot](repeating: AliasSlot(keep: 1, node: 0, alias: 0), count: n)
        var fill = classStart
        for v in 0..<n {
            let c = Int(labels[v])
            slots[fill[c]] = AliasSlot(keep: 1, node: Int32(v), alias: Int32(v))
            fill[c] += 1
        }
        slots.withUnsafeMutableBufferPointer { table in
            pool.forEachChunk(of: classCount) { classRange in
                for c in classRange {
                    buildAliasTable(UnsafeMutableBufferPointer(rebasing: table[classStart[c]..<classStart[c + 1]]), theta: theta)
                }
            }
        }

        // Each drawn edge is stored in both directions at 2e and 2e+1: positions depend only on the edge index.
        // Edges go in batches: first all random draws (Philox, compute-bound), then all table lookups, which are
        // independent cache misses the CPU overlaps.
        var sources = [Int32](repeating: 0, count: 2 * edgeCount)
        var destinations = [Int32](repeating: 0, count: 2 * edgeCount)
        let homophilyCut = UInt64((homophily * 0x1p32).rounded(.down))
        sources.withUnsafeMutableBufferPointer { src in
            destinations.withUnsafeMutableBufferPointer { dst in
                slots.withUnsafeBufferPointer { table in
                    pool.forEachBalancedChunk(of: n, prefixCost: { offsets[$0] }) { range in
                        let batch = 256
                        withUnsafeTemporaryAllocation(of: (slot: Int, coin: Float).self, capacity: batch) { draws in
                            var v = range.lowerBound
                            var e = offsets[v]
                            let end = offsets[range.upperBound]
                            while e < end {
                                let count = min(batch, end - e)
                                for k in 0..<count {
                                    let edge = e + k
                                    while offsets[v + 1] <= edge { v += 1 }
                                    let w = rng.block(tag, Purpose.edge.rawValue, UInt32(truncatingIfNeeded: edge >> 32), UInt32(truncatingIfNeeded: edge))
                                    let own = Int(labels[v])
                                    var c = own
                                    if UInt64(w[0]) >= homophilyCut {
                                        c = (own + 1 + Int((UInt64(w[1]) &* UInt64(classCount - 1)) >> 32)) % classCount
                                    }
                                    let lo = classStart[c], size = classStart[c + 1] - lo
                                    // An empty class yields slot -1: a self loop, which the graph drops.
                                    draws[k] = (size > 0 ? lo + Int((UInt64(w[2]) &* UInt64(size)) >> 32) : -1, CounterRandom.unitFloat(w[3]))
                                    src[2 * edge] = Int32(v)
                                    dst[2 * edge + 1] = Int32(v)
                                }
                                for k in 0..<count {
                                    let edge = e + k
                                    let (slot, coin) = draws[k]
                                    var target = src[2 * edge]
                                    if slot >= 0 {
                                        let entry = table[slot]
                                        target = coin < entry.keep ? entry.node : entry.alias
                                    }
                                    dst[2 * edge] = target
                                    src[2 * edge + 1] = target
                                }
                                e += count
                            }
                        }
                    }
                }
            }
        }
        return Graph(nodeCount: n, sources: sources, destinations: destinations)
    }

    /// `features[v] = featureSignal · μ_class(v) + N(0, I)`, the noise drawn by (node, column).
    private func generateFeatures(labels: [Int32], rng: CounterRandom, tag: UInt32, pool: ComputePool) -> Matrix {
        let n = nodes, width = featureWidth, groups = (featureWidth + 3) / 4
        // Class means: random directions scaled to length featureSignal.
        var means = [Float](repeating: 0, count: classes * width)
        var row = [Float](repeating: 0, count: groups * 4)
        for c in 0..<classes {
            for g in 0..<groups {
                let w = rng.block(tag, Purpose.classMean.rawValue, UInt32(g), UInt32(c))
                Self.gaussians(w, into: &row, at: 4 * g)
            }
            var norm = 0.0
            for j in 0..<width { norm += Double(row[j]) * Double(row[j]) }
            let factor = norm > 0 ? Float(featureSignal / norm.squareRoot()) : 0
            for j in 0..<width { means[c * width + j] = row[j] * factor }
        }
        let storage = [Float](unsafeUninitializedCapacity: n * width) { buffer, initialized in
            let out = buffer.baseAddress!
            means.withUnsafeBufferPointer { means in
                pool.forEachChunk(of: n, grain: 1024) { range in
                    var noise = [Float](repeating: 0, count: groups * 4)
                    for v in range {
                        for g in 0..<groups {
                            let w = rng.block(tag, Purpose.feature.rawValue, UInt32(g), UInt32(v))
                            Self.gaussians(w, into: &noise, at: 4 * g)
                        }
                        let mean = means.baseAddress! + Int(labels[v]) * width
                        let dst = out + v * width
                        for j in 0..<width { dst[j] = mean[j] + noise[j] }
                    }
                }
            }
            initialized = n * width
        }
        return Matrix(rows: n, cols: width, storage: storage)
    }

    /// Four standard normals from one Philox block (Box–Muller on two pairs of uniforms).
    @inline(__always)
    private static func gaussians(_ w: SIMD4<UInt32>, into out: inout [Float], at index: Int) {
        for pair in 0..<2 {
            // u1 in (0, 1] so the logarithm is finite; u2 in [0, 1).
            let u1 = (Float(w[2 * pair] >> 8) + 1) * 0x1p-24
            let u2 = Float(w[2 * pair + 1] >> 8) * 0x1p-24
            let r = (-2 * log(u1)).squareRoot()
            let angle = 2 * Float.pi * u2
            out[index + 2 * pair] = r * cos(angle)
            out[index + 2 * pair + 1] = r * sin(angle)
        }
    }
}

/// One slot of a class's alias table: yields `node` with probability `keep`, else `alias`. Interleaved so that a
/// draw costs one cache miss.
private struct AliasSlot {
    var keep: Float
    var node: Int32
    var alias: Int32
}

/// Vose's alias table over the nodes of `table` (one class) weighted by `theta`. Sequential within a class, so it
/// does not depend on the pool.
private func buildAliasTable(_ table: UnsafeMutableBufferPointer<AliasSlot>, theta: [Float]) {
    let count = table.count
    guard count > 0 else { return }
    var total = 0.0
    for slot in table { total += Double(theta[Int(slot.node)]) }
    guard total > 0 else { return }
    var scaled = table.map { Double(theta[Int($0.node)]) * Double(count) / total }
    var small = [Int32](), large = [Int32]()
    small.reserveCapacity(count)
    large.reserveCapacity(count)
    for k in 0..<count {
        if scaled[k] < 1 { small.append(Int32(k)) } else { large.append(Int32(k)) }
    }
    while let s = small.last, let l = large.last {
        small.removeLast()
        large.removeLast()
        let si = Int(s), li = Int(l)
        table[si].keep = Float(scaled[si])
        table[si].alias = table[li].node
        scaled[li] = (scaled[li] + scaled[si]) - 1
        if scaled[li] < 1 { small.append(l) } else { large.append(l) }
    }
    // Leftovers are 1 up to rounding; their slots were initialised to keep = 1.
}
