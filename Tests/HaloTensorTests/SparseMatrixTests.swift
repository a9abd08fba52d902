import HaloTensor
import HaloTestSupport
import XCTest

final class SpMMTests: XCTestCase {
    private let pools = [ComputePool.serial, ComputePool(threads: 2), ComputePool(threads: 3), ComputePool(threads: 7)]

    func testMultiplyMatchesNaiveProductForAllWidths() {
        var rng = TestRNG(seed: 21)
        for width in testWidths {
            for (rows, cols) in [(1, 1), (1, 9), (12, 10), (23, 31)] {
                let s = randomCSR(rows: rows, cols: cols, maxPerRow: 6, &rng)
                let x = randomMatrix(cols, width, &rng)
                let expected = naiveSparseProduct(s, x)
                var out = Matrix(rows: rows, cols: width, repeating: 5)  // overwritten, not accumulated
                s.multiply(x, into: &out)
                assertClose(out, expected, tolerance: 1e-5, "\(rows)×\(cols) · width \(width)")
                assertClose(s.multiplied(by: x), expected, tolerance: 1e-5, "multiplied(by:) width \(width)")
            }
        }
    }

    func testEmptyShapesAndEmptyRows() {
        var rng = TestRNG(seed: 22)
        // No rows.
        let noRows = SparseMatrix(rows: 0, cols: 4, rowPointers: [0], columnIndices: [], values: [])
        var out0 = Matrix(rows: 0, cols: 3)
        noRows.multiply(randomMatrix(4, 3, &rng), into: &out0)
        XCTAssertEqual(out0, Matrix(rows: 0, cols: 3))
        // No columns: every row is empty; the result is zero (and overwrites).
        let noCols = SparseMatrix(rows: 3, cols: 0, rowPointers: [0, 0, 0, 0], columnIndices: [], values: [])
        var out1 = Matrix(rows: 3, cols: 5, repeating: 9)
        noCols.multiply(Matrix(rows: 0, cols: 5), into: &out1)
        XCTAssertEqual(out1, Matrix(rows: 3, cols: 5))
        // Zero-width dense operand.
        let s = randomCSR(rows: 4, cols: 4, maxPerRow: 3, &rng)
        var out2 = Matrix(rows: 4, cols: 0)
        s.multiply(Matrix(rows: 4, cols: 0), into: &out2, pool: ComputePool(threads: 2))
        XCTAssertEqual(out2.count, 0)
        // All rows empty, some widths: zero result, accumulate leaves the output alone.
        let empty = SparseMatrix(rows: 5, cols: 6, rowPointers: [0, 0, 0, 0, 0, 0], columnIndices: [], values: [])
        for width in testWidths {
            let x = randomMatrix(6, width, &rng)
            var out = Matrix(rows: 5, cols: width, repeating: 3)
            empty.multiply(x, into: &out, pool: ComputePool(threads: 2))
            XCTAssertEqual(out, Matrix(rows: 5, cols: width), "width \(width)")
            var acc = Matrix(rows: 5, cols: width, repeating: 3)
            empty.multiply(x, into: &acc, accumulate: true, pool: ComputePool(threads: 2))
            XCTAssertEqual(acc, Matrix(rows: 5, cols: width, repeating: 3), "width \(width)")
        }
    }

    func testAccumulateAddsToOutput() {
        var rng = TestRNG(seed: 23)
        for width in testWidths {
            let s = randomCSR(rows: 17, cols: 13, maxPerRow: 5, &rng)
            let x = randomMatrix(13, width, &rng)
            let initial = randomMatrix(17, width, &rng)
            let product = naiveSparseProduct(s, x)
            let expected = (0..<17).map { i in (0..<width).map { j in product[i][j] + Double(initial[i, j]) } }
            for pool in pools {
                var out = initial
                s.multiply(x, into: &out, accumulate: true, pool: pool)
                assertClose(out, expected, tolerance: 1e-5, "width \(width) threads \(pool.threads)")
            }
        }
    }

