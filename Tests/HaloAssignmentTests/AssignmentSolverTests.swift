@testable import HaloAssignment
import HaloQuantization
import XCTest

final class AssignmentSolverTests: XCTestCase {
    private let lambdas = [0, 0.25, 0.5, 0.75, 1]

    private func assertMatchesBruteForce(_ problem: AssignmentProblem, _ label: String) {
        let solved = AssignmentSolver.solve(problem)
        let brute = AssignmentSolver.bruteForce(problem)
        XCTAssertTrue(nearlyEqual(solved.objective, brute.objective),
                      "\(label): objective \(solved.objective) vs brute force \(brute.objective)")
        XCTAssertTrue(nearlyEqual(solved.variance, brute.variance),
                      "\(label): Σ V \(solved.variance) vs brute force \(brute.variance)")
        XCTAssertTrue(nearlyEqual(solved.time, brute.time), "\(label): T \(solved.time) vs brute force \(brute.time)")
        // The reported values are those of the returned bits.
        let check = problem.solution(bits: solved.bits)
        XCTAssertEqual(check, solved, label)
    }

    func testSolverMatchesBruteForceOnRandomInstances() {
        var random = TestRandom(seed: 0xADA9)
        var count = 0
        for worldSize in [2, 3, 4] {
            for lambda in lambdas {
                for trial in 0..<(worldSize == 4 ? 10 : 16) {
                    let problem = randomProblem(
                        &random, worldSize: worldSize, lambda: lambda, maxGroups: worldSize == 4 ? 2 : 4)
                    assertMatchesBruteForce(problem, "P=\(worldSize) λ=\(lambda) trial \(trial)")
                    count += 1
                }
            }
        }
        XCTAssertEqual(count, 210)
    }

    func testSolverMatchesBruteForceWithManyEqualGroups() {
        // One channel per round with several equally sized groups: the monotone-profile path with long chains.
        var random = TestRandom(seed: 77)
        for lambda in lambdas {
            for trial in 0..<6 {
                let rows = random.int(1...30)
                let width = random.element([16, 41, 64, 602])
                let groups = (0..<random.int(5...7)).map { i in
                    AssignmentGroup(weight: random.logUniform(-2...4), rows: i == 6 ? random.int(1...30) : rows)
                }
                let problem = AssignmentProblem(
                    width: width, worldSize: 2, lambda: lambda,
                    channels: [
                        AssignmentChannel(source: 0, destination: 1,
                                          cost: LinkCost(secondsPerByte: 1e-9, latency: 1e-5), groups: groups),
                        AssignmentChannel(source: 1, destination: 0,
                                          cost: LinkCost(secondsPerByte: 3e-9, latency: 2e-5),
                                          groups: Array(groups.prefix(3))),
                    ])
                assertMatchesBruteForce(problem, "λ=\(lambda) trial \(trial)")
            }
        }
    }

    /// `bruteForce` enumerates rounds separately; check that against enumerating everything at once.
    func testRoundwiseBruteForceMatchesGlobalEnumeration() {
        var random = TestRandom(seed: 5)
        for trial in 0..<40 {
            let worldSize = random.int(2...3)
            let problem = randomProblem(&random, worldSize: worldSize, lambda: random.element(lambdas), maxGroups: 1)
            let flat = problem.channels.indices.flatMap { c in problem.channels[c].groups.indices.map { (c, $0) } }
            var level = [Int](repeating: 0, count: flat.count)
            var best = Double.infinity
            var total = 1
            for _ in flat { total *= problem.candidates.count }
            for _ in 0..<total {
                var bits = problem.channels.map { [BitWidth](repeating: .two, count: $0.groups.count) }
                for (k, (c, g)) in flat.enumerated() { bits[c][g] = problem.candidates[level[k]] }
                best = min(best, problem.solution(bits: bits).objective)
                for k in level.indices {
                    level[k] += 1
                    if level[k] < problem.candidates.count { break }
                    level[k] = 0
                }
            }
            let brute = AssignmentSolver.bruteForce(problem)
            XCTAssertTrue(nearlyEqual(brute.objective, best), "trial \(trial): \(brute.objective) vs \(best)")
            XCTAssertTrue(nearlyEqual(AssignmentSolver.solve(problem).objective, best), "trial \(trial)")
        }
    }

