// Pareto frontiers (bytes ↑, variance ↓) of the groups of one channel, computed exactly.
//
// Within a class of groups that have the same row count, an optimal assignment for any byte budget is monotone:
// sorted by weight descending, the levels never increase (swapping the widths of two equally large groups keeps
// the bytes and, by the rearrangement inequality, pairing the heavier group with the smaller variance factor never
// increases Σ V). With levels 0 < 1 < 2 a monotone assignment is a profile (c1, c2), c2 ≤ c1: the first c2 groups
// at level 2, the next c1 − c2 at level 1, the rest at level 0. So a class's frontier is the frontier of its
// profiles. Profiles form chains (fixed c2, growing c1: bytes ↑, variance ↓), and the frontier of a set of chains
// is found by a sweep in key order that skips, per chain, every point no better than the best found so far.
// A channel's frontier is the Pareto sum of its classes' frontiers, found by the same sweep.

/// A Pareto frontier: `bytes` strictly ascending, `variance` strictly descending.
struct Frontier {
    var bytes: [Int] = []
    var variance: [Double] = []

    var count: Int { bytes.count }

    mutating func append(bytes b: Int, variance v: Double) {
        bytes.append(b)
        variance.append(v)
    }
}

/// Chains of points for `sweepStaircase`: chain k holds points `first(k) ... last(k)`, whose keys strictly increase
/// and whose values do not increase along the chain; the first keys of the chains do not decrease with k.
protocol StaircaseChains {
    var chainCount: Int { get }
    func first(_ k: Int) -> Int
    func last(_ k: Int) -> Int
    func key(_ k: Int, _ j: Int) -> Int
    func value(_ k: Int, _ j: Int) -> Double
    /// The largest key of any point when it is small enough for a bucket queue, else `nil`.
    var bucketRange: Int? { get }
}

/// Up to 8 chains use a linear queue; more use a bucket queue when their key range is below this (4 bytes per
/// key), else a binary heap.
let bucketQueueLimit = 1 << 24

/// Emits, in ascending key order, every point `(key, value, chain, index)` whose value is smaller than the value of
/// every point with a smaller key, taking the smallest value (lowest chain on ties) among points with equal keys:
/// the Pareto frontier of the union of the chains.
///
/// Chains are activated lazily in order of their first keys; after the points at key u are examined, each chain
/// involved jumps (galloping, then binary search) to its first later point with a value below the best so far, or
/// retires when its last point is not below it. Skipped points have larger keys and no smaller values than a point
/// already seen, so they are dominated. The jumps rely on values not increasing along a chain, which holds for the
/// profile chains and Pareto sums here (up to floating-point rounding of the values themselves).
func sweepStaircase<C: StaircaseChains>(
    _ chains: C, queue kind: SweepQueueKind = .automatic,
    emit: (_ key: Int, _ value: Double, _ chain: Int, _ index: Int) -> Void
) {
    var kind = kind
    if kind == .automatic {
        if chains.chainCount <= 8 {
            kind = .linear
        } else if let maxKey = chains.bucketRange, maxKey < bucketQueueLimit {
            kind = .bucket
        } else {
            kind = .heap
        }
    }
    switch kind {
    case .linear:
        sweepStaircase(chains, queue: LinearQueue(idCount: chains.chainCount), emit: emit)
    case .bucket:
        guard let maxKey = chains.bucketRange else { preconditionFailure("these chains have no bucket range") }
        sweepStaircase(chains, queue: BucketQueue(maxKey: maxKey, idCount: chains.chainCount), emit: emit)
    case .heap, .automatic:
        sweepStaircase(chains, queue: MinHeap<Int>(), emit: emit)
    }
}

/// Which queue a sweep uses (all give the same result; tests force each one).
enum SweepQueueKind {
    case automatic, linear, bucket, heap
}

