import Foundation
import HaloAssignment
import HaloQuantization
import XCTest

final class LinkCostTests: XCTestCase {
    func testFitRecoversNoisyLine() {
        var random = TestRandom(seed: 11)
        let a = 2.5e-9, c = 4e-5
        let samples: [(bytes: Int, seconds: Double)] = (0..<400).map { _ in
            let bytes = Int(random.logUniform(2...7))
            let noise = (random.uniform() - 0.5) * 4e-6
            return (bytes, a * Double(bytes) + c + noise)
        }
        let fit = LinkCost.fit(samples: samples)
        XCTAssertEqual(fit.secondsPerByte, a, accuracy: 0.01 * a)
        XCTAssertEqual(fit.latency, c, accuracy: 0.05 * c)
        XCTAssertEqual(LinkCostModel.fit(samples: samples), fit)
    }

    func testFitIsExactOnExactSamples() {
        let samples: [(bytes: Int, seconds: Double)] = [(0, 1e-4), (1000, 1e-4 + 1e-6), (5000, 1e-4 + 5e-6)]
        let fit = LinkCost.fit(samples: samples)
        XCTAssertEqual(fit.secondsPerByte, 1e-9, accuracy: 1e-18)
        XCTAssertEqual(fit.latency, 1e-4, accuracy: 1e-15)
        XCTAssertEqual(fit.time(bytes: 2000), 1e-4 + 2e-6, accuracy: 1e-15)
    }

    func testFitClampsToNonNegativeCoefficients() {
        // Time falling with size: the best non-negative line is flat at the mean.
        let falling: [(bytes: Int, seconds: Double)] = [(100, 3e-5), (1000, 2e-5), (10000, 1e-5)]
        let flat = LinkCost.fit(samples: falling)
        XCTAssertEqual(flat.secondsPerByte, 0)
        XCTAssertEqual(flat.latency, 2e-5, accuracy: 1e-18)
        // A negative intercept: the best line through the origin.
        let steep: [(bytes: Int, seconds: Double)] = [(1000, 1e-6), (2000, 3e-6), (3000, 5e-6)]
        let origin = LinkCost.fit(samples: steep)
        XCTAssertEqual(origin.latency, 0)
        let xy = 1000 * 1e-6 + 2000 * 3e-6 + 3000 * 5e-6, xx = 1e6 + 4e6 + 9e6
        XCTAssertEqual(origin.secondsPerByte, xy / xx, accuracy: 1e-20)
        // Negative times (clock noise) never give a negative latency.
        let negative = LinkCost.fit(samples: [(10, -1e-6), (20, -2e-6)])
        XCTAssertEqual(negative.secondsPerByte, 0)
        XCTAssertEqual(negative.latency, 0)
        // One size: the slope is not identifiable, so the line goes through the origin.
        let single = LinkCost.fit(samples: [(1000, 2e-6), (1000, 4e-6)])
        XCTAssertEqual(single.latency, 0)
        XCTAssertEqual(single.secondsPerByte, 3e-9, accuracy: 1e-20)
    }

    /// A decoded model (a checkpoint's) meets what `init` demands, or decoding fails: the solver indexes P² costs
    /// and takes every cost as finite and ≥ 0.
    func testDecodingRefusesModelsInitWouldNot() throws {
        let model = LinkCostModel(worldSize: 2, uniform: LinkCost(secondsPerByte: 1e-9, latency: 2e-5))
        let json = String(decoding: try JSONEncoder().encode(model), as: UTF8.self)
        XCTAssertEqual(try JSONDecoder().decode(LinkCostModel.self, from: Data(json.utf8)), model)
        let forged = [
            json.replacingOccurrences(of: "\"worldSize\":2", with: "\"worldSize\":3"),
            json.replacingOccurrences(of: "\"worldSize\":2", with: "\"worldSize\":0"),
            json.replacingOccurrences(of: "\"latency\":2e-05", with: "\"latency\":-2e-05"),
            json.replacingOccurrences(of: "\"secondsPerByte\":1e-09", with: "\"secondsPerByte\":1e400"),
        ]
        for text in forged {
            XCTAssertNotEqual(text, json, "the forgery changed the text")
            XCTAssertThrowsError(try JSONDecoder().decode(LinkCostModel.self, from: Data(text.utf8)), text)
        }
    }

