@testable import HaloTensor
import HaloTestSupport
import XCTest

final class BinaryMatrixTests: XCTestCase {
    private let pools = [ComputePool.serial, ComputePool(threads: 2), ComputePool(threads: 3), ComputePool(threads: 7)]

    /// A random duplicate-free CSR matrix whose non-zeros are all `value`, with about `density` of its cells set.
    private func randomIndicator(rows: Int, cols: Int, density: Double, value: Float, _ rng: inout TestRNG) -> SparseMatrix {
        var pointers = [0], indices = [Int32](), values = [Float]()
        for _ in 0..<rows {
            for c in 0..<cols where Double(rng.int(0..<1000)) / 1000 < density {
                indices.append(Int32(c))
                values.append(value)
            }
            pointers.append(indices.count)
        }
        return SparseMatrix(rows: rows, cols: cols, rowPointers: pointers, columnIndices: indices, values: values)
    }

    private func transposedNaive(_ s: SparseMatrix, _ x: Matrix) -> [[Double]] {
        naiveSparseProduct(s.transposed(), x)
    }

    func testProductsMatchNaiveForShapesAndWidths() throws {
        var rng = TestRNG(seed: 71)
        // Shapes whose rows and columns are and are not multiples of the 4-wide groups and 8-group blocks, one
        // row, one column, and a run of empty rows (density 0.05).
        let shapes = [(1, 1), (1, 9), (4, 4), (5, 3), (13, 10), (33, 37), (70, 129)]
        for (rows, cols) in shapes {
            for density in [0.05, 0.4, 0.9] {
                var s = randomIndicator(rows: rows, cols: cols, density: density, value: 1, &rng)
                if s.nonZeroCount == 0 {
                    s = SparseMatrix(rows: rows, cols: cols, triplets: [(rows - 1, cols - 1, 1)])
                }
                let codes = try XCTUnwrap(BinaryMatrix(s))
                for width in testWidths {
                    let x = randomMatrix(cols, width, &rng)
                    var out = Matrix(rows: rows, cols: width, repeating: 7)  // overwritten
                    codes.multiply(x, into: &out, pool: ComputePool(threads: 2))
                    assertClose(out, naiveSparseProduct(s, x), tolerance: 1e-4, "\(rows)×\(cols) d=\(density) · width \(width)")
                    let g = randomMatrix(rows, width, &rng)
                    var gradient = Matrix(rows: cols, cols: width, repeating: -3)  // overwritten
                    codes.multiplyTransposed(g, into: &gradient, pool: ComputePool(threads: 2))
                    assertClose(gradient, transposedNaive(s, g), tolerance: 1e-4, "ᵀ \(rows)×\(cols) d=\(density) · width \(width)")
                }
            }
        }
    }

    /// `Bᵀ·X` formed a piece of output rows at a time (a streamed weight gradient) is the whole product bit for
    /// bit, at widths that are and are not multiples of 16; a piece leaves the other rows alone.
    func testTransposedProductInPiecesOfRowsGivesTheWholeProductsBits() throws {
        var rng = TestRNG(seed: 72)
        let s = randomIndicator(rows: 70, cols: 129, density: 0.4, value: 1, &rng)
        let codes = try XCTUnwrap(BinaryMatrix(s))
        for width in [16, 33, 64] {
            let g = randomMatrix(70, width, &rng)
            for pool in pools {
                for accumulate in [false, true] {
                    let start = Matrix(rows: 129, cols: width, repeating: -3)
                    var whole = start
                    codes.multiplyTransposed(g, into: &whole, accumulate: accumulate, pool: pool)
                    var pieced = start
                    for first in stride(from: 0, to: 129, by: 40) {
                        let piece = first..<min(first + 40, 129)
                        codes.multiplyTransposed(g, into: &pieced, accumulate: accumulate, pool: pool, rows: piece)
                        XCTAssertTrue(pieced.storage[(piece.upperBound * width)...].allSatisfy { $0 == -3 },
                                      "rows past \(piece) were written")
                    }
                    XCTAssertEqual(pieced.storage, whole.storage, "width \(width), \(pool.threads) threads, accumulate \(accumulate)")
                }
            }
        }
    }

