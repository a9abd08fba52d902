import Foundation
import HaloTensor
import XCTest
import HaloTestSupport

/// Widths that hit every SpMM path: scalar tail only, 4/8/16-lane blocks, 64- and 128-float blocks and mixtures.
let testWidths = [1, 4, 5, 7, 8, 12, 15, 16, 17, 28, 63, 64, 65, 128, 130, 200, 255, 257]

func randomMatrix(_ rows: Int, _ cols: Int, _ rng: inout TestRNG) -> Matrix {
    Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in rng.float() })
}

/// A random duplicate-free CSR matrix with sorted rows; about `emptyRowFraction` of the rows have no non-zeros.
func randomCSR(
    rows: Int, cols: Int, maxPerRow: Int, _ rng: inout TestRNG, emptyRowFraction: Double = 0.2
) -> SparseMatrix {
    var pointers = [0]
    var indices = [Int32]()
    var values = [Float]()
    for _ in 0..<rows {
        if cols > 0, Double(rng.int(0..<1000)) / 1000 >= emptyRowFraction {
            let n = rng.int(0..<(min(maxPerRow, cols) + 1))
            var chosen = Set<Int>()
            while chosen.count < n { chosen.insert(rng.int(0..<cols)) }
            for c in chosen.sorted() {
                indices.append(Int32(c))
                values.append(rng.float())
            }
        }
        pointers.append(indices.count)
    }
    return SparseMatrix(rows: rows, cols: cols, rowPointers: pointers, columnIndices: indices, values: values)
}

/// `op(A)·op(B)` by a plain triple loop in Double.
func naiveProduct(_ a: Matrix, _ b: Matrix, transposeA: Bool = false, transposeB: Bool = false) -> [[Double]] {
    let m = transposeA ? a.cols : a.rows, k = transposeA ? a.rows : a.cols
    let n = transposeB ? b.rows : b.cols
    var c = [[Double]](repeating: [Double](repeating: 0, count: n), count: m)
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let x = transposeA ? a[p, i] : a[i, p]
                let y = transposeB ? b[j, p] : b[p, j]
                s += Double(x) * Double(y)
            }
            c[i][j] = s
        }
    }
    return c
}

/// Sparse × dense by a plain loop over the dense form of the sparse matrix, in Double.
func naiveSparseProduct(_ s: SparseMatrix, _ x: Matrix) -> [[Double]] {
    var d = [[Double]](repeating: [Double](repeating: 0, count: s.cols), count: s.rows)
    for r in 0..<s.rows {
        for e in s.rowPointers[r]..<s.rowPointers[r + 1] { d[r][Int(s.columnIndices[e])] += Double(s.values[e]) }
    }
    var out = [[Double]](repeating: [Double](repeating: 0, count: x.cols), count: s.rows)
    for i in 0..<s.rows {
        for j in 0..<x.cols {
            var acc = 0.0
            for p in 0..<s.cols { acc += d[i][p] * Double(x[p, j]) }
            out[i][j] = acc
        }
    }
    return out
}

/// Asserts `actual[i, j] ≈ expected[i][j]` within `tolerance` (absolute, on values of order one).
func assertClose(
    _ actual: Matrix, _ expected: [[Double]], tolerance: Double = 1e-4, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.rows, expected.count, "rows; \(message())", file: file, line: line)
    guard actual.rows == expected.count else { return }
    var worst = 0.0
    for i in 0..<actual.rows {
        XCTAssertEqual(actual.cols, expected[i].count, "cols; \(message())", file: file, line: line)
        guard actual.cols == expected[i].count else { return }
        for j in 0..<actual.cols {
            let difference = abs(Double(actual[i, j]) - expected[i][j])
            // `max` would drop a NaN; a NaN where a number is expected must fail.
            worst = difference.isNaN ? .infinity : max(worst, difference)
        }
    }
    XCTAssertLessThanOrEqual(worst, tolerance, "max abs error; \(message())", file: file, line: line)
}

/// Converts a matrix to nested Doubles (to use a matrix as an expected value).
func nested(_ m: Matrix) -> [[Double]] {
    (0..<m.rows).map { i in (0..<m.cols).map { Double(m[i, $0]) } }
}

/// A thread-safe record of the ranges a parallel loop handed out.
final class RangeRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Range<Int>] = []

    func record(_ r: Range<Int>) {
        lock.lock()
        storage.append(r)
        lock.unlock()
    }

    var ranges: [Range<Int>] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
