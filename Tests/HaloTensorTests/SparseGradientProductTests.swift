import HaloTensor
import HaloTestSupport
import XCTest

final class SparseGradientProductTests: XCTestCase {
    /// A matrix in which about `density` of the elements are non-zero.
    private func mostlyZero(_ rows: Int, _ cols: Int, density: Double, _ rng: inout TestRNG) -> Matrix {
        Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in
            Double(rng.int(0..<10_000)) / 10_000 < density ? rng.float() : 0
        })
    }

    /// `c0 + aᵀ·g` in Double.
    private func expected(_ c0: Matrix, _ a: Matrix, _ g: Matrix) -> [[Double]] {
        let product = naiveProduct(a, g, transposeA: true)
        return (0..<c0.rows).map { i in (0..<c0.cols).map { j in Double(c0[i, j]) + product[i][j] } }
    }

    // Rows around the 128-row block, depths around the 64-column tile and the 16-lane vector, widths that are and
    // are not multiples of 16.
    private let rowCounts = [0, 1, 5, 127, 128, 129, 300]
    private let depths = [1, 15, 16, 17, 63, 64, 65, 130]
    private let widths = [1, 7, 16, 33]

    func testListedProductMatchesNaiveReference() {
        var rng = TestRNG(seed: 71)
        for rows in rowCounts {
            for depth in depths {
                for width in widths {
                    for density in [0.0, 0.05, 0.25, 0.7, 1.0] {
                        let a = randomMatrix(rows, depth, &rng)
                        let g = mostlyZero(rows, width, density: density, &rng)
                        let c0 = randomMatrix(depth, width, &rng)  // the product accumulates
                        guard let lists = BlockColumnLists(g) else { return XCTFail("no lists without a density limit") }
                        var c = c0
                        lists.accumulateTransposedProduct(of: a, into: &c, pool: ComputePool(threads: 2))
                        assertClose(c, expected(c0, a, g), tolerance: 1e-4,
                                    "rows \(rows) depth \(depth) width \(width) density \(density)")
                    }
                }
            }
        }
    }

    func testListsCountExactlyTheNonZeros() {
        var rng = TestRNG(seed: 72)
        var g = mostlyZero(300, 37, density: 0.2, &rng)
        g[0, 0] = .nan   // NaN is not zero: it must reach the product
        g[1, 1] = -0.0   // negative zero is zero
        let nonZeros = g.storage.filter { $0 != 0 }.count
        let lists = BlockColumnLists(g, pool: ComputePool(threads: 3))
        XCTAssertEqual(lists?.nonZeroCount, nonZeros)
        XCTAssertEqual(lists?.rows, 300)
        XCTAssertEqual(lists?.cols, 37)
        XCTAssertEqual(lists?.blockCount, 3)
        XCTAssertEqual(lists?.density ?? -1, Double(nonZeros) / Double(300 * 37), accuracy: 1e-12)
    }

    func testDeclinesMatricesDenserThanTheLimit() {
        var rng = TestRNG(seed: 73)
        let g = mostlyZero(200, 40, density: 0.5, &rng)
        XCTAssertNil(BlockColumnLists(g, maximumDensity: 0.3))
        XCTAssertNotNil(BlockColumnLists(g, maximumDensity: 0.7))
        XCTAssertNotNil(BlockColumnLists(Matrix(rows: 0, cols: 5), maximumDensity: 0))
    }

    /// Threads split the listing by row blocks and the product by the output's rows and columns, never a sum, so
    /// the bits do not depend on the thread count. 1600 rows are 13 blocks, enough for the listing to be split too;
    /// 7 threads on 5 column tiles also split G's columns.
    func testSameBitsForAnyThreadCount() {
        var rng = TestRNG(seed: 74)
        let a = randomMatrix(1600, 301, &rng)
        let g = mostlyZero(1600, 45, density: 0.25, &rng)
        var results: [Matrix] = []
        for threads in [1, 2, 3, 7] {
            var c = Matrix(rows: 301, cols: 45)
            BlockColumnLists(g, pool: ComputePool(threads: threads))!
                .accumulateTransposedProduct(of: a, into: &c, pool: ComputePool(threads: threads))
            results.append(c)
        }
        assertClose(results[0], expected(Matrix(rows: 301, cols: 45), a, g), tolerance: 1e-3)
        for r in results.dropFirst() { XCTAssertEqual(r.storage, results[0].storage) }
    }

    /// Rows of c formed a tile-aligned piece at a time are bit for bit those of the whole product, and a piece
    /// leaves the other rows alone: what a weight gradient streamed in pieces relies on.
    func testPiecesOfRowsGiveTheWholeProductsBits() {
        var rng = TestRNG(seed: 75)
        for (rows, depth, threads) in [(300, 301, 2), (1600, 130, 1), (129, 64, 3)] {
            let a = randomMatrix(rows, depth, &rng)
            let g = mostlyZero(rows, 45, density: 0.25, &rng)
            let c0 = randomMatrix(depth, 45, &rng)
            let lists = BlockColumnLists(g)!
            let pool = ComputePool(threads: threads)
            var whole = c0
            lists.accumulateTransposedProduct(of: a, into: &whole, pool: pool)
            var pieced = c0
            for start in stride(from: 0, to: depth, by: 128) {
                let piece = start..<min(start + 128, depth)
                lists.accumulateTransposedProduct(of: a, into: &pieced, pool: pool, rows: piece)
                for i in piece.upperBound..<depth {
                    for j in 0..<45 { XCTAssertEqual(pieced[i, j], c0[i, j], "row \(i) is past piece \(piece)") }
                }
            }
            XCTAssertEqual(pieced.storage, whole.storage, "rows \(rows) depth \(depth) threads \(threads)")
        }
    }

    /// Lists are made below `worthwhileDensity`; a dense gradient is recognised from a sample of its blocks.
    func testListsOnlyWhenWorthwhile() {
        var rng = TestRNG(seed: 77)
        for rows in [300, 5000] {  // a full count, and a sampled one (at least 32 blocks)
            XCTAssertNotNil(BlockColumnLists.ifWorthwhile(mostlyZero(rows, 40, density: 0.1, &rng)), "\(rows) rows")
            XCTAssertNil(BlockColumnLists.ifWorthwhile(mostlyZero(rows, 40, density: 0.8, &rng)), "\(rows) rows")
        }
        XCTAssertNil(BlockColumnLists.ifWorthwhile(mostlyZero(5000, 40, density: 0.5, &rng)))
        // A host's own threshold (`GradientListing`): a 10 % gradient is listed below a 20 % limit, not below 5 %.
        let tenPercent = mostlyZero(5000, 40, density: 0.1, &rng)
        XCTAssertNotNil(BlockColumnLists.ifWorthwhile(tenPercent, maximumDensity: 0.2))
        XCTAssertNil(BlockColumnLists.ifWorthwhile(tenPercent, maximumDensity: 0.05))
        XCTAssertNil(BlockColumnLists.ifWorthwhile(mostlyZero(100, 40, density: 0.1, &rng), maximumDensity: 0.05),
                     "a small matrix is counted whole")
        XCTAssertNotNil(BlockColumnLists.ifWorthwhile(Matrix(rows: 5000, cols: 0)))
    }

    /// The entry point lists a sparse g for an input at least one tile wide and uses GEMM otherwise; either way it
    /// adds aᵀ·g.
    func testEitherPathAddsTheProduct() {
        var rng = TestRNG(seed: 75)
        for density in [0.02, BlockColumnLists.worthwhileDensity / 2, 0.9] {
            for depth in [20, 70] {
                let a = randomMatrix(260, depth, &rng)
                let g = mostlyZero(260, 20, density: density, &rng)
                let c0 = randomMatrix(depth, 20, &rng)
                var c = c0
                addTransposedProduct(a, g, into: &c, pool: ComputePool(threads: 2))
                assertClose(c, expected(c0, a, g), tolerance: 1e-4, "density \(density) depth \(depth)")
            }
        }
    }

    /// Where g is zero the listed product skips the term, so an infinite element of a stays out of those sums
    /// (GEMM would make them NaN: 0 · ∞); where g is not zero it reaches them.
    func testInfiniteInputMeetsOnlyNonZerosOfTheGradient() {
        var rng = TestRNG(seed: 78)
        var a = randomMatrix(150, 64, &rng)
        a[3, 5] = .infinity
        var g = Matrix(rows: 150, cols: 2)
        g[3, 1] = 1
        g[100, 0] = 2
        var c = Matrix(rows: 64, cols: 2)
        BlockColumnLists(g)!.accumulateTransposedProduct(of: a, into: &c)
        XCTAssertEqual(c[5, 0], 2 * a[100, 5])
        XCTAssertEqual(c[5, 1], .infinity)
        XCTAssertEqual(c[6, 1], a[3, 6])
    }

    func testNaNInTheGradientReachesTheProduct() {
        var rng = TestRNG(seed: 76)
        let a = randomMatrix(150, 20, &rng)
        var g = Matrix(rows: 150, cols: 3)
        g[140, 1] = .nan
        var c = Matrix(rows: 20, cols: 3)
        BlockColumnLists(g)!.accumulateTransposedProduct(of: a, into: &c)
        for k in 0..<20 {
            XCTAssertTrue(c[k, 1].isNaN)
            XCTAssertEqual(c[k, 0], 0)
            XCTAssertEqual(c[k, 2], 0)
        }
    }
}