private func sweepStaircase<C: StaircaseChains, Q: SweepQueue>(
    _ chains: C, queue: Q, emit: (_ key: Int, _ value: Double, _ chain: Int, _ index: Int) -> Void
) {
    let chainCount = chains.chainCount
    // Per chain: its current point, that point's value, and the value of its last point (its best); and the
    // chains with a point at the current key.
    let position = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(chainCount, 1))
    let currentValue = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(chainCount, 1))
    let lastValue = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(chainCount, 1))
    let gathered = UnsafeMutablePointer<Int32>.allocate(capacity: max(chainCount, 1))
    defer {
        position.deallocate()
        currentValue.deallocate()
        lastValue.deallocate()
        gathered.deallocate()
    }
    var next = 0
    while next < chainCount && chains.first(next) > chains.last(next) { next += 1 }
    var best = Double.infinity
    while true {
        let activation = next < chainCount ? chains.key(next, chains.first(next)) : Int.max
        let key: Int
        if let k = queue.smallestKey(notAbove: activation) {
            key = k
        } else if activation < Int.max {
            key = activation
        } else {
            break
        }
        var gatheredCount = 0
        queue.popAll(key, into: gathered, count: &gatheredCount)
        while next < chainCount && chains.key(next, chains.first(next)) == key {
            let first = chains.first(next)
            position[next] = first
            currentValue[next] = chains.value(next, first)
            lastValue[next] = chains.value(next, chains.last(next))
            gathered[gatheredCount] = Int32(next)
            gatheredCount += 1
            next += 1
            while next < chainCount && chains.first(next) > chains.last(next) { next += 1 }
        }
        var bestValue = Double.infinity
        var bestChain = -1
        for g in 0..<gatheredCount {
            let k = Int(gathered[g])
            let v = currentValue[k]
            if v < bestValue || (v == bestValue && k < bestChain) {
                bestValue = v
                bestChain = k
            }
        }
        if bestValue < best {
            best = bestValue
            emit(key, bestValue, bestChain, position[bestChain])
        }
        for g in 0..<gatheredCount {
            let k = Int(gathered[g])
            let end = chains.last(k)
            var lo = position[k] + 1
            guard lo <= end, lastValue[k] < best else { continue }
            // Gallop to a point below `best` (the last one is), then find the first such point.
            var hi = lo
            var hiValue = hi == end ? lastValue[k] : chains.value(k, hi)
            var step = 1
            while !(hiValue < best) {
                lo = hi + 1
                hi = min(end, hi + step)
                hiValue = hi == end ? lastValue[k] : chains.value(k, hi)
                step &<<= 1
            }
            while lo < hi {
                let mid = (lo + hi) >> 1
                let v = chains.value(k, mid)
                if v < best {
                    hi = mid
                    hiValue = v
                } else {
                    lo = mid + 1
                }
            }
            position[k] = hi
            currentValue[k] = hiValue
            queue.push(chains.key(k, hi), Int32(k))
        }
    }
}

/// The monotone profiles of one class: chain k = c2, point j = c1 ∈ [c2, upgradable] (levels 0, 1, 2), or a single
/// chain j = c1 ∈ [0, upgradable] (levels 0, 1), or the single point (0, 0) (one level).
private struct ProfileChains: StaircaseChains {
    let levels: Int
    let upgradable: Int
    /// Key steps per group going 0 → 1 and 1 → 2 (the byte steps divided by their gcd).
    let step1: Int
    let step2: Int
    let factors: (Double, Double, Double)
    /// `prefix[c] = Σ_{i < c} W_i`, `suffix[c] = Σ_{i ≥ c} W_i` (valid during the sweep).
    let prefix: UnsafeBufferPointer<Double>
    let suffix: UnsafeBufferPointer<Double>

    var chainCount: Int { levels == 3 ? upgradable + 1 : 1 }
    func first(_ k: Int) -> Int { k }
    func last(_ k: Int) -> Int { levels == 1 ? 0 : upgradable }
    func key(_ k: Int, _ j: Int) -> Int { step1 * j + step2 * k }
    func value(_ k: Int, _ j: Int) -> Double {
        factors.0 * suffix[j] + factors.1 * (prefix[j] - prefix[k]) + factors.2 * prefix[k]
    }
    var bucketRange: Int? {
        let (maxKey, overflow) = (step1 + step2).multipliedReportingOverflow(by: upgradable)
        return overflow ? nil : maxKey
    }
}

/// The Pareto sum of two frontiers: chain k walks `small`'s point k combined with every point of `large`
/// (buffers valid during the sweep).
private struct SumChains: StaircaseChains {
    let smallBytes: UnsafeBufferPointer<Int>
    let smallVariance: UnsafeBufferPointer<Double>
    let largeBytes: UnsafeBufferPointer<Int>
    let largeVariance: UnsafeBufferPointer<Double>

    var chainCount: Int { smallBytes.count }
    func first(_ k: Int) -> Int { 0 }
    func last(_ k: Int) -> Int { largeBytes.count - 1 }
    func key(_ k: Int, _ j: Int) -> Int { smallBytes[k] + largeBytes[j] }
    func value(_ k: Int, _ j: Int) -> Double { smallVariance[k] + largeVariance[j] }
    /// Keys are byte totals: usually far too many for buckets, and the sums here have few chains.
    var bucketRange: Int? { nil }

    /// Runs `body` with the chains of `small ⊕ large`.
    static func with<R>(small: Frontier, large: Frontier, _ body: (SumChains) -> R) -> R {
        small.bytes.withUnsafeBufferPointer { sb in
            small.variance.withUnsafeBufferPointer { sv in
                large.bytes.withUnsafeBufferPointer { lb in
                    large.variance.withUnsafeBufferPointer { lv in
                        body(SumChains(smallBytes: sb, smallVariance: sv, largeBytes: lb, largeVariance: lv))
                    }
                }
            }
        }
    }
}

/// The groups of one channel with equal row counts, heaviest first, and the frontier of their profiles.
struct GroupClass {
    let rows: Int
    /// Group indices (into the channel's groups), by weight descending, ties by index.
    let members: [Int]
    var frontier = Frontier()
    var c1: [Int32] = []
    var c2: [Int32] = []
}