    func testRowSubRangeAndOutputOffset() {
        var rng = TestRNG(seed: 24)
        for width in [1, 17, 64, 65] {
            let s = randomCSR(rows: 20, cols: 11, maxPerRow: 5, &rng)
            let x = randomMatrix(11, width, &rng)
            let full = s.multiplied(by: x)
            for range in [0..<0, 0..<20, 3..<9, 19..<20, 0..<1, 7..<20] {
                for pool in pools {
                    // Default: output rows line up with sparse rows; other rows are untouched.
                    var aligned = Matrix(rows: 20, cols: width, repeating: -4)
                    s.multiply(x, into: &aligned, rows: range, pool: pool)
                    for i in 0..<20 {
                        let expected = range.contains(i) ? full.row(i) : [Float](repeating: -4, count: width)
                        XCTAssertEqual(aligned.row(i), expected, "row \(i) of range \(range), threads \(pool.threads)")
                    }
                    // Offset: sparse row r goes to output row offset + r − lower.
                    let offset = 2
                    var shifted = Matrix(rows: range.count + 3, cols: width, repeating: -4)
                    s.multiply(x, into: &shifted, rows: range, outputRow: offset, pool: pool)
                    for i in 0..<shifted.rows {
                        let r = range.lowerBound + i - offset
                        let expected = i >= offset && i < offset + range.count
                            ? full.row(r) : [Float](repeating: -4, count: width)
                        XCTAssertEqual(shifted.row(i), expected, "output row \(i) of range \(range), threads \(pool.threads)")
                    }
                    // Offset with accumulate.
                    var acc = Matrix(rows: range.count + 3, cols: width, repeating: 1)
                    s.multiply(x, into: &acc, rows: range, outputRow: offset, accumulate: true, pool: pool)
                    for i in 0..<acc.rows {
                        let r = range.lowerBound + i - offset
                        let expected = i >= offset && i < offset + range.count
                            ? naiveSparseProduct(s, x)[r].map { Float($0 + 1) } : [Float](repeating: 1, count: width)
                        for j in 0..<width {
                            XCTAssertEqual(acc[i, j], expected[j], accuracy: 1e-5, "acc row \(i) col \(j) range \(range)")
                        }
                    }
                }
            }
        }
    }

    /// Rows are independent and each is summed in CSR order, so the thread count never changes a single bit.
    func testResultsAreBitIdenticalAcrossThreadCounts() {
        var rng = TestRNG(seed: 25)
        for width in testWidths {
            // Skewed row lengths exercise the balanced split.
            var triplets: [(row: Int, col: Int, value: Float)] = []
            for c in 0..<40 { triplets.append((0, c, rng.float())) }
            let rest = randomCSR(rows: 60, cols: 40, maxPerRow: 4, &rng)
            for r in 0..<60 {
                for e in rest.rowPointers[r]..<rest.rowPointers[r + 1] {
                    triplets.append((r + 1, Int(rest.columnIndices[e]), rest.values[e]))
                }
            }
            let s = SparseMatrix(rows: 61, cols: 40, triplets: triplets)
            let x = randomMatrix(40, width, &rng)
            let serial = s.multiplied(by: x)
            assertClose(serial, naiveSparseProduct(s, x), tolerance: 1e-4, "width \(width)")
            for pool in pools.dropFirst() {
                XCTAssertEqual(s.multiplied(by: x, pool: pool).storage, serial.storage, "width \(width) threads \(pool.threads)")
                let initial = randomMatrix(61, width, &rng)
                var a = initial, b = initial
                s.multiply(x, into: &a, accumulate: true)
                s.multiply(x, into: &b, accumulate: true, pool: pool)
                XCTAssertEqual(a.storage, b.storage, "accumulate, width \(width) threads \(pool.threads)")
                var part = Matrix(rows: 30, cols: width)
                s.multiply(x, into: &part, rows: 31..<61, outputRow: 0, pool: pool)
                XCTAssertEqual(part, serial.rows(31..<61), "sub-range, width \(width) threads \(pool.threads)")
            }
        }
    }
}

final class SparseMatrixTests: XCTestCase {
    func testTransposeMatchesDenseTranspose() {
        var rng = TestRNG(seed: 31)
        let shapes = [(0, 0), (0, 5), (5, 0), (1, 1), (1, 8), (8, 1), (9, 14), (30, 7)]
        for (rows, cols) in shapes {
            let s = randomCSR(rows: rows, cols: cols, maxPerRow: 5, &rng)
            let t = s.transposed()
            XCTAssertEqual(t.rows, cols)
            XCTAssertEqual(t.cols, rows)
            XCTAssertEqual(t.nonZeroCount, s.nonZeroCount)
            XCTAssertNil(t.firstStructuralProblem(), "\(rows)×\(cols)")
            XCTAssertEqual(t.dense(), s.dense().transposed(), "\(rows)×\(cols)")
            XCTAssertEqual(t.transposed(), s, "double transpose of \(rows)×\(cols)")
        }
    }

