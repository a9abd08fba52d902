@testable import HaloTensor
import HaloTestSupport
import XCTest

final class GEMMPartitionTests: XCTestCase {
    /// The cuts the training shapes get on two threads: forward and input-gradient products of many rows are cut
    /// by rows, weight gradients (small output, inner dimension = the node count) by the inner dimension.
    func testTrainingShapesGetTheCutThatPacksLeast() {
        XCTAssertEqual(GEMMPartition.choose(m: 34_493, n: 256, k: 256, threads: 2), .rows)
        XCTAssertEqual(GEMMPartition.choose(m: 34_493, n: 256, k: 100, threads: 2), .rows)
        XCTAssertEqual(GEMMPartition.choose(m: 256, n: 256, k: 34_493, threads: 2), .inner)
        XCTAssertEqual(GEMMPartition.choose(m: 100, n: 256, k: 34_493, threads: 2), .inner)
        XCTAssertEqual(GEMMPartition.choose(m: 745, n: 256, k: 250_000, threads: 2), .inner)
        XCTAssertEqual(GEMMPartition.choose(m: 2048, n: 2048, k: 2048, threads: 2), .rows)
        // Wider than tall with a short inner dimension: the columns, as before the inner cut existed.
        XCTAssertEqual(GEMMPartition.choose(m: 40, n: 5000, k: 64, threads: 2), .columns)
    }

    /// Cuts between threads and calls lie on multiples of `rowQuantum` counted from row 0 (OpenBLAS's row blocks of
    /// the whole product), cover the rows once in order, and are as equal as that allows.
    func testAlignedCutsLieOnRowBlocksAndCoverTheRowsOnce() {
        let quantum = GEMMPartition.rowQuantum
        for rows in [0..<0, 0..<10, 0..<745, 192..<384, 100..<1000, 5..<7] {
            for pieces in 1...5 {
                let cuts = GEMMPartition.alignedCuts(of: rows, pieces: pieces)
                XCTAssertEqual(cuts.count, pieces, "\(rows) in \(pieces)")
                XCTAssertEqual(cuts.first?.lowerBound, rows.lowerBound)
                XCTAssertEqual(cuts.last?.upperBound, rows.upperBound)
                for (a, b) in zip(cuts, cuts.dropFirst()) {
                    XCTAssertEqual(a.upperBound, b.lowerBound, "\(rows) in \(pieces)")
                    XCTAssertTrue(b.lowerBound % quantum == 0 || b.lowerBound == rows.lowerBound, "\(rows) in \(pieces): \(cuts)")
                }
            }
        }
        XCTAssertEqual(GEMMPartition.alignedCuts(of: 0..<745, pieces: 2), [0..<336, 336..<745])
        XCTAssertEqual(GEMMPartition.alignedCuts(of: 192..<576, pieces: 2), [192..<384, 384..<576])
    }

    func testOneThreadOrPiecesTooNarrowMakeOnePlainCall() {
        XCTAssertEqual(GEMMPartition.choose(m: 256, n: 256, k: 34_493, threads: 1), .rows)
        // No dimension has two pieces of `minimumBlock`: nothing is cut (one piece of rows is the plain call).
        XCTAssertEqual(GEMMPartition.choose(m: 31, n: 20, k: 63, threads: 4), .rows)
        // A long inner dimension is not cut into pieces narrower than `minimumBlock`.
        XCTAssertEqual(GEMMPartition.choose(m: 8, n: 8, k: 63, threads: 2), .rows)
    }

    /// The inner cut against the naive product: every transpose combination, alpha and beta (accumulation into
    /// C), inner lengths that do not divide evenly, more threads than rows of C, and more threads than pieces.
    func testInnerCutMatchesNaiveProduct() {
        var rng = TestRNG(seed: 31)
        // (m, k, n, threads): 97 / 3 threads gives pieces of 32, 32 and 33; m = 2 and m = 1 are below the thread
        // count; k = 70 on 4 threads makes only 2 pieces of at least 32.
        let cases: [(Int, Int, Int, Int)] = [(7, 1000, 5, 2), (33, 257, 40, 2), (5, 97, 3, 3), (2, 500, 3, 4),
                                             (1, 129, 1, 5), (3, 70, 2, 4), (64, 999, 64, 3)]
        for (m, k, n, threads) in cases {
            XCTAssertEqual(GEMMPartition.choose(m: m, n: n, k: k, threads: threads), .inner, "m=\(m) k=\(k) n=\(n)")
            for ta in [false, true] {
                for tb in [false, true] {
                    let a = ta ? randomMatrix(k, m, &rng) : randomMatrix(m, k, &rng)
                    let b = tb ? randomMatrix(n, k, &rng) : randomMatrix(k, n, &rng)
                    let c0 = randomMatrix(m, n, &rng)
                    let ab = naiveProduct(a, b, transposeA: ta, transposeB: tb)
                    for (alpha, beta) in [(Float(1), Float(0)), (1, 1), (-0.5, 2), (2, -1)] {
                        let expected = (0..<m).map { i in
                            (0..<n).map { j in Double(alpha) * ab[i][j] + Double(beta) * Double(c0[i, j]) }
                        }
                        // beta = 0 must overwrite C, whatever it held.
                        var c = beta == 0 ? Matrix(rows: m, cols: n, repeating: .nan) : c0
                        gemm(a, b, into: &c, transposeA: ta, transposeB: tb, alpha: alpha, beta: beta,
                             pool: ComputePool(threads: threads))
                        assertClose(c, expected, tolerance: 2e-3,
                                    "m=\(m) k=\(k) n=\(n) ta=\(ta) tb=\(tb) α=\(alpha) β=\(beta) threads=\(threads)")
                    }
                }
            }
        }
    }

    /// The pooled product gives the serial product's result on a weight-gradient shape, up to the rounding of
    /// a different summation order.
    func testInnerCutAgreesWithSerialCall() {
        var rng = TestRNG(seed: 32)
        let x = randomMatrix(3000, 45, &rng), g = randomMatrix(3000, 70, &rng)
        let serial = matmul(x, g, transposeA: true)
        for threads in [2, 3, 4] {
            let pooled = matmul(x, g, transposeA: true, pool: ComputePool(threads: threads))
            assertClose(pooled, nested(serial), tolerance: 2e-3, "threads=\(threads)")
        }
    }
}