/// The exact frontier of one channel, with what is needed to turn a frontier point back into group levels.
struct ChannelFrontier {
    /// Number of effective levels (1 ... 3).
    let levels: Int
    let groupCount: Int
    var classes: [GroupClass] = []
    /// The channel's frontier.
    var frontier = Frontier()
    /// For stage s ≥ 1 (adding class s to the sum of classes 0 ..< s): per point, its parent in the previous
    /// stage's frontier and in class s's frontier.
    var parents: [(previous: [Int32], added: [Int32])] = []

    /// - Parameters:
    ///   - groups: the channel's groups.
    ///   - sizes: bytes per row at each effective level, strictly increasing.
    ///   - factors: variance factors at each effective level, strictly decreasing.
    init(groups: [AssignmentGroup], sizes: [Int], factors: [Double], queue: SweepQueueKind = .automatic) {
        levels = sizes.count
        groupCount = groups.count
        guard !groups.isEmpty else {
            frontier.append(bytes: 0, variance: 0)
            return
        }
        var byRows: [Int: [Int]] = [:]
        for (g, group) in groups.enumerated() { byRows[group.rows, default: []].append(g) }
        for rows in byRows.keys.sorted() {
            let members = byRows[rows]!.sorted { i, j in
                groups[i].weight != groups[j].weight ? groups[i].weight > groups[j].weight : i < j
            }
            classes.append(Self.classFrontier(
                rows: rows, members: members, weights: members.map { groups[$0].weight },
                sizes: sizes, factors: factors, queue: queue))
        }
        frontier = classes[0].frontier
        for s in 1..<classes.count {
            let added = classes[s].frontier
            let swap = added.count < frontier.count
            var sum = Frontier()
            var previous: [Int32] = []
            var addedIndex: [Int32] = []
            SumChains.with(small: swap ? added : frontier, large: swap ? frontier : added) { chains in
                sweepStaircase(chains, queue: queue == .bucket ? .automatic : queue) { key, value, k, j in
                    sum.append(bytes: key, variance: value)
                    previous.append(Int32(swap ? j : k))
                    addedIndex.append(Int32(swap ? k : j))
                }
            }
            frontier = sum
            parents.append((previous, addedIndex))
        }
    }

    private static func classFrontier(
        rows: Int, members: [Int], weights: [Double], sizes: [Int], factors: [Double], queue: SweepQueueKind
    ) -> GroupClass {
        let n = members.count
        var prefix = [Double](repeating: 0, count: n + 1)
        var suffix = [Double](repeating: 0, count: n + 1)
        for i in 0..<n { prefix[i + 1] = prefix[i] + weights[i] }
        for i in stride(from: n - 1, through: 0, by: -1) { suffix[i] = suffix[i + 1] + weights[i] }
        // Upgrading a weightless group only costs bytes; they sort last.
        let upgradable = weights.firstIndex(where: { $0 == 0 }) ?? n
        let levels = sizes.count
        let delta1 = levels > 1 ? sizes[1] - sizes[0] : 1
        let delta2 = levels > 2 ? sizes[2] - sizes[1] : 0
        let unit = levels > 2 ? gcd(delta1, delta2) : delta1
        var result = GroupClass(rows: rows, members: members)
        let base = n * sizes[0]
        prefix.withUnsafeBufferPointer { prefix in
            suffix.withUnsafeBufferPointer { suffix in
                let chains = ProfileChains(
                    levels: levels, upgradable: upgradable, step1: delta1 / unit, step2: delta2 / unit,
                    factors: (factors[0], levels > 1 ? factors[1] : factors[0], levels > 2 ? factors[2] : factors[0]),
                    prefix: prefix, suffix: suffix)
                sweepStaircase(chains, queue: queue) { key, value, k, j in
                    result.frontier.append(bytes: rows * (base + unit * key), variance: value)
                    result.c1.append(Int32(j))
                    result.c2.append(Int32(k))
                }
            }
        }
        return result
    }

    /// The effective level of every group at frontier point `index`.
    func groupLevels(point index: Int) -> [Int] {
        var levelsOfGroups = [Int](repeating: 0, count: groupCount)
        guard !classes.isEmpty else { return levelsOfGroups }
        var classPoint = [Int](repeating: 0, count: classes.count)
        var i = index
        for s in stride(from: classes.count - 1, through: 1, by: -1) {
            classPoint[s] = Int(parents[s - 1].added[i])
            i = Int(parents[s - 1].previous[i])
        }
        classPoint[0] = i
        for (s, cls) in classes.enumerated() {
            let c1 = Int(cls.c1[classPoint[s]])
            let c2 = levels == 3 ? Int(cls.c2[classPoint[s]]) : 0
            for (position, g) in cls.members.enumerated() {
                levelsOfGroups[g] = position < c2 ? 2 : (position < c1 ? 1 : 0)
            }
        }
        return levelsOfGroups
    }
}

func gcd(_ a: Int, _ b: Int) -> Int {
    var (x, y) = (abs(a), abs(b))
    while y != 0 { (x, y) = (y, x % y) }
    return x
}
