import HaloQuantization
import HaloTestSupport
@testable import HaloTraining
import HaloTransport
import XCTest

/// The compressed gradient all-reduce over ranks (threads of this process): every rank gets the same sum, close to
/// the exact one; error feedback keeps the error of many steps bounded; the residuals survive a checkpoint.
final class CompressedGradientReductionTests: XCTestCase {
    /// Rank `rank`'s contribution in step `step` to a bucket of `count` values (exactly representable sums aside,
    /// values of mixed magnitude so rows have real ranges).
    private static func values(rank: Int, step: Int, count: Int, bucket: Int = 0) -> [Float] {
        var rng = TestRNG(seed: UInt64(1000 * rank + 31 * step + 7 * bucket + 1))
        return (0..<count).map { i in (rng.float(in: 0...1) - 0.5) * (i % 3 == 0 ? 1 : 0.01) }
    }

    private static func exactSum(world: Int, step: Int, count: Int, bucket: Int = 0) -> [Double] {
        var sum = [Double](repeating: 0, count: count)
        for r in 0..<world {
            for (i, v) in values(rank: r, step: step, count: count, bucket: bucket).enumerated() { sum[i] += Double(v) }
        }
        return sum
    }

    /// Largest error allowed per element after one reduction: P encodings of the contributions and one of the sum,
    /// each within its row's step (int8) or half an ulp (bf16) — bounded here by the values' scale.
    private static func tolerance(_ compression: GradientCompression, world: Int) -> Double {
        switch compression {
        case .none: 1e-6 * Double(world)
        case .bf16: Double(world) * 0.5 * 1 / 256 + Double(world) * 0.5 / 256
        case .int8: Double(world) * 1.0 / 255 + Double(world) * 1.0 / 255
        }
    }

    func testEveryRankGetsTheSameSumCloseToTheExactOne() throws {
        for world in [2, 3, 4] {
            for compression in GradientCompression.allCases where compression != .none {
                for count in [1, 300, 2000] {
                    let results = try LocalTransport.run(worldSize: world) { t -> [Float] in
                        let reduction = CompressedGradientReduction(
                            compression: compression, channels: t, rank: t.rank, worldSize: world, seed: 5)
                        let started = try reduction.start(
                            bucket: 0, content: "w", epoch: 0, values: Self.values(rank: t.rank, step: 0, count: count))
                        XCTAssertEqual(started.bytes, (0..<world).filter { $0 != t.rank }.reduce(0) {
                            $0 + reduction.codec.encodedSize(count: reduction.shard($1, count: count).count)
                        }, "the shards sent to the other ranks")
                        return try started.pending.wait()
                    }
                    for r in results { XCTAssertEqual(r, results[0], "\(compression) P=\(world) n=\(count): bit-identical") }
                    let exact = Self.exactSum(world: world, step: 0, count: count)
                    let worst = zip(results[0], exact).map { abs(Double($0) - $1) }.max()!
                    XCTAssertLessThanOrEqual(worst, Self.tolerance(compression, world: world),
                                             "\(compression) P=\(world) n=\(count)")
                }
            }
        }
    }

