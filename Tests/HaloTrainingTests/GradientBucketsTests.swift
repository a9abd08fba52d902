import HaloNN
import HaloTensor
import HaloTransport
@testable import HaloTraining
import XCTest

/// `GradientBuckets` with and without overlap: the same sums in the same bucket order; without overlap nothing is
/// started before `finish()`, which is what makes it the un-overlapped baseline.
final class GradientBucketsTests: XCTestCase {
    func testWithoutOverlapEveryBucketStartsAtFinishInTheSameOrder() throws {
        for overlapping in [true, false] {
            let collectives = DoublingCollectives()
            let upper = Parameter(name: "upper", value: Matrix(rows: 2, cols: 3) { i, j in Float(i + j) })
            let lower = Parameter(name: "lower", value: Matrix(rows: 4, cols: 2) { i, j in Float(i - j) })
            upper.gradient = Matrix(rows: 2, cols: 3) { i, j in Float(i * 3 + j) }
            lower.gradient = Matrix(rows: 4, cols: 2) { i, j in Float(i) - 0.5 * Float(j) }
            let (upperGradient, lowerGradient) = (upper.gradient, lower.gradient)

            let buckets = GradientBuckets(collectives: collectives, overlapping: overlapping)
            try buckets.start([upper])
            XCTAssertEqual(collectives.started, overlapping ? [6] : [], "overlapping: \(overlapping)")
            try buckets.start([lower])
            XCTAssertEqual(collectives.started, overlapping ? [6, 8] : [], "overlapping: \(overlapping)")
            _ = try buckets.finish()
            XCTAssertEqual(collectives.started, [6, 8], "overlapping: \(overlapping)")
            XCTAssertEqual(upper.gradient.storage, upperGradient.storage.map { 2 * $0 })
            XCTAssertEqual(lower.gradient.storage, lowerGradient.storage.map { 2 * $0 })
        }
    }

    /// A weight sent in pieces of rows is summed piece by piece, and the layer's bucket then leaves it out: each
    /// element summed once, with or without overlap. A new step starts without pieces.
    func testPiecesOfRowsAreSummedOnceAndLeftOutOfTheLayersBucket() throws {
        for overlapping in [true, false] {
            let collectives = DoublingCollectives()
            let weight = Parameter(name: "weight", value: Matrix(rows: 5, cols: 3))
            let bias = Parameter(name: "bias", value: Matrix(rows: 1, cols: 3))
            weight.gradient = Matrix(rows: 5, cols: 3) { i, j in Float(i * 3 + j) + 0.25 }
            bias.gradient = Matrix(rows: 1, cols: 3) { _, j in Float(j) - 1 }
            let (weightGradient, biasGradient) = (weight.gradient, bias.gradient)

            let buckets = GradientBuckets(collectives: collectives, overlapping: overlapping)
            try buckets.start(rows: 0..<2, of: weight)
            try buckets.start(rows: 2..<5, of: weight)
            XCTAssertEqual(collectives.started, overlapping ? [6, 9] : [], "overlapping: \(overlapping)")
            try buckets.start([weight, bias])
            _ = try buckets.finish()
            XCTAssertEqual(collectives.started, [6, 9, 3], "overlapping: \(overlapping)")
            XCTAssertEqual(weight.gradient.storage, weightGradient.storage.map { 2 * $0 })
            XCTAssertEqual(bias.gradient.storage, biasGradient.storage.map { 2 * $0 })

            // The next step's buckets hold the weight whole again unless it comes in pieces.
            try buckets.start([weight, bias])
            _ = try buckets.finish()
            XCTAssertEqual(collectives.started, [6, 9, 3, 18], "overlapping: \(overlapping)")
        }
    }
}

/// Two ranks holding the same gradients: every sum is twice the values, complete at once; records what started.
private final class DoublingCollectives: Collectives {
    private(set) var started: [Int] = []
    var rank: Int { 0 }
    var worldSize: Int { 2 }
    func allReduceSum(_ values: inout [Float]) throws { values = values.map { 2 * $0 } }
    func allReduceSum(_ values: inout [Double]) throws { values = values.map { 2 * $0 } }
    func startAllReduceSum(_ values: [Float]) throws -> any PendingReduction {
        started.append(values.count)
        return Done(sum: values.map { 2 * $0 })
    }
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes, bytes] }
    func takeStatistics() -> CommunicationStatistics { CommunicationStatistics() }
    var channels: (any MessageChannels)? { nil }
    func record(_ cost: CommunicationStatistics) {}

    private final class Done: PendingReduction {
        let sum: [Float]
        init(sum: [Float]) { self.sum = sum }
        func wait() throws -> [Float] { sum }
        var completionTime: UInt64? { 0 }
    }
}
