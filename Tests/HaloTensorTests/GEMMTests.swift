@testable import HaloTensor
import HaloTestSupport
import XCTest

final class GEMMTests: XCTestCase {
    /// Shapes (m, k, n) including empty and degenerate ones.
    private let shapes: [(Int, Int, Int)] = [
        (0, 0, 0), (0, 3, 4), (3, 0, 4), (3, 4, 0), (1, 1, 1), (1, 5, 1), (1, 7, 9), (9, 7, 1),
        (5, 1, 6), (4, 17, 3), (16, 16, 16), (17, 33, 65), (13, 64, 7), (2, 130, 3),
    ]

    private func operands(_ m: Int, _ k: Int, _ n: Int, _ ta: Bool, _ tb: Bool, _ rng: inout TestRNG) -> (Matrix, Matrix) {
        let a = ta ? randomMatrix(k, m, &rng) : randomMatrix(m, k, &rng)
        let b = tb ? randomMatrix(n, k, &rng) : randomMatrix(k, n, &rng)
        return (a, b)
    }

    func testAllTransposeCombinationsMatchNaiveProduct() {
        var rng = TestRNG(seed: 11)
        for (m, k, n) in shapes {
            for ta in [false, true] {
                for tb in [false, true] {
                    let (a, b) = operands(m, k, n, ta, tb, &rng)
                    let expected = naiveProduct(a, b, transposeA: ta, transposeB: tb)
                    var c = Matrix(rows: m, cols: n, repeating: 7)  // beta = 0 must overwrite whatever is there
                    gemm(a, b, into: &c, transposeA: ta, transposeB: tb)
                    assertClose(c, expected, tolerance: 1e-4, "gemm m=\(m) k=\(k) n=\(n) ta=\(ta) tb=\(tb)")
                    let product = matmul(a, b, transposeA: ta, transposeB: tb)
                    XCTAssertEqual(product.rows, m)
                    XCTAssertEqual(product.cols, n)
                    assertClose(product, expected, tolerance: 1e-4, "matmul m=\(m) k=\(k) n=\(n) ta=\(ta) tb=\(tb)")
                }
            }
        }
    }

    func testAlphaAndBeta() {
        var rng = TestRNG(seed: 12)
        for (m, k, n) in shapes {
            for ta in [false, true] {
                for tb in [false, true] {
                    for (alpha, beta) in [(Float(1), Float(1)), (2.5, 0), (-0.5, 1), (0.75, -2), (0, 0.5)] {
                        let (a, b) = operands(m, k, n, ta, tb, &rng)
                        let c0 = randomMatrix(m, n, &rng)
                        let ab = naiveProduct(a, b, transposeA: ta, transposeB: tb)
                        let expected = (0..<m).map { i in
                            (0..<n).map { j in Double(alpha) * ab[i][j] + Double(beta) * Double(c0[i, j]) }
                        }
                        var c = c0
                        gemm(a, b, into: &c, transposeA: ta, transposeB: tb, alpha: alpha, beta: beta)
                        assertClose(c, expected, tolerance: 3e-4, "m=\(m) k=\(k) n=\(n) ta=\(ta) tb=\(tb) α=\(alpha) β=\(beta)")
                    }
                }
            }
        }
    }

    /// A pool splits C into row blocks (tall C) or column blocks (wide C), each a separate BLAS call with offset
    /// operands; every transpose combination must give the serial result, including ragged last blocks.
    func testPooledProductSplitsRowsOrColumnsAndMatchesNaiveProduct() {
        var rng = TestRNG(seed: 14)
        let pooledShapes: [(Int, Int, Int)] = [(200, 37, 9), (9, 37, 200), (97, 70, 95), (64, 1, 64), (31, 5, 31), (130, 3, 130)]
        for (m, k, n) in pooledShapes {
            for ta in [false, true] {
                for tb in [false, true] {
                    let (a, b) = operands(m, k, n, ta, tb, &rng)
                    let c0 = randomMatrix(m, n, &rng)
                    let ab = naiveProduct(a, b, transposeA: ta, transposeB: tb)
                    let expected = (0..<m).map { i in (0..<n).map { j in 1.5 * ab[i][j] - 0.5 * Double(c0[i, j]) } }
                    for threads in [2, 3] {
                        var c = c0
                        gemm(a, b, into: &c, transposeA: ta, transposeB: tb, alpha: 1.5, beta: -0.5,
                             pool: ComputePool(threads: threads))
                        assertClose(c, expected, tolerance: 3e-4, "m=\(m) k=\(k) n=\(n) ta=\(ta) tb=\(tb) threads=\(threads)")
                    }
                }
            }
        }
    }

