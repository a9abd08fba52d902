import HaloQuantization

/// Solves AdaQP's bit-width assignment problem without any external solver.
///
/// `solve` is **exact**: it returns an assignment minimising `λ·norm(Σ V) + (1 − λ)·norm(T)` over all
/// `|candidates|^(number of groups)` assignments (up to floating-point rounding of the objective, i.e. assignments
/// whose objectives differ by a few ulps may be ranked either way). Among optimal assignments it returns one with
/// the least Σ V, then the least T. In particular λ = 0 gives a time-minimal assignment whose channels below their
/// round's bottleneck are raised as far as that round's time allows (free variance reduction), and λ = 1 gives the
/// variance-minimal assignment with the least time.
///
/// Why it is exact:
/// 1. *Separability.* The objective is `A·Σ V + B·T + const` with `A = λ/(V_worst − V_best)` and
///    `B = (1 − λ)/(T_worst − T_best)`; Σ V is a sum over channels and T a sum over rounds, and every channel lies
///    in exactly one round, so each round r is solved on its own: minimise `A·Σ_{c ∈ r} V_c + B·max_{c ∈ r} t_c`.
/// 2. *Channel frontiers.* Only Pareto-optimal (bytes, Σ V) points of a channel can be part of an optimum (replacing
///    a dominated point never raises either term). Each channel's frontier is computed exactly: groups with equal
///    row counts form a class whose optimal assignments are monotone in weight (rearrangement inequality), hence
///    given by profiles (how many groups at ≥ each level); a class's frontier is the Pareto set of its profiles,
///    and a channel's frontier is the Pareto sum of its classes' frontiers (see `Frontier.swift`).
/// 3. *Round sweep.* For a cap τ on the round's time every channel independently takes its least-variance frontier
///    point with `t_c ≤ τ`; an optimum's round time is the time of some frontier point, so sweeping τ over all
///    frontier times of the round (merged in ascending order) and keeping the best `A·Σ V + B·τ` is exact.
///
/// Cost: a class of N equally sized groups is swept in O(F + S·log N) after an O(N log N) sort, where F is its
/// frontier size (at most the number of distinct byte totals of its profiles: ≤ 3N + 1 when D is a multiple of 4,
/// ~10^4 – 4·10^4 for N = 2000 at D = 602 with heavy-tailed weights) and S the number of times a chain is resumed
/// (a few × F in practice). A channel's frontier is the Pareto sum of its classes' frontiers, which costs about
/// the product of their sizes: cheap when one class dominates, as with groups from `RowGrouping` (all of
/// `groupSize` rows but the last). The round sweep is O(Σ F·log P). Many distinct row counts in one channel make
/// the Pareto sums expensive (the problem is a knapsack), never inexact. Measured (release, one core of a loaded
/// 2-core VM): P = 8, 56 channels × 2000 groups of 100 rows: 0.06 – 0.35 s depending on D and the weight spread.
///
/// Candidate widths whose row size equals the next larger candidate's (only for tiny widths D) are never better
/// than it and are skipped by `solve`.
public enum AssignmentSolver {
    /// The exact optimum of `problem` (see the type's documentation).
    public static func solve(_ problem: AssignmentProblem) -> AssignmentSolution {
        let levels = effectiveLevels(problem)
        let sizes = levels.map { problem.rowBytes($0) }
        let factors = levels.map { AssignmentProblem.varianceFactor($0) }
        let varianceWeight = problem.bounds.varianceWeight(lambda: problem.lambda)
        let timeWeight = problem.bounds.timeWeight(lambda: problem.lambda)
        var bits = problem.channels.map { [BitWidth](repeating: levels[0], count: $0.groups.count) }
        for members in problem.rounds where !members.isEmpty {
            let channelFrontiers = members.map {
                ChannelFrontier(groups: problem.channels[$0].groups, sizes: sizes, factors: factors)
            }
            let chosen = sweepRound(
                frontiers: channelFrontiers.map(\.frontier), costs: members.map { problem.channels[$0].cost },
                varianceWeight: varianceWeight, timeWeight: timeWeight)
            for (i, c) in members.enumerated() {
                bits[c] = channelFrontiers[i].groupLevels(point: chosen[i]).map { levels[$0] }
            }
        }
        return problem.solution(bits: bits)
    }

    /// The candidates whose row size is below the next larger candidate's, ascending (the largest always).
    static func effectiveLevels(_ problem: AssignmentProblem) -> [BitWidth] {
        let c = problem.candidates
        var levels: [BitWidth] = []
        for (i, b) in c.enumerated() where i == c.count - 1 || problem.rowBytes(b) < problem.rowBytes(c[i + 1]) {
            levels.append(b)
        }
        return levels
    }

    /// The frontier point of every channel of one round minimising `A·Σ V + B·τ`, then Σ V, then τ, where τ is the
    /// slowest chosen point's time.
    static func sweepRound(
        frontiers: [Frontier], costs: [LinkCost], varianceWeight: Double, timeWeight: Double
    ) -> [Int] {
        let count = frontiers.count
        let heap = MinHeap<Double>(capacity: frontiers.count)
        for c in 0..<count { heap.push(costs[c].time(bytes: frontiers[c].bytes[0]), Int32(c)) }
        var current = [Int](repeating: -1, count: count)
        var ready = 0
        // Σ V of the current points, compensated (Neumaier) so long sweeps do not drift.
        var sum = 0.0
        var compensation = 0.0
        func add(_ x: Double) {
            let t = sum + x
            if abs(sum) >= abs(x) { compensation += (sum - t) + x } else { compensation += (x - t) + sum }
            sum = t
        }
        var best = (objective: Double.infinity, variance: Double.infinity, tau: Double.infinity)
        while let tau = heap.minKey {
            while let t = heap.minKey, t == tau {
                let c = Int(heap.pop())
                let i = current[c] + 1
                add(frontiers[c].variance[i])
                if i == 0 { ready += 1 } else { add(-frontiers[c].variance[i - 1]) }
                current[c] = i
                if i + 1 < frontiers[c].count {
                    heap.push(costs[c].time(bytes: frontiers[c].bytes[i + 1]), Int32(c))
                }
            }
            guard ready == count else { continue }
            let variance = sum + compensation
            let objective = varianceWeight * variance + timeWeight * tau
            if objective < best.objective
                || (objective == best.objective && (variance < best.variance
                    || (variance == best.variance && tau < best.tau))) {
                best = (objective, variance, tau)
            }
        }
        // Each channel's point at the best cap: its last point no slower than τ.
        return (0..<count).map { c in
            var lo = 0, hi = frontiers[c].count - 1
            while lo < hi {
                let mid = (lo + hi + 1) >> 1
                if costs[c].time(bytes: frontiers[c].bytes[mid]) <= best.tau { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }
    }
}