    /// On instances too large to enumerate: no single group's width can be changed for a better objective.
    func testNoSingleChangeImprovesLargerInstances() {
        var random = TestRandom(seed: 17)
        for trial in 0..<4 {
            let problem = randomProblem(
                &random, worldSize: 3, lambda: random.element([0.25, 0.5, 0.75]), maxGroups: 40,
                maxRoundAssignments: .max)
            let s = AssignmentSolver.solve(problem)
            for c in problem.channels.indices {
                for g in problem.channels[c].groups.indices {
                    for b in problem.candidates where b != s.bits[c][g] {
                        var bits = s.bits
                        bits[c][g] = b
                        let other = problem.solution(bits: bits)
                        XCTAssertGreaterThanOrEqual(other.objective, s.objective - 1e-12, "trial \(trial) channel \(c) group \(g)")
                    }
                }
            }
        }
    }

    func testNormalisationBounds() {
        let cost01 = LinkCost(secondsPerByte: 1e-6, latency: 1e-3)
        let cost10 = LinkCost(secondsPerByte: 2e-6, latency: 0)
        let problem = AssignmentProblem(
            width: 16, worldSize: 2, lambda: 0.5,
            channels: [
                AssignmentChannel(source: 0, destination: 1, cost: cost01,
                                  groups: [AssignmentGroup(weight: 9, rows: 10), AssignmentGroup(weight: 18, rows: 5)]),
                AssignmentChannel(source: 1, destination: 0, cost: cost10,
                                  groups: [AssignmentGroup(weight: 45, rows: 4)]),
            ])
        // Row bytes at D = 16: 8 + 4 = 12 (2 bits), 8 + 8 = 16 (4 bits), 8 + 16 = 24 (8 bits).
        XCTAssertEqual(problem.rowBytes(.two), 12)
        XCTAssertEqual(problem.rowBytes(.eight), 24)
        let b = problem.bounds
        XCTAssertEqual(b.varianceWorst, 72.0 / 9, accuracy: 1e-12)
        XCTAssertEqual(b.varianceBest, 72.0 / 65025, accuracy: 1e-15)
        // One round (r = 1) holding both channels: max(1e-3 + 1e-6·180, 2e-6·48) at 2 bits, bytes ×2 at 8 bits.
        XCTAssertEqual(b.timeBest, 1e-3 + 180e-6, accuracy: 1e-15)
        XCTAssertEqual(b.timeWorst, 1e-3 + 360e-6, accuracy: 1e-15)
        XCTAssertEqual(b.normalizedVariance(b.varianceBest), 0)
        XCTAssertEqual(b.normalizedVariance(b.varianceWorst), 1)
        XCTAssertEqual(b.normalizedTime(b.timeWorst), 1)
        let low = AssignmentSolver.uniformAssignment(problem, bits: .two)
        let high = AssignmentSolver.uniformAssignment(problem, bits: .eight)
        XCTAssertEqual(low.objective, 0.5, accuracy: 1e-12)
        XCTAssertEqual(high.objective, 0.5, accuracy: 1e-12)
        XCTAssertEqual(low.roundTimes, [b.timeBest])
        // Degenerate terms normalise to 0.
        let free = AssignmentProblem(
            width: 16, worldSize: 2, lambda: 0.3,
            channels: [AssignmentChannel(source: 0, destination: 1, cost: .zero,
                                         groups: [AssignmentGroup(weight: 0, rows: 3)])])
        XCTAssertEqual(free.bounds.normalizedTime(free.bounds.timeWorst), 0)
        XCTAssertEqual(free.bounds.normalizedVariance(1), 0)
        XCTAssertEqual(AssignmentSolver.solve(free).objective, 0)
    }

