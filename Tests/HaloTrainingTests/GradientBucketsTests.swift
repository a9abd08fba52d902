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
