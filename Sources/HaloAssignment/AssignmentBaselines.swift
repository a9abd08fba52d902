import HaloQuantization

extension AssignmentSolver {
    /// Most assignments `bruteForce` enumerates per round.
    public static let bruteForceLimit = 1 << 22

    /// The optimum by enumerating every assignment of every round (for tests).
    ///
    /// Rounds are enumerated separately — the objective is a sum of one term per round plus a constant, and every
    /// channel lies in one round — with the same tie-breaking as `solve` (least objective, then least Σ V, then
    /// least round time). Uses all candidates, including ones `solve` skips as dominated.
    ///
    /// - Precondition: every round has at most `bruteForceLimit` assignments.
    public static func bruteForce(_ problem: AssignmentProblem) -> AssignmentSolution {
        let candidates = problem.candidates
        let sizes = candidates.map { problem.rowBytes($0) }
        let factors = candidates.map { AssignmentProblem.varianceFactor($0) }
        let varianceWeight = problem.bounds.varianceWeight(lambda: problem.lambda)
        let timeWeight = problem.bounds.timeWeight(lambda: problem.lambda)
        var bits = problem.channels.map { [BitWidth](repeating: candidates[0], count: $0.groups.count) }
        for members in problem.rounds where !members.isEmpty {
            let groupCount = members.reduce(0) { $0 + problem.channels[$1].groups.count }
            var combinations = 1
            for _ in 0..<groupCount {
                combinations *= candidates.count
                precondition(combinations <= bruteForceLimit, "round too large for brute force")
            }
            var level = [[Int]](members.map { [Int](repeating: 0, count: problem.channels[$0].groups.count) })
            var bestLevel = level
            var best = (objective: Double.infinity, variance: Double.infinity, tau: Double.infinity)
            for _ in 0..<combinations {
                var variance = 0.0
                var tau = 0.0
                for (i, c) in members.enumerated() {
                    let channel = problem.channels[c]
                    var bytes = 0
                    var channelVariance = 0.0
                    for (g, group) in channel.groups.enumerated() {
                        bytes += group.rows * sizes[level[i][g]]
                        channelVariance += group.weight * factors[level[i][g]]
                    }
                    variance += channelVariance
                    tau = max(tau, channel.cost.time(bytes: bytes))
                }
                let objective = varianceWeight * variance + timeWeight * tau
                if objective < best.objective
                    || (objective == best.objective && (variance < best.variance
                        || (variance == best.variance && tau < best.tau))) {
                    best = (objective, variance, tau)
                    bestLevel = level
                }
                // Next assignment (mixed radix).
                increment: for i in level.indices {
                    for g in level[i].indices {
                        level[i][g] += 1
                        if level[i][g] < candidates.count { break increment }
                        level[i][g] = 0
                    }
                }
            }
            for (i, c) in members.enumerated() { bits[c] = bestLevel[i].map { candidates[$0] } }
        }
        return problem.solution(bits: bits)
    }

    /// Every group at `bits` (the `uniform:B` assignment mode). `bits` need not be a candidate.
    public static func uniformAssignment(_ problem: AssignmentProblem, bits: BitWidth) -> AssignmentSolution {
        problem.solution(bits: problem.channels.map { [BitWidth](repeating: bits, count: $0.groups.count) })
    }

    /// Every group at a candidate drawn uniformly at random (the `random` assignment mode): the same `seed` gives the
    /// same assignment on every platform (SplitMix64, channels and groups in problem order).
    public static func randomAssignment(_ problem: AssignmentProblem, seed: UInt64) -> AssignmentSolution {
        var state = seed
        let candidates = problem.candidates
        let bits = problem.channels.map { channel in
            channel.groups.map { _ in candidates[boundedRandom(&state, Int(candidates.count))] }
        }
        return problem.solution(bits: bits)
    }
}

/// A SplitMix64 draw mapped to `0 ..< bound` (multiply-high; the bias is below 2^-60 for small bounds).
private func boundedRandom(_ state: inout UInt64, _ bound: Int) -> Int {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    return Int(z.multipliedFullWidth(by: UInt64(bound)).high)
}