    func testLambdaOneGivesAllEightBits() {
        var random = TestRandom(seed: 1)
        for _ in 0..<10 {
            var problem = randomProblem(&random, worldSize: 4, lambda: 1, maxGroups: 6, maxRoundAssignments: .max)
            problem = AssignmentProblem(width: problem.width, worldSize: 4, lambda: 1, channels: problem.channels.map {
                var c = $0
                c.groups = c.groups.map { AssignmentGroup(weight: max($0.weight, 1e-3), rows: $0.rows) }
                return c
            })
            let s = AssignmentSolver.solve(problem)
            XCTAssertTrue(s.bits.allSatisfy { $0.allSatisfy { $0 == .eight } })
            XCTAssertEqual(s.variance, problem.bounds.varianceBest, accuracy: 1e-12 * s.variance)
            XCTAssertEqual(s.objective, 0, accuracy: 1e-12)
        }
    }

    func testLambdaZeroIsTimeMinimal() {
        var random = TestRandom(seed: 2)
        for _ in 0..<10 {
            let problem = randomProblem(&random, worldSize: 4, lambda: 0, maxGroups: 6, maxRoundAssignments: .max)
            let s = AssignmentSolver.solve(problem)
            XCTAssertEqual(s.time, problem.bounds.timeBest, accuracy: 1e-12 * s.time)
            XCTAssertEqual(s.objective, 0, accuracy: 1e-12)
        }
        // Identical channels: every channel is its round's bottleneck, so everything goes at 2 bits.
        let groups = [AssignmentGroup(weight: 5, rows: 10), AssignmentGroup(weight: 1, rows: 7)]
        let problem = AssignmentProblem(
            width: 64, lambda: 0, links: LinkCostModel(worldSize: 3, uniform: LinkCost(secondsPerByte: 1e-9, latency: 1e-5)),
            groups: { _, _ in groups })
        let s = AssignmentSolver.solve(problem)
        XCTAssertTrue(s.bits.allSatisfy { $0.allSatisfy { $0 == .two } })
        XCTAssertEqual(s.time, problem.bounds.timeBest)
    }

    func testRaisingLambdaNeverIncreasesVariance() {
        var random = TestRandom(seed: 3)
        for trial in 0..<12 {
            let base = randomProblem(&random, worldSize: 3, lambda: 0, maxGroups: 12, maxRoundAssignments: .max)
            var previous = (variance: Double.infinity, time: 0.0)
            for step in 0...20 {
                let lambda = Double(step) / 20
                let problem = AssignmentProblem(
                    width: base.width, worldSize: 3, lambda: lambda, candidates: base.candidates, channels: base.channels)
                let s = AssignmentSolver.solve(problem)
                XCTAssertLessThanOrEqual(s.variance, previous.variance * (1 + 1e-12), "trial \(trial) λ=\(lambda)")
                XCTAssertGreaterThanOrEqual(s.time, previous.time * (1 - 1e-12), "trial \(trial) λ=\(lambda)")
                previous = (s.variance, s.time)
            }
        }
    }

    func testSlowLinkGetsFewerBits() {
        let groups = (0..<20).map { AssignmentGroup(weight: 100 / Double($0 + 1), rows: 50) }
        let fast = LinkCost(secondsPerByte: 1e-9, latency: 1e-5)
        let slow = LinkCost(secondsPerByte: 1e-8, latency: 1e-5)
        for lambda in [0.25, 0.5, 0.75] {
            let problem = AssignmentProblem(
                width: 128, worldSize: 2, lambda: lambda,
                channels: [
                    AssignmentChannel(source: 0, destination: 1, cost: slow, groups: groups),
                    AssignmentChannel(source: 1, destination: 0, cost: fast, groups: groups),
                ])
            let s = AssignmentSolver.solve(problem)
            let slowBits = s.bits[0].reduce(0) { $0 + $1.bits }
            let fastBits = s.bits[1].reduce(0) { $0 + $1.bits }
            XCTAssertLessThan(slowBits, fastBits, "λ=\(lambda): \(s.bits)")
            for (a, b) in zip(s.bits[0], s.bits[1]) { XCTAssertLessThanOrEqual(a, b) }
        }
    }