    /// k = 0 is an empty sum: C = beta·C exactly (BLAS itself would skip the call).
    func testEmptyInnerDimensionScalesByBeta() {
        var rng = TestRNG(seed: 13)
        for ta in [false, true] {
            for tb in [false, true] {
                let (a, b) = operands(4, 0, 5, ta, tb, &rng)
                let c0 = randomMatrix(4, 5, &rng)
                for beta: Float in [0, 1, 3, -0.5] {
                    var c = c0
                    gemm(a, b, into: &c, transposeA: ta, transposeB: tb, alpha: 2, beta: beta)
                    XCTAssertEqual(c.storage, c0.storage.map { beta == 0 ? 0 : beta * $0 }, "k=0 ta=\(ta) tb=\(tb) β=\(beta)")
                }
                XCTAssertEqual(matmul(a, b, transposeA: ta, transposeB: tb), Matrix(rows: 4, cols: 5))
            }
        }
    }

    /// `rows` computes just those rows of C, as the whole product would, and leaves the others untouched: every
    /// transpose combination, one and two threads, empty inner dimension included.
    func testSelectedRowsMatchNaiveProductAndLeaveOtherRowsAlone() {
        var rng = TestRNG(seed: 15)
        for (m, k, n) in [(200, 37, 9), (97, 70, 95), (130, 3, 130), (9, 0, 4), (64, 33, 1)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    let (a, b) = operands(m, k, n, ta, tb, &rng)
                    let c0 = randomMatrix(m, n, &rng)
                    let ab = naiveProduct(a, b, transposeA: ta, transposeB: tb)
                    for rows in [0..<m, 0..<(m / 3), (m / 3)..<m, (m / 4)..<(m / 2), 2..<2] {
                        for threads in [1, 2] {
                            var c = c0
                            gemm(a, b, into: &c, transposeA: ta, transposeB: tb, alpha: 1.5, beta: -0.5,
                                 pool: ComputePool(threads: threads), rows: rows)
                            let label = "m=\(m) k=\(k) n=\(n) ta=\(ta) tb=\(tb) rows=\(rows) threads=\(threads)"
                            for i in 0..<m {
                                for j in 0..<n {
                                    if rows.contains(i) {
                                        let expected = 1.5 * ab[i][j] - 0.5 * Double(c0[i, j])
                                        XCTAssertEqual(Double(c[i, j]), expected, accuracy: 3e-4 * max(1, abs(expected)), label)
                                    } else {
                                        XCTAssertEqual(c[i, j], c0[i, j], "row \(i) outside \(label)")
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rows formed a range at a time, ranges starting at multiples of `GEMMPartition.rowQuantum`, are the whole
    /// product's rows bit for bit, on one and two threads, for products cut by rows, by columns and by the inner
    /// dimension (`GEMMPartition` of the whole shape): what a weight gradient formed in pieces relies on to train
    /// the same model. (64-row ranges differed on OpenBLAS's Zen kernels, whose row blocks are 12 rows.)
    func testSelectedRowsAreTheWholeProductsBits() {
        var rng = TestRNG(seed: 16)
        // Aᵀ·G shapes: tall inner dimension (cut by it on two threads), wide output (by columns), tall output (rows).
        // And a classifier's weight gradient (n = 8), which Halo's own narrow kernels form.
        let shapes: [(m: Int, k: Int, n: Int)] = [(300, 2000, 64), (40, 300, 900), (900, 40, 64), (256, 2000, 8)]
        XCTAssertEqual(GEMMPartition.choose(m: 300, n: 64, k: 2000, threads: 2), .inner)
        XCTAssertEqual(GEMMPartition.choose(m: 40, n: 900, k: 300, threads: 2), .columns)
        XCTAssertEqual(GEMMPartition.choose(m: 900, n: 64, k: 40, threads: 2), .rows)
        for (m, k, n) in shapes {
            let (a, b) = operands(m, k, n, true, false, &rng)
            let c0 = randomMatrix(m, n, &rng)
            for threads in [1, 2] {
                let pool = ComputePool(threads: threads)
                var whole = c0
                gemm(a, b, into: &whole, transposeA: true, beta: 1, pool: pool)
                var pieced = c0
                let quantum = GEMMPartition.rowQuantum
                for first in stride(from: 0, to: m, by: quantum) {
                    gemm(a, b, into: &pieced, transposeA: true, beta: 1, pool: pool, rows: first..<min(first + quantum, m))
                }
                XCTAssertTrue(pieced.storage == whole.storage,
                              "m=\(m) k=\(k) n=\(n), \(threads) threads: differs by \(pieced.maxAbsDifference(whole))")
            }
        }
    }

    /// Products with a narrow side (output or inner dimension ≤ 16) run on `NarrowGEMM`, not OpenBLAS: every transpose
    /// combination against the naive product, on one to three threads, with α and β, tails of rows (not a multiple
    /// of eight) and of columns (not a multiple of the vector), and β = 0 over a C full of NaN, which must not be read.
    func testNarrowProductsMatchNaiveProduct() {
        var rng = TestRNG(seed: 17)
        let shapes: [(m: Int, k: Int, n: Int)] = [(1000, 256, 8), (1003, 8, 256), (37, 745, 5), (203, 96, 16), (90, 13, 40),
                                                 (7, 16, 9), (1, 300, 3), (2000, 256, 1)]
        for (m, k, n) in shapes {
            for ta in [false, true] {
                for tb in [false, true] {
                    let (a, b) = operands(m, k, n, ta, tb, &rng)
                    let ab = naiveProduct(a, b, transposeA: ta, transposeB: tb)
                    let c0 = randomMatrix(m, n, &rng)
                    for threads in [1, 2, 3] {
                        let pool = ComputePool(threads: threads), label = "m=\(m) k=\(k) n=\(n) ta=\(ta) tb=\(tb) threads=\(threads)"
                        var c = Matrix(rows: m, cols: n, repeating: .nan)
                        gemm(a, b, into: &c, transposeA: ta, transposeB: tb, pool: pool)
                        assertClose(c, ab, tolerance: 1e-3, label)
                        c = c0
                        gemm(a, b, into: &c, transposeA: ta, transposeB: tb, alpha: -1.5, beta: 0.5, pool: pool)
                        let expected = (0..<m).map { i in (0..<n).map { j in -1.5 * ab[i][j] + 0.5 * Double(c0[i, j]) } }
                        assertClose(c, expected, tolerance: 2e-3, "α β " + label)
                    }
                }
            }
        }
        XCTAssertTrue(NarrowGEMM.handles(m: 1000, n: 8, k: 256, transposeA: false))
        XCTAssertTrue(NarrowGEMM.handles(m: 1003, n: 256, k: 8, transposeA: false))
        XCTAssertTrue(NarrowGEMM.handles(m: 256, n: 8, k: 1000, transposeA: true))
        XCTAssertFalse(NarrowGEMM.handles(m: 1000, n: 256, k: 256, transposeA: false))
        XCTAssertFalse(NarrowGEMM.handles(m: 256, n: 256, k: 8, transposeA: true), "a short inner dimension of Aᵀ·B goes to OpenBLAS")
    }

    func testKnownSmallProduct() {
        let a = Matrix([[1, 2, 3], [4, 5, 6]])
        let b = Matrix([[7, 8], [9, 10], [11, 12]])
        XCTAssertEqual(matmul(a, b), Matrix([[58, 64], [139, 154]]))
        XCTAssertEqual(matmul(a, a, transposeB: true), Matrix([[14, 32], [32, 77]]))
        XCTAssertEqual(matmul(a, a, transposeA: true), Matrix([[17, 22, 27], [22, 29, 36], [27, 36, 45]]))
        XCTAssertEqual(matmul(b, a, transposeA: true, transposeB: true), Matrix([[58, 139], [64, 154]]))
    }
}