    func testTransposePermutationMapsValues() {
        var rng = TestRNG(seed: 32)
        for (rows, cols) in [(0, 3), (4, 0), (1, 1), (12, 9), (25, 40)] {
            let s = randomCSR(rows: rows, cols: cols, maxPerRow: 6, &rng)
            let (t, permutation) = s.transposedWithPermutation()
            XCTAssertEqual(t, s.transposed())
            XCTAssertEqual(permutation.count, s.nonZeroCount)
            XCTAssertEqual(Set(permutation).count, permutation.count, "permutation must be a bijection")
            // Entry k of the transpose is entry permutation[k] of the original: same value, swapped coordinates.
            var rowOfEntry = [Int](repeating: 0, count: s.nonZeroCount)
            for r in 0..<s.rows { for e in s.rowPointers[r]..<s.rowPointers[r + 1] { rowOfEntry[e] = r } }
            for c in 0..<t.rows {
                for k in t.rowPointers[c]..<t.rowPointers[c + 1] {
                    let e = permutation[k]
                    XCTAssertEqual(t.values[k], s.values[e])
                    XCTAssertEqual(Int(t.columnIndices[k]), rowOfEntry[e])
                    XCTAssertEqual(Int(s.columnIndices[e]), c)
                }
            }
            // New values mapped through the permutation give the transpose of the re-valued matrix.
            var revalued = s
            revalued.values = s.values.indices.map { Float($0) * 0.5 - 3 }
            var t2 = t
            t2.values = permutation.map { revalued.values[$0] }
            XCTAssertEqual(t2, revalued.transposed())
        }
    }

    func testSelectingRows() {
        var rng = TestRNG(seed: 33)
        let s = randomCSR(rows: 10, cols: 7, maxPerRow: 4, &rng)
        let dense = s.dense()
        for selection in [[], [3], [9, 0, 4], [2, 2, 5], Array(0..<10), Array((0..<10).reversed())] {
            let picked = s.selectingRows(selection)
            XCTAssertEqual(picked.rows, selection.count)
            XCTAssertEqual(picked.cols, 7)
            XCTAssertNil(picked.firstStructuralProblem())
            XCTAssertEqual(picked.dense(), Matrix(rows: selection.count, cols: 7) { i, j in dense[selection[i], j] },
                           "selection \(selection)")
        }
    }

    func testTripletsBuildSortedCSR() {
        let triplets: [(row: Int, col: Int, value: Float)] = [
            (2, 3, 1), (0, 1, 2), (2, 0, 3), (0, 0, 4), (3, 2, 5), (2, 1, 6),
        ]
        let s = SparseMatrix(rows: 5, cols: 4, triplets: triplets)
        XCTAssertEqual(s.rowPointers, [0, 2, 2, 5, 6, 6])
        XCTAssertEqual(s.columnIndices, [0, 1, 0, 1, 3, 2])
        XCTAssertEqual(s.values, [4, 2, 3, 6, 1, 5])
        XCTAssertNil(s.firstStructuralProblem())
        let unsorted = SparseMatrix(rows: 5, cols: 4, triplets: triplets, sortRows: false)
        XCTAssertEqual(unsorted.rowPointers, [0, 2, 2, 5, 6, 6])
        XCTAssertEqual(unsorted.columnIndices, [1, 0, 3, 0, 1, 2], "given order kept")
        XCTAssertEqual(unsorted.values, [2, 4, 1, 3, 6, 5])
        XCTAssertNotNil(unsorted.firstStructuralProblem())
        XCTAssertEqual(unsorted.dense(), s.dense())

        let empty = SparseMatrix(rows: 0, cols: 0, triplets: [])
        XCTAssertEqual(empty.rowPointers, [0])
        XCTAssertEqual(empty.nonZeroCount, 0)
        let noEntries = SparseMatrix(rows: 3, cols: 2, triplets: [])
        XCTAssertEqual(noEntries.rowPointers, [0, 0, 0, 0])
        XCTAssertEqual(noEntries.dense(), Matrix(rows: 3, cols: 2))
    }

    func testTripletsMatchRandomDense() {
        var rng = TestRNG(seed: 34)
        for (rows, cols) in [(1, 1), (6, 9), (20, 3)] {
            let reference = randomCSR(rows: rows, cols: cols, maxPerRow: 4, &rng)
            var triplets: [(row: Int, col: Int, value: Float)] = []
            for r in 0..<rows {
                for e in reference.rowPointers[r]..<reference.rowPointers[r + 1] {
                    triplets.append((r, Int(reference.columnIndices[e]), reference.values[e]))
                }
            }
            triplets.shuffle(using: &rng)
            XCTAssertEqual(SparseMatrix(rows: rows, cols: cols, triplets: triplets), reference)
        }
    }