final class ListedRowProductTests: XCTestCase {
    /// `G · b` from the lists against a naive product, overwriting and accumulating, across block and vector sizes.
    func testMatchesNaiveReference() {
        var rng = TestRNG(seed: 81)
        for rows in [0, 1, 127, 128, 300] {
            for width in [1, 15, 16, 33, 70] {
                for cols in [1, 7, 20] {
                    let g = Matrix(rows: rows, cols: cols) { _, _ in rng.int(0..<4) == 0 ? rng.float() : 0 }
                    let b = randomMatrix(cols, width, &rng)
                    let lists = BlockColumnLists(g)!
                    let product = naiveProduct(g, b)
                    var out = Matrix(rows: rows, cols: width, repeating: 9)  // overwritten
                    lists.multiply(b, into: &out, pool: ComputePool(threads: 3))
                    assertClose(out, product, tolerance: 1e-4, "rows \(rows) width \(width) cols \(cols)")
                    let start = randomMatrix(rows, width, &rng)
                    out = start
                    lists.multiply(b, into: &out, accumulate: true, pool: ComputePool(threads: 2))
                    let expected = (0..<rows).map { i in (0..<width).map { j in Double(start[i, j]) + product[i][j] } }
                    assertClose(out, expected, tolerance: 1e-4, "accumulating, rows \(rows) width \(width) cols \(cols)")
                }
            }
        }
    }

