import HaloTensor
import HaloTestSupport
import XCTest

final class ComputePoolTests: XCTestCase {
    /// Checks that `ranges` are non-empty, disjoint and together cover `0..<count` exactly once.
    private func assertExactCover(
        _ ranges: [Range<Int>], count: Int, maxChunks: Int, _ message: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        var hits = [Int](repeating: 0, count: count)
        for r in ranges {
            XCTAssertFalse(r.isEmpty, "empty range handed out; \(message)", file: file, line: line)
            XCTAssertTrue(r.lowerBound >= 0 && r.upperBound <= count, "range \(r) outside 0..<\(count); \(message)", file: file, line: line)
            for i in r where i >= 0 && i < count { hits[i] += 1 }
        }
        XCTAssertTrue(hits.allSatisfy { $0 == 1 }, "coverage \(hits.enumerated().filter { $0.element != 1 }.prefix(5)); \(message)",
                      file: file, line: line)
        XCTAssertLessThanOrEqual(ranges.count, maxChunks, "too many chunks; \(message)", file: file, line: line)
    }

    func testForEachChunkCoversEveryIndexOnce() {
        for threads in [1, 2, 3, 4, 7, 16] {
            let pool = ComputePool(threads: threads)
            XCTAssertEqual(pool.threads, threads)
            for count in [0, 1, 2, 3, 5, 15, 16, 17, 100, 1000, 1023] {
                for grain in [0, 1, 2, 7, 64, 256, 5000] {
                    let recorder = RangeRecorder()
                    pool.forEachChunk(of: count, grain: grain) { recorder.record($0) }
                    let ranges = recorder.ranges
                    let message = "count \(count) threads \(threads) grain \(grain)"
                    assertExactCover(ranges, count: count, maxChunks: max(1, min(threads, count)), message)
                    if count > 0 && grain > 0 && ranges.count > 1 {
                        // The grain bounds the number of chunks (each chunk has about `grain` items or more).
                        XCTAssertLessThanOrEqual(ranges.count, max(1, count / grain), message)
                    }
                }
            }
        }
        // count 0 never calls the body.
        var called = false
        ComputePool(threads: 4).forEachChunk(of: 0) { _ in called = true }
        XCTAssertFalse(called)
    }

    func testForEachBalancedChunkCoversEveryIndexOnce() {
        var rng = TestRNG(seed: 51)
        for threads in [1, 2, 3, 4, 7, 16] {
            let pool = ComputePool(threads: threads)
            for count in [0, 1, 2, 3, 5, 16, 17, 100, 777] {
                let costKinds: [(String, [Int])] = [
                    ("uniform", [Int](repeating: 1, count: count)),
                    ("zero", [Int](repeating: 0, count: count)),
                    ("random", (0..<count).map { _ in rng.int(0..<10) }),
                    ("skewed", (0..<count).map { $0 == 0 ? 1000 : ($0 % 5 == 0 ? 3 : 0) }),
                    ("tail-heavy", (0..<count).map { $0 == count - 1 ? 500 : 1 }),
                ]
                for (name, costs) in costKinds {
                    var prefix = [5]  // an arbitrary base: only differences matter
                    for c in costs { prefix.append(prefix.last! + c) }
                    let recorder = RangeRecorder()
                    pool.forEachBalancedChunk(of: count, prefixCost: { prefix[$0] }) { recorder.record($0) }
                    assertExactCover(recorder.ranges, count: count, maxChunks: max(1, min(threads, count)),
                                     "balanced count \(count) threads \(threads) cost \(name)")
                }
            }
        }
    }

    /// With many equal-cost rows the balanced split is even.
    func testBalancedChunksAreBalanced() {
        let recorder = RangeRecorder()
        ComputePool(threads: 4).forEachBalancedChunk(of: 400, prefixCost: { $0 * 3 }) { recorder.record($0) }
        let sizes = recorder.ranges.map(\.count).sorted()
        XCTAssertEqual(sizes, [100, 100, 100, 100])
        // One very expensive row gets a chunk to itself.
        let heavy = RangeRecorder()
        let prefix = (0...100).map { $0 == 0 ? 0 : 1000 + $0 }  // row 0 costs 1001, the rest 1 each
        ComputePool(threads: 2).forEachBalancedChunk(of: 100, prefixCost: { prefix[$0] }) { heavy.record($0) }
        XCTAssertTrue(heavy.ranges.contains(0..<1), "\(heavy.ranges)")
    }

    func testSerialPoolRunsInline() {
        XCTAssertEqual(ComputePool.serial.threads, 1)
        XCTAssertGreaterThanOrEqual(ComputePool.availableCores, 1)
        XCTAssertEqual(ComputePool.allCores.threads, ComputePool.availableCores)
        var ranges: [Range<Int>] = []
        ComputePool.serial.forEachChunk(of: 10) { ranges.append($0) }  // runs on this thread: plain capture is fine
        XCTAssertEqual(ranges, [0..<10])
        ComputePool.serial.forEachBalancedChunk(of: 3, prefixCost: { $0 }) { ranges.append($0) }
        XCTAssertEqual(ranges, [0..<10, 0..<3])
    }
}
