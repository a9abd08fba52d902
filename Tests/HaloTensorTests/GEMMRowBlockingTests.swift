import HaloTensor
import HaloTestSupport
import XCTest

final class GEMMRowBlockingTests: XCTestCase {
    func testBlocksFillHalfTheCacheInWholeTiles() {
        // 1 MiB L2, C 256 wide, A 100 deep: 512 KiB / (356 · 4 B) = 368 rows, down to a multiple of 32.
        XCTAssertEqual(GEMMRowBlocking.rowsPerCall(n: 256, k: 100, cacheBytes: 1 << 20), 352)
        XCTAssertEqual(GEMMRowBlocking.rowsPerCall(n: 256, k: 256, cacheBytes: 1 << 20), 256)
        // Fewer than four tiles of rows fit (a long inner dimension, or a small cache), or the cache size is
        // unknown: no blocking.
        XCTAssertEqual(GEMMRowBlocking.rowsPerCall(n: 256, k: 768, cacheBytes: 1 << 20), 128)
        XCTAssertNil(GEMMRowBlocking.rowsPerCall(n: 2048, k: 2048, cacheBytes: 1 << 20))
        XCTAssertNil(GEMMRowBlocking.rowsPerCall(n: 256, k: 34_493, cacheBytes: 1 << 20))
        XCTAssertNil(GEMMRowBlocking.rowsPerCall(n: 256, k: 100, cacheBytes: 32 << 10))
        XCTAssertNil(GEMMRowBlocking.rowsPerCall(n: 256, k: 100, cacheBytes: nil))
        XCTAssertNil(GEMMRowBlocking.rowsPerCall(n: 256, k: 100, cacheBytes: 0))
    }

    /// The decision from measured rates: blocked only when clearly faster, never on noise or a broken rate.
    func testBlockingIsTakenOnlyWhenMeasuredClearlyFaster() {
        XCTAssertTrue(GEMMRowBlocking.worthwhile(wholeRate: 78, blockedRate: 86))    // Zen kernels, m × 256 × 100
        XCTAssertFalse(GEMMRowBlocking.worthwhile(wholeRate: 90, blockedRate: 87))   // SkylakeX kernels
        XCTAssertFalse(GEMMRowBlocking.worthwhile(wholeRate: 100, blockedRate: 102)) // within the margin
        XCTAssertFalse(GEMMRowBlocking.worthwhile(wholeRate: 0, blockedRate: 50))
        XCTAssertFalse(GEMMRowBlocking.worthwhile(wholeRate: 50, blockedRate: .nan))
        XCTAssertFalse(GEMMRowBlocking.worthwhile(wholeRate: 50, blockedRate: .infinity))
    }

    /// Calls of `rowsPerCall` rows inside each thread's rows against the naive product: blocks that do not divide
    /// the rows, a last block of one row, more rows per call than rows, transposes, alpha and beta.
    func testRowBlocksMatchNaiveProduct() {
        var rng = TestRNG(seed: 41)
        let cases: [(m: Int, k: Int, n: Int, rowsPerCall: Int)] = [(101, 9, 7, 10), (97, 33, 5, 32), (65, 4, 3, 64),
                                                                   (40, 6, 2, 1000), (33, 17, 9, 1)]
        for (m, k, n, rowsPerCall) in cases {
            for ta in [false, true] {
                for tb in [false, true] {
                    let a = ta ? randomMatrix(k, m, &rng) : randomMatrix(m, k, &rng)
                    let b = tb ? randomMatrix(n, k, &rng) : randomMatrix(k, n, &rng)
                    let c0 = randomMatrix(m, n, &rng)
                    let ab = naiveProduct(a, b, transposeA: ta, transposeB: tb)
                    let expected = (0..<m).map { i in (0..<n).map { j in 0.5 * ab[i][j] + 2 * Double(c0[i, j]) } }
                    for threads in [1, 2, 3] {
                        var c = c0
                        gemm(a, b, into: &c, transposeA: ta, transposeB: tb, alpha: 0.5, beta: 2,
                             pool: ComputePool(threads: threads), rowsPerCall: rowsPerCall)
                        assertClose(c, expected, tolerance: 3e-4,
                                    "m=\(m) k=\(k) n=\(n) rows/call=\(rowsPerCall) ta=\(ta) tb=\(tb) threads=\(threads)")
                    }
                }
            }
        }
    }
}
