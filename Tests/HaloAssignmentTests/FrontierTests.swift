@testable import HaloAssignment
import HaloQuantization
import XCTest

/// The exact channel frontiers the solver is built on.
final class FrontierTests: XCTestCase {
    /// Sizes and variance factors of the levels `solve` uses at width `width`.
    private func levels(width: Int) -> (sizes: [Int], factors: [Double]) {
        let problem = AssignmentProblem(width: width, worldSize: 2, channels: [])
        let levels = AssignmentSolver.effectiveLevels(problem)
        return (levels.map { problem.rowBytes($0) }, levels.map { AssignmentProblem.varianceFactor($0) })
    }

    /// The Pareto frontier by plain enumeration: add the groups one at a time, keeping the non-dominated sums.
    private func naiveFrontier(_ groups: [AssignmentGroup], sizes: [Int], factors: [Double]) -> [(bytes: Int, variance: Double)] {
        var points: [(bytes: Int, variance: Double)] = [(0, 0)]
        for g in groups {
            var next: [(bytes: Int, variance: Double)] = []
            for p in points {
                for l in sizes.indices { next.append((p.bytes + g.rows * sizes[l], p.variance + g.weight * factors[l])) }
            }
            next.sort { $0.bytes != $1.bytes ? $0.bytes < $1.bytes : $0.variance < $1.variance }
            points = []
            for p in next where points.isEmpty || p.variance < points[points.count - 1].variance * (1 - 1e-12) {
                if let last = points.last, last.bytes == p.bytes { continue }
                points.append(p)
            }
        }
        return points
    }

    private func assertMatchesNaive(_ groups: [AssignmentGroup], width: Int, _ label: String) {
        let (sizes, factors) = levels(width: width)
        let expected = naiveFrontier(groups, sizes: sizes, factors: factors)
        let frontier = ChannelFrontier(groups: groups, sizes: sizes, factors: factors)
        XCTAssertEqual(frontier.frontier.bytes, expected.map(\.bytes), label)
        guard frontier.frontier.count == expected.count else { return }
        for (i, p) in expected.enumerated() {
            XCTAssertTrue(nearlyEqual(frontier.frontier.variance[i], p.variance), "\(label) point \(i)")
            // The point expands to group levels with exactly its bytes and variance.
            var bytes = 0
            var variance = 0.0
            for (g, l) in zip(groups, frontier.groupLevels(point: i)) {
                bytes += g.rows * sizes[l]
                variance += g.weight * factors[l]
            }
            XCTAssertEqual(bytes, p.bytes, "\(label) point \(i)")
            XCTAssertTrue(nearlyEqual(variance, p.variance), "\(label) point \(i)")
        }
    }

    func testSmallChannelsMatchNaiveEnumeration() {
        var random = TestRandom(seed: 99)
        for trial in 0..<60 {
            let shared = random.int(1...9)
            let groups = (0..<random.int(1...9)).map { _ in
                AssignmentGroup(weight: random.int(0...12) == 0 ? 0 : random.logUniform(-3...3),
                                rows: random.int(0...1) == 0 ? shared : random.int(1...9))
            }
            assertMatchesNaive(groups, width: random.element([2, 16, 41, 100, 602]), "trial \(trial)")
        }
    }

    func testMediumChannelsMatchNaiveEnumeration() {
        // Tens of groups in two or three row-count classes: long profile chains and Pareto sums of big frontiers.
        var random = TestRandom(seed: 123)
        for trial in 0..<8 {
            let maxRows = trial % 2 == 0 ? 6 : 40
            let counts = [random.int(1...maxRows), random.int(1...maxRows), random.int(1...maxRows)]
            let groups = (0..<random.int(20...36)).map { i in
                AssignmentGroup(weight: random.logUniform(-2...3), rows: i % 7 == 6 ? counts[2] : counts[i % 2])
            }
            assertMatchesNaive(groups, width: random.element([16, 41, 602]), "trial \(trial)")
        }
    }

    func testAllSweepQueuesAgree() {
        var random = TestRandom(seed: 321)
        for trial in 0..<12 {
            let rows = random.int(20...120)
            var groups = (0..<random.int(10...400)).map { _ in
                AssignmentGroup(weight: random.logUniform(-2...random.element([1.0, 4.0])), rows: rows)
            }
            groups.append(AssignmentGroup(weight: random.logUniform(-2...1), rows: random.int(1...19)))
            if trial % 3 == 0 { groups.append(AssignmentGroup(weight: 0, rows: rows)) }
            let (sizes, factors) = levels(width: random.element([64, 100, 256, 602]))
            let reference = ChannelFrontier(groups: groups, sizes: sizes, factors: factors, queue: .heap)
            for kind in [SweepQueueKind.automatic, .linear, .bucket] {
                let f = ChannelFrontier(groups: groups, sizes: sizes, factors: factors, queue: kind)
                XCTAssertEqual(f.frontier.bytes, reference.frontier.bytes, "trial \(trial) \(kind)")
                XCTAssertEqual(f.frontier.variance, reference.frontier.variance, "trial \(trial) \(kind)")
                XCTAssertEqual(f.groupLevels(point: f.frontier.count / 2), reference.groupLevels(point: f.frontier.count / 2))
            }
            // Frontier invariants: bytes strictly up, variance strictly down, from all-lowest to all-highest.
            let b = reference.frontier.bytes, v = reference.frontier.variance
            XCTAssertTrue(zip(b, b.dropFirst()).allSatisfy { $0 < $1 })
            XCTAssertTrue(zip(v, v.dropFirst()).allSatisfy { $0 > $1 })
            XCTAssertEqual(b.first, groups.reduce(0) { $0 + $1.rows * sizes[0] })
            XCTAssertEqual(reference.groupLevels(point: 0), [Int](repeating: 0, count: groups.count))
            XCTAssertEqual(reference.groupLevels(point: b.count - 1), groups.map { $0.weight > 0 ? sizes.count - 1 : 0 })
        }
    }
}