    /// Shards cover the vector in order on whole rows, one per rank (some empty when there are fewer rows than ranks).
    func testShardsTileTheVectorOnRowBoundaries() throws {
        _ = try LocalTransport.run(worldSize: 3) { t in
            let reduction = CompressedGradientReduction(compression: .int8, channels: t, rank: t.rank, worldSize: 3, seed: 0)
            for count in [0, 1, 256, 257, 1000, 5000] {
                let shards = (0..<3).map { reduction.shard($0, count: count) }
                XCTAssertEqual(shards.first?.lowerBound, 0)
                XCTAssertEqual(shards.last?.upperBound, count)
                for (a, b) in zip(shards, shards.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                for s in shards.dropLast() { XCTAssertEqual(s.upperBound % GradientCodec.rowWidth, 0, "n \(count): \(shards)") }
            }
        }
    }

    /// Several buckets in flight, waited for out of order, each its own sum.
    func testBucketsInFlightAreSummedApart() throws {
        let world = 3, counts = [700, 40, 3000]
        let results = try LocalTransport.run(worldSize: world) { t -> [[Float]] in
            let reduction = CompressedGradientReduction(compression: .bf16, channels: t, rank: t.rank, worldSize: world, seed: 5)
            let pending = try counts.enumerated().map { bucket, count in
                try reduction.start(bucket: bucket, content: "b\(bucket)", epoch: 0,
                                    values: Self.values(rank: t.rank, step: 0, count: count, bucket: bucket)).pending
            }
            return try pending.reversed().map { try $0.wait() }.reversed()
        }
        for r in results { XCTAssertEqual(r, results[0]) }
        for (bucket, count) in counts.enumerated() {
            let exact = Self.exactSum(world: world, step: 0, count: count, bucket: bucket)
            XCTAssertEqual(results[0][bucket].count, count)
            for (x, y) in zip(results[0][bucket], exact) {
                XCTAssertEqual(Double(x), y, accuracy: Self.tolerance(.bf16, world: world), "bucket \(bucket)")
            }
        }
    }

    /// Error feedback: summed over many steps, the reduced values miss the exact total by about one step's error,
    /// not by one step's error per step. (Without the residuals the int8 total drifts by far more: checked below.)
    func testErrorFeedbackKeepsTheAccumulatedErrorBounded() throws {
        let world = 2, count = 600, steps = 40
        for compression in [GradientCompression.bf16, .int8] {
            let totals = try LocalTransport.run(worldSize: world) { t -> [Double] in
                let reduction = CompressedGradientReduction(
                    compression: compression, channels: t, rank: t.rank, worldSize: world, seed: 5)
                var total = [Double](repeating: 0, count: count)
                for step in 0..<steps {
                    // The same gradient every step, so rounding the same way would add up if not fed back.
                    let sum = try reduction.start(bucket: 0, content: "w", epoch: step,
                                                  values: Self.values(rank: t.rank, step: 0, count: count)).pending.wait()
                    for i in 0..<count { total[i] += Double(sum[i]) }
                }
                return total
            }
            let exact = Self.exactSum(world: world, step: 0, count: count).map { $0 * Double(steps) }
            let worst = zip(totals[0], exact).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 2 * Self.tolerance(compression, world: world),
                                     "\(compression): the error of \(steps) steps stays within two steps' bound")
        }
    }

    /// Saving the residuals and restoring them into a new reduction continues exactly as the old one would.
    func testResidualsSurviveSaveAndRestore() throws {
        let world = 2, count = 900
        let results = try LocalTransport.run(worldSize: world) { t -> [[Float]] in
            func reduction() -> CompressedGradientReduction {
                CompressedGradientReduction(compression: .int8, channels: t, rank: t.rank, worldSize: world, seed: 5)
            }
            func step(_ r: CompressedGradientReduction, _ epoch: Int, content: String = "w[0..<900]") throws -> [Float] {
                try r.start(bucket: 0, content: content, epoch: epoch,
                            values: Self.values(rank: t.rank, step: epoch, count: count)).pending.wait()
            }
            let original = reduction()
            for epoch in 0..<3 { _ = try step(original, epoch) }
            var writer = ByteWriter()
            original.saveState(into: &writer)
            func restoredReduction(_ bytes: [UInt8]) throws -> CompressedGradientReduction {
                let restored = reduction()
                var reader = ByteReader(bytes)
                try restored.restoreState(from: &reader)
                XCTAssertEqual(reader.remaining, 0)
                return restored
            }
            let restored = try restoredReduction(writer.bytes)
            // The same bucket holding other values (another cut into pieces), and a checkpoint from before contents
            // were kept (the residual list alone): both start without the residuals.
            let recut = try restoredReduction(writer.bytes)
            let saved = try restoredReduction(writer.bytes)
            var savedState = ByteWriter()
            saved.saveState(into: &savedState)
            XCTAssertEqual(savedState.bytes, writer.bytes, "a restored reduction saves what it took back")
            var older = ByteWriter()
            var full = ByteReader(writer.bytes)
            let buckets: Int = try full.read()
            older.append(buckets)
            for _ in 0..<buckets {
                older.append(try full.read() as Int)
                older.append(elements: try full.readElements(of: Float.self))
                older.append(elements: try full.readElements(of: Float.self))
            }
            let fromOlder = try restoredReduction(older.bytes)
            let fresh = reduction()
            // Reductions in step on the same channels: one started after the other finished.
            let continued = try step(original, 3), resumed = try step(restored, 3), forgetful = try step(fresh, 3)
            let recutSum = try step(recut, 3, content: "w[0..<450] v[0..<450]"), olderSum = try step(fromOlder, 3)
            return [continued, resumed, forgetful, recutSum, olderSum]
        }
        for r in results {
            XCTAssertEqual(r[0], r[1], "restored residuals give the same sum")
            XCTAssertNotEqual(r[0], r[2], "a reduction without the residuals gives another (the test can tell)")
            XCTAssertEqual(r[3], r[2], "a bucket with other contents starts without residuals")
            XCTAssertEqual(r[4], r[2], "a checkpoint without contents starts without residuals")
        }
    }
}