    func testSameBitsForAnyThreadCount() {
        var rng = TestRNG(seed: 82)
        let g = Matrix(rows: 1000, cols: 40) { _, _ in rng.int(0..<10) == 0 ? rng.float() : 0 }
        let b = randomMatrix(40, 50, &rng)
        let lists = BlockColumnLists(g)!
        var reference = Matrix(rows: 1000, cols: 50)
        lists.multiply(b, into: &reference)
        for threads in [2, 3, 7] {
            var out = Matrix(rows: 1000, cols: 50)
            lists.multiply(b, into: &out, pool: ComputePool(threads: threads))
            XCTAssertEqual(out.storage, reference.storage)
        }
    }

    /// The input-gradient entry point: from the lists at most `worthwhileInputGradientDensity`, by GEMM above it or
    /// without lists (each path recognised by its exact bits), overwriting and accumulating.
    func testInputGradientEitherPath() {
        var rng = TestRNG(seed: 83)
        for everyNth in [20, 3] {
            let g = Matrix(rows: 400, cols: 30) { _, _ in rng.int(0..<everyNth) == 0 ? rng.float() : 0 }
            let w = randomMatrix(70, 30, &rng)
            let c0 = randomMatrix(400, 70, &rng)
            let lists = BlockColumnLists(g)!
            let listsApply = lists.density <= BlockColumnLists.worthwhileInputGradientDensity
            XCTAssertEqual(listsApply, everyNth == 20)
            let product = naiveProduct(g, w, transposeB: true)
            for accumulate in [false, true] {
                let expected = (0..<400).map { i in (0..<70).map { j in (accumulate ? Double(c0[i, j]) : 0) + product[i][j] } }
                // The same kernels, called directly on the same pool.
                let pool = ComputePool(threads: 2)
                var viaLists = c0, viaGEMM = c0
                lists.multiply(w.transposed(), into: &viaLists, accumulate: accumulate, pool: pool)
                gemm(g, w, into: &viaGEMM, transposeB: true, beta: accumulate ? 1 : 0, pool: pool)
                for listed in [lists, nil] {
                    var c = c0
                    multiplyTransposedWeight(g, w, listed: listed, into: &c, accumulate: accumulate, pool: pool)
                    let label = "one in \(everyNth), listed \(listed != nil), accumulate \(accumulate)"
                    assertClose(c, expected, tolerance: 1e-4, label)
                    XCTAssertTrue(c.storage == (listed != nil && listsApply ? viaLists : viaGEMM).storage, "path; \(label)")
                }
            }
        }
    }
}