    func testLinkCostModel() {
        var model = LinkCostModel(worldSize: 3, uniform: LinkCost(secondsPerByte: 1e-9, latency: 1e-5))
        XCTAssertEqual(model[0, 0], .zero)
        XCTAssertEqual(model[2, 1].latency, 1e-5)
        model[2, 1] = LinkCost(secondsPerByte: 5e-9, latency: 0)
        XCTAssertEqual(model[2, 1].secondsPerByte, 5e-9)
        XCTAssertEqual(model[1, 2].secondsPerByte, 1e-9)
        let fitted = LinkCostModel.fit(worldSize: 3) { s, p in
            [(0, Double(s) * 1e-5), (1000, Double(s) * 1e-5 + Double(p + 1) * 1e-6)]
        }
        XCTAssertEqual(fitted[2, 1].latency, 2e-5, accuracy: 1e-15)
        XCTAssertEqual(fitted[2, 1].secondsPerByte, 2e-9, accuracy: 1e-18)
        XCTAssertEqual(fitted[1, 1], .zero)
        // The problem built from a model lists every ordered pair with its link.
        let problem = AssignmentProblem(width: 4, links: model) { s, p in [AssignmentGroup(weight: Double(s), rows: p + 1)] }
        XCTAssertEqual(problem.channels.map { [$0.source, $0.destination] }, [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]])
        XCTAssertEqual(problem.channels[5].cost, model[2, 1])
        XCTAssertEqual(problem.rounds, [[0, 3, 4], [1, 2, 5]])
        XCTAssertEqual((0..<6).map { problem.round(ofChannel: $0) }, [1, 2, 2, 1, 1, 2])
    }
}

final class RowGroupingTests: XCTestCase {
    func testGroupsBySortedWeight() {
        let weights: [Double] = [1, 5, 3, 5, 0, 2, 4]
        let grouping = RowGrouping(weights: weights, groupSize: 3)
        XCTAssertEqual(grouping.order, [1, 3, 6, 2, 5, 0, 4])
        XCTAssertEqual(grouping.groups, [AssignmentGroup(weight: 14, rows: 3), AssignmentGroup(weight: 6, rows: 3),
                                         AssignmentGroup(weight: 0, rows: 1)])
        XCTAssertEqual(grouping.rowGroup, [1, 0, 1, 0, 2, 1, 0])
        XCTAssertEqual(Array(grouping.rows(ofGroup: 2)), [4])
        XCTAssertEqual(grouping.rowBits([.eight, .four, .two]), [.four, .eight, .four, .eight, .two, .four, .eight])
        XCTAssertEqual(grouping.rowAssignment([.four, .four, .four]), .uniform(.four))
        XCTAssertEqual(grouping.rowAssignment([.eight, .four, .two]), .perRow(grouping.rowBits([.eight, .four, .two])))
    }

    func testRowGroupRoundTrip() {
        var random = TestRandom(seed: 8)
        for _ in 0..<20 {
            let n = random.int(0...500)
            let weights = (0..<n).map { _ in random.int(0...9) == 0 ? 0 : random.logUniform(-4...4) }
            let size = random.int(1...64)
            let grouping = RowGrouping(weights: weights, groupSize: size)
            XCTAssertEqual(grouping.rowCount, n)
            XCTAssertEqual(grouping.groups.count, (n + size - 1) / size)
            XCTAssertEqual(grouping.groups.reduce(0) { $0 + $1.rows }, n)
            XCTAssertEqual(Set(grouping.order), Set((0..<Int32(n))))
            var previous = Double.infinity
            for (g, group) in grouping.groups.enumerated() {
                let rows = grouping.rows(ofGroup: g)
                XCTAssertEqual(rows.count, group.rows)
                XCTAssertTrue(g == grouping.groups.count - 1 ? group.rows <= size : group.rows == size)
                var w = 0.0
                for r in rows {
                    XCTAssertEqual(grouping.rowGroup[Int(r)], Int32(g))
                    XCTAssertLessThanOrEqual(weights[Int(r)], previous)
                    previous = weights[Int(r)]
                    w += weights[Int(r)]
                }
                XCTAssertEqual(group.weight, w, accuracy: 1e-12 * w)
            }
            // Expanding group widths to rows and back.
            let groupBits = grouping.groups.indices.map { [BitWidth.two, .four, .eight][$0 % 3] }
            let rowBits = grouping.rowBits(groupBits)
            for r in 0..<n { XCTAssertEqual(rowBits[r], groupBits[Int(grouping.rowGroup[r])]) }
            for g in grouping.groups.indices {
                XCTAssertTrue(grouping.rows(ofGroup: g).allSatisfy { rowBits[Int($0)] == groupBits[g] })
            }
        }
    }
}