    func testFirstStructuralProblem() {
        XCTAssertNil(SparseMatrix(rows: 2, cols: 3, rowPointers: [0, 2, 3], columnIndices: [0, 2, 1], values: [1, 1, 1])
            .firstStructuralProblem())
        XCTAssertNil(SparseMatrix(rows: 0, cols: 0, rowPointers: [0], columnIndices: [], values: []).firstStructuralProblem())
        XCTAssertNil(SparseMatrix(rows: 2, cols: 0, rowPointers: [0, 0, 0], columnIndices: [], values: []).firstStructuralProblem())
        // Column out of range (too large, negative).
        XCTAssertNotNil(SparseMatrix(rows: 2, cols: 3, rowPointers: [0, 1, 2], columnIndices: [0, 3], values: [1, 1])
            .firstStructuralProblem())
        XCTAssertNotNil(SparseMatrix(rows: 2, cols: 3, rowPointers: [0, 1, 2], columnIndices: [-1, 0], values: [1, 1])
            .firstStructuralProblem())
        // Unsorted and duplicate columns.
        XCTAssertNotNil(SparseMatrix(rows: 1, cols: 3, rowPointers: [0, 2], columnIndices: [2, 1], values: [1, 1])
            .firstStructuralProblem())
        XCTAssertNotNil(SparseMatrix(rows: 1, cols: 3, rowPointers: [0, 2], columnIndices: [1, 1], values: [1, 1])
            .firstStructuralProblem())
        // Decreasing row pointers.
        XCTAssertNotNil(SparseMatrix(rows: 3, cols: 3, rowPointers: [0, 2, 1, 2], columnIndices: [0, 1], values: [1, 1])
            .firstStructuralProblem())
        // A row pointer past the entries (possible after mutating the public arrays) is reported, not read.
        var broken = SparseMatrix(rows: 2, cols: 3, rowPointers: [0, 1, 2], columnIndices: [0, 1], values: [1, 1])
        broken.rowPointers[1] = 5
        XCTAssertNotNil(broken.firstStructuralProblem())
        // Random duplicate-free matrices are fine.
        var rng = TestRNG(seed: 35)
        for _ in 0..<10 {
            XCTAssertNil(randomCSR(rows: rng.int(0..<20), cols: rng.int(1..<20), maxPerRow: 6, &rng).firstStructuralProblem())
        }
    }

    func testDenseSumsDuplicates() {
        let s = SparseMatrix(rows: 1, cols: 2, rowPointers: [0, 3], columnIndices: [1, 1, 0], values: [1, 2, 4])
        XCTAssertEqual(s.dense(), Matrix([[4, 3]]))
    }
}

final class SparseTransposedProductTests: XCTestCase {
    /// Output rows formed a piece at a time (a streamed weight gradient) are the whole product's, bit for bit, with
    /// and without `accumulate`; a piece leaves the other rows alone.
    func testPiecesOfOutputRowsGiveTheWholeProductsBits() {
        var rng = TestRNG(seed: 43)
        for (rows, cols, width) in [(64, 100, 65), (120, 37, 256), (300, 250, 16)] {
            let a = randomCSR(rows: rows, cols: cols, maxPerRow: 12, &rng)
            let x = randomMatrix(rows, width, &rng)
            for threads in [1, 2, 3] {
                for accumulate in [false, true] {
                    let start = Matrix(rows: cols, cols: width, repeating: 9)
                    var whole = start
                    a.multiplyTransposed(x, into: &whole, accumulate: accumulate, pool: ComputePool(threads: threads))
                    var pieced = start
                    for first in stride(from: 0, to: cols, by: 30) {
                        let piece = first..<min(first + 30, cols)
                        a.multiplyTransposed(x, into: &pieced, accumulate: accumulate, pool: ComputePool(threads: threads),
                                             rows: piece)
                        XCTAssertTrue(pieced.storage[(piece.upperBound * width)...].allSatisfy { $0 == 9 },
                                      "rows past \(piece) were written")
                    }
                    XCTAssertEqual(pieced.storage, whole.storage, "\(rows)×\(cols)×\(width), \(threads) threads, accumulate \(accumulate)")
                }
            }
        }
    }

    func testScatteredTransposedProductEqualsTransposeThenMultiply() {
        var rng = TestRNG(seed: 42)
        for (rows, cols, width) in [(0, 5, 3), (7, 1, 17), (40, 33, 1), (64, 100, 65), (120, 37, 256), (9, 200, 7)] {
            let a = randomCSR(rows: rows, cols: cols, maxPerRow: 12, &rng)
            let x = randomMatrix(rows, width, &rng)
            let reference = a.transposed().multiplied(by: x)
            for threads in [1, 2, 3, 7] {
                var out = Matrix(rows: cols, cols: width, repeating: 9)   // overwritten without `accumulate`
                a.multiplyTransposed(x, into: &out, pool: ComputePool(threads: threads))
                XCTAssertLessThanOrEqual(out.maxAbsDifference(reference), 1e-4, "\(rows)×\(cols)×\(width), \(threads) threads")
                var acc = Matrix(rows: cols, cols: width, repeating: 1)
                a.multiplyTransposed(x, into: &acc, accumulate: true, pool: ComputePool(threads: threads))
                var expected = reference
                addScaled(Matrix(rows: cols, cols: width, repeating: 1), to: &expected)
                XCTAssertLessThanOrEqual(acc.maxAbsDifference(expected), 1e-4)
            }
        }
    }
}