    func testDominatedCandidatesAtTinyWidths() {
        // D = 1 and 2: 2-bit and 4-bit rows have the same size, so 2 bits is never better than 4.
        var random = TestRandom(seed: 4)
        for width in [1, 2] {
            for lambda in lambdas {
                let base = randomProblem(&random, worldSize: 2, lambda: lambda, maxGroups: 4)
                let problem = AssignmentProblem(width: width, worldSize: 2, lambda: lambda, channels: base.channels)
                XCTAssertEqual(problem.rowBytes(.two), problem.rowBytes(.four))
                assertMatchesBruteForce(problem, "D=\(width) λ=\(lambda)")
                XCTAssertFalse(AssignmentSolver.solve(problem).bits.joined().contains(.two))
            }
        }
    }

    func testEdgeCases() {
        // One rank: no channels, nothing to do.
        let single = AssignmentProblem(width: 8, worldSize: 1, channels: [])
        let s = AssignmentSolver.solve(single)
        XCTAssertEqual(s.bits, [])
        XCTAssertEqual(s.time, 0)
        XCTAssertEqual(s.objective, 0)
        // Empty channels pay their latency; missing channels cost nothing.
        let cost = LinkCost(secondsPerByte: 1e-9, latency: 1e-4)
        let sparse = AssignmentProblem(
            width: 8, worldSize: 3, lambda: 0.5,
            channels: [
                AssignmentChannel(source: 0, destination: 1, cost: cost, groups: []),
                AssignmentChannel(source: 2, destination: 1, cost: cost, groups: [AssignmentGroup(weight: 1, rows: 4)]),
            ])
        XCTAssertEqual(sparse.rounds, [[0], [1]])
        let t = AssignmentSolver.solve(sparse)
        XCTAssertEqual(t.bits[0], [])
        XCTAssertEqual(t.roundTimes[0], 1e-4)
        XCTAssertEqual(t, AssignmentSolver.bruteForce(sparse))
        // A single candidate.
        let fixed = AssignmentProblem(
            width: 8, worldSize: 2, lambda: 0.5, candidates: [.four],
            channels: [AssignmentChannel(source: 0, destination: 1, cost: cost, groups: [AssignmentGroup(weight: 1, rows: 4)])])
        XCTAssertEqual(AssignmentSolver.solve(fixed).bits, [[.four]])
    }

    func testRandomAndUniformAssignments() {
        var random = TestRandom(seed: 6)
        let problem = randomProblem(&random, worldSize: 4, lambda: 0.5, maxGroups: 30, maxRoundAssignments: .max)
        let a = AssignmentSolver.randomAssignment(problem, seed: 42)
        XCTAssertEqual(a, AssignmentSolver.randomAssignment(problem, seed: 42))
        XCTAssertNotEqual(a.bits, AssignmentSolver.randomAssignment(problem, seed: 43).bits)
        let all = a.bits.joined()
        for b in problem.candidates { XCTAssertTrue(all.contains(b)) }
        XCTAssertEqual(a, problem.solution(bits: a.bits))
        // Pinned draws, so the mode is reproducible across builds and platforms.
        let pinned = AssignmentProblem(
            width: 8, worldSize: 2,
            channels: [AssignmentChannel(source: 0, destination: 1, cost: .zero,
                                         groups: Array(repeating: AssignmentGroup(weight: 1, rows: 1), count: 8))])
        XCTAssertEqual(AssignmentSolver.randomAssignment(pinned, seed: 1).bits, [PinnedDraws.seed1])
        let u = AssignmentSolver.uniformAssignment(problem, bits: .four)
        XCTAssertTrue(u.bits.joined().allSatisfy { $0 == .four })
        XCTAssertEqual(u.variance, problem.bounds.varianceWorst * 9 / 225, accuracy: 1e-9 * u.variance)
        // The solver is never worse than either.
        let best = AssignmentSolver.solve(problem)
        XCTAssertLessThanOrEqual(best.objective, a.objective + 1e-12)
        XCTAssertLessThanOrEqual(best.objective, u.objective + 1e-12)
    }
}

private enum PinnedDraws {
    // Computed independently from the SplitMix64 reference (multiply-high of each draw by 3).
    static let seed1: [BitWidth] = [.four, .eight, .eight, .four, .four, .eight, .eight, .four]
}
