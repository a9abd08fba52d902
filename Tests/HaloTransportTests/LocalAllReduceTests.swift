import Foundation
@testable import HaloTransport
import XCTest

/// In-process all-reduce: one rank sums and every rank gets that result. When each rank summed all P contributions
/// itself, the work grew as P² and `--parts 256` on Cora (1433 features, so 1433 × 256 weights to sum per layer)
/// did not finish an epoch in two minutes.
final class LocalAllReduceTests: XCTestCase {
    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func increment() { lock.withLock { value += 1 } }
        var count: Int { lock.withLock { value } }
    }

    func testReductionRunsOnceAndEveryRankGetsItsResult() throws {
        let ranks = 16
        let rendezvous = Rendezvous(worldSize: ranks)
        for r in 0..<ranks { try rendezvous.deposit(0, rank: r, .floats([Float(r), 1])) }
        let reductions = Counter()
        let results = ResultBox(count: ranks)
        DispatchQueue.concurrentPerform(iterations: ranks) { r in
            let outcome = try? rendezvous.collectReduced(0, rank: r) { contributions in
                reductions.increment()
                let sum = contributions.reduce(into: [Float](repeating: 0, count: 2)) { s, c in
                    if case .floats(let v) = c { s[0] += v[0]; s[1] += v[1] }
                }
                return .floats(sum)
            }
            results.set(r, outcome.flatMap { if case .floats(let v) = $0.result { v } else { nil } })
        }
        XCTAssertEqual(reductions.count, 1, "summed once for all \(ranks) ranks")
        for r in 0..<ranks { XCTAssertEqual(results.get(r), [120, 16], "rank \(r)") }
        XCTAssertNil(try rendezvous.peek(0, rank: 0, peer: 0), "the round is freed once every rank has its result")
    }

    func testManyRanksAllReduceLargeVectorsQuickly() throws {
        // 256 ranks × 1433·64 floats: 23 M additions summed once, 6 G if every rank summed them all.
        let width = 1433 * 64
        let started = Date()
        let sums = try LocalTransport.run(worldSize: 256, stackSize: 1 << 20) { t -> [Float] in
            var v = [Float](repeating: 1, count: width)
            v[0] = Float(t.rank)
            try t.allReduceSum(&v)
            return [v[0], v[width - 1]]
        }
        XCTAssertTrue(sums.allSatisfy { $0 == [32_640, 256] }, "\(sums.first ?? [])")
        // 0.3 s here; 17 s when every rank summed all contributions.
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "P² summation is back")
    }
}

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [[Float]?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: [Float]?) { lock.withLock { values[i] = v } }
    func get(_ i: Int) -> [Float]? { lock.withLock { values[i] } }
}
