import Foundation
import HaloAssignment
import HaloQuantization
import HaloTestSupport

/// SplitMix64: a small deterministic generator for test instances.
struct TestRandom {
    private var source: TestRNG

    init(seed: UInt64) { source = TestRNG(seed: seed) }

    mutating func next() -> UInt64 { source.next() }

    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    /// 10^u with u uniform in `exponents`.
    mutating func logUniform(_ exponents: ClosedRange<Double>) -> Double {
        pow(10, exponents.lowerBound + uniform() * (exponents.upperBound - exponents.lowerBound))
    }

    mutating func element<T>(_ array: [T]) -> T { array[int(0...(array.count - 1))] }
}

/// `|a − b| ≤ tolerance·max(|a|, |b|) + absolute`.
func nearlyEqual(_ a: Double, _ b: Double, relative: Double = 1e-9, absolute: Double = 1e-12) -> Bool {
    abs(a - b) <= relative * max(abs(a), abs(b)) + absolute
}

/// A random small instance; every round has at most `maxRoundAssignments` assignments.
func randomProblem(
    _ random: inout TestRandom, worldSize: Int, lambda: Double, maxGroups: Int, maxRoundAssignments: Int = 6561
) -> AssignmentProblem {
    while true {
        let width = random.element([1, 2, 3, 7, 16, 41, 64, 100, 128, 602])
        let candidates: [BitWidth] = random.int(0...5) == 0
            ? random.element([[.two, .eight], [.four], [.two, .four], [.four, .eight]])
            : [.two, .four, .eight]
        let slow = (random.int(0...(worldSize - 1)), random.int(0...(worldSize - 1)))
        let sharedRows = random.int(1...40)
        var channels: [AssignmentChannel] = []
        for s in 0..<worldSize {
            for p in 0..<worldSize where p != s {
                var a = random.logUniform(-9.5 ... -8.5)
                if (s, p) == slow { a *= 30 }
                let cost = LinkCost(secondsPerByte: a, latency: random.logUniform(-5.5 ... -4))
                let groups = (0..<random.int(1...maxGroups)).map { _ in
                    AssignmentGroup(
                        weight: random.int(0...30) == 0 ? 0 : random.logUniform(-3...3),
                        rows: random.int(0...2) == 0 ? sharedRows : random.int(1...60))
                }
                channels.append(AssignmentChannel(source: s, destination: p, cost: cost, groups: groups))
            }
        }
        let problem = AssignmentProblem(
            width: width, worldSize: worldSize, lambda: lambda, candidates: candidates, channels: channels)
        let fits = problem.rounds.allSatisfy { members in
            var n = 1
            for c in members {
                for _ in problem.channels[c].groups {
                    let (m, overflow) = n.multipliedReportingOverflow(by: problem.candidates.count)
                    if overflow { return maxRoundAssignments == .max }
                    n = m
                    if n > maxRoundAssignments { return false }
                }
            }
            return true
        }
        if fits { return problem }
    }
}