    func testCommonValueOtherThanOneScalesTheProducts() throws {
        var rng = TestRNG(seed: 72)
        let s = randomIndicator(rows: 29, cols: 22, density: 0.3, value: -0.625, &rng)
        let codes = try XCTUnwrap(BinaryMatrix(s))
        XCTAssertEqual(codes.value, -0.625)
        XCTAssertEqual(codes.nonZeroCount, s.nonZeroCount)
        for width in [16, 40, 64, 100] {
            let x = randomMatrix(22, width, &rng)
            var out = Matrix(rows: 29, cols: width)
            codes.multiply(x, into: &out)
            assertClose(out, naiveSparseProduct(s, x), tolerance: 1e-4, "width \(width)")
            let g = randomMatrix(29, width, &rng)
            var gradient = Matrix(rows: 22, cols: width)
            codes.multiplyTransposed(g, into: &gradient)
            assertClose(gradient, transposedNaive(s, g), tolerance: 1e-4, "ᵀ width \(width)")
        }
    }

    func testAccumulateAddsToOutput() throws {
        var rng = TestRNG(seed: 73)
        let s = randomIndicator(rows: 41, cols: 35, density: 0.35, value: 1, &rng)
        let codes = try XCTUnwrap(BinaryMatrix(s))
        for width in [5, 16, 64, 70, 256] {
            let x = randomMatrix(35, width, &rng)
            let initial = randomMatrix(41, width, &rng)
            var out = initial
            codes.multiply(x, into: &out, accumulate: true, pool: ComputePool(threads: 3))
            let product = naiveSparseProduct(s, x)
            assertClose(out, (0..<41).map { i in (0..<width).map { product[i][$0] + Double(initial[i, $0]) } },
                        tolerance: 1e-4, "width \(width)")

            let g = randomMatrix(41, width, &rng)
            let initialGradient = randomMatrix(35, width, &rng)
            var gradient = initialGradient
            codes.multiplyTransposed(g, into: &gradient, accumulate: true, pool: ComputePool(threads: 3))
            let back = transposedNaive(s, g)
            assertClose(gradient, (0..<35).map { i in (0..<width).map { back[i][$0] + Double(initialGradient[i, $0]) } },
                        tolerance: 1e-4, "ᵀ width \(width)")
        }
    }

    func testResultsAreBitIdenticalAcrossThreadCounts() throws {
        var rng = TestRNG(seed: 74)
        let s = randomIndicator(rows: 301, cols: 93, density: 0.35, value: 1, &rng)
        let codes = try XCTUnwrap(BinaryMatrix(s))
        let x = randomMatrix(93, 130, &rng), g = randomMatrix(301, 130, &rng)
        var reference = Matrix(rows: 301, cols: 130), referenceGradient = Matrix(rows: 93, cols: 130)
        codes.multiply(x, into: &reference)
        codes.multiplyTransposed(g, into: &referenceGradient)
        for pool in pools {
            var out = Matrix(rows: 301, cols: 130), gradient = Matrix(rows: 93, cols: 130)
            codes.multiply(x, into: &out, pool: pool)
            codes.multiplyTransposed(g, into: &gradient, pool: pool)
            XCTAssertEqual(out, reference, "\(pool.threads) threads")
            XCTAssertEqual(gradient, referenceGradient, "ᵀ, \(pool.threads) threads")
        }
    }

    func testEmptyRowsGiveZeroRowsAndZeroWidthIsANoOp() throws {
        var rng = TestRNG(seed: 75)
        // Rows 1 and 2 have no non-zeros; column 3 has none either.
        let s = SparseMatrix(rows: 4, cols: 5, triplets: [(0, 0, 1), (0, 4, 1), (3, 1, 1), (3, 2, 1)])
        let codes = try XCTUnwrap(BinaryMatrix(s))
        let x = randomMatrix(5, 20, &rng)
        var out = Matrix(rows: 4, cols: 20, repeating: 9)
        codes.multiply(x, into: &out)
        for j in 0..<20 {
            XCTAssertEqual(out[1, j], 0)
            XCTAssertEqual(out[2, j], 0)
        }
        var gradient = Matrix(rows: 5, cols: 20, repeating: 9)
        codes.multiplyTransposed(randomMatrix(4, 20, &rng), into: &gradient)
        for j in 0..<20 { XCTAssertEqual(gradient[3, j], 0) }
        var none = Matrix(rows: 4, cols: 0)
        codes.multiply(Matrix(rows: 5, cols: 0), into: &none, pool: ComputePool(threads: 2))
        XCTAssertEqual(none.count, 0)
    }

    /// More rows than one thread's chunk of output rows (`BinaryMatrix.rowChunk`, sized to this host's L2), so the
    /// chunk loop runs several times per thread, ending in a partial chunk.
    func testManyRowsSpanSeveralRowChunks() throws {
        var rng = TestRNG(seed: 76)
        let cols = 23, rows = 2 * 3 * BinaryMatrix.rowChunk(groups: (cols + 3) / 4) + 37
        let s = randomIndicator(rows: rows, cols: cols, density: 0.3, value: 1, &rng)
        let codes = try XCTUnwrap(BinaryMatrix(s))
        for pool in [ComputePool.serial, ComputePool(threads: 2)] {
            let x = randomMatrix(cols, 80, &rng)
            var out = Matrix(rows: rows, cols: 80)
            codes.multiply(x, into: &out, pool: pool)
            assertClose(out, naiveSparseProduct(s, x), tolerance: 1e-4, "\(pool.threads) threads")
            let g = randomMatrix(rows, 80, &rng)
            var gradient = Matrix(rows: cols, cols: 80)
            codes.multiplyTransposed(g, into: &gradient, pool: pool)
            assertClose(gradient, transposedNaive(s, g), tolerance: 1e-3, "ᵀ \(pool.threads) threads")
        }
    }

    /// A chunk's output slices and codes fill at most a quarter of the L2 the host reports, in whole 64-row steps,
    /// and never fewer than 64 rows (a tiny or unknown cache).
    func testRowChunkFitsAQuarterOfTheLevel2Cache() {
        for (level2, groups) in [(512 * 1024, 187), (1024 * 1024, 187), (2048 * 1024, 2), (32 * 1024, 187)] {
            let chunk = BinaryMatrix.rowChunk(groups: groups, level2Bytes: level2)
            XCTAssertEqual(chunk % 64, 0, "L2 \(level2), \(groups) groups")
            XCTAssertGreaterThanOrEqual(chunk, 64)
            if chunk > 64 { XCTAssertLessThanOrEqual(chunk * (256 + groups), level2 / 4, "L2 \(level2)") }
            XCTAssertGreaterThan((chunk + 64) * (256 + groups), level2 / 4, "the largest such chunk, L2 \(level2)")
        }
        XCTAssertEqual(BinaryMatrix.rowChunk(groups: 187, level2Bytes: 512 * 1024), 256, "Amazon-Photo on a Zen 3")
        XCTAssertEqual(BinaryMatrix.rowChunk(groups: 187, level2Bytes: nil), 256, "unknown: 512 KiB assumed")
    }

    /// Stored zeros (what dropout leaves in the pattern) are not non-zeros: the codes skip them.
    func testStoredZerosAreLeftOut() throws {
        var rng = TestRNG(seed: 77)
        var s = randomIndicator(rows: 19, cols: 14, density: 0.5, value: 2, &rng)
        s.values = s.values.indices.map { $0 % 3 == 0 ? 0 : 2 }
        let codes = try XCTUnwrap(BinaryMatrix(s))
        XCTAssertEqual(codes.value, 2)
        XCTAssertEqual(codes.nonZeroCount, s.values.filter { $0 != 0 }.count)
        let x = randomMatrix(14, 32, &rng)
        var out = Matrix(rows: 19, cols: 32)
        codes.multiply(x, into: &out)
        assertClose(out, naiveSparseProduct(s, x), tolerance: 1e-4)
    }

    func testCodesExistOnlyForOneCommonNonZeroValue() {
        let mixed = SparseMatrix(rows: 2, cols: 3, triplets: [(0, 0, 1), (1, 2, 2)])
        XCTAssertNil(BinaryMatrix(mixed), "two different values")
        let zeros = SparseMatrix(rows: 2, cols: 3, triplets: [(0, 0, 0), (1, 2, 0)])
        XCTAssertNil(BinaryMatrix(zeros), "only stored zeros: no non-zero value")
        let nothing = SparseMatrix(rows: 2, cols: 3, rowPointers: [0, 0, 0], columnIndices: [], values: [])
        XCTAssertNil(BinaryMatrix(nothing), "no non-zeros")
        let nan = SparseMatrix(rows: 1, cols: 2, triplets: [(0, 0, .nan), (0, 1, .nan)])
        XCTAssertNil(BinaryMatrix(nan), "NaN is not one value")
        let infinite = SparseMatrix(rows: 1, cols: 2, triplets: [(0, 0, .infinity), (0, 1, .infinity)])
        XCTAssertNil(BinaryMatrix(infinite), "an infinite value would make the zero entries NaN")
        // A row naming a column twice sums the two entries in CSR; a code cannot.
        let duplicate = SparseMatrix(rows: 1, cols: 3, rowPointers: [0, 2], columnIndices: [1, 1], values: [1, 1])
        XCTAssertNil(BinaryMatrix(duplicate))
    }
}
