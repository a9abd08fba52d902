import HaloTensor
import HaloTestSupport
import XCTest

final class MatrixTests: XCTestCase {
    func testInitialisersAndSubscript() {
        let m = Matrix([[1, 2, 3], [4, 5, 6]])
        XCTAssertEqual(m.rows, 2)
        XCTAssertEqual(m.cols, 3)
        XCTAssertEqual(m.count, 6)
        XCTAssertEqual(m.storage, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(m[1, 0], 4)
        XCTAssertEqual(m.row(1), [4, 5, 6])
        XCTAssertEqual(Matrix(rows: 2, cols: 3) { i, j in Float(i * 3 + j + 1) }, m)
        XCTAssertEqual(Matrix(rows: 2, cols: 3, storage: [1, 2, 3, 4, 5, 6]), m)
        XCTAssertEqual(Matrix(rows: 2, cols: 2, repeating: 3).storage, [3, 3, 3, 3])
        XCTAssertEqual(Matrix(rows: 3, cols: 0).count, 0)
        XCTAssertTrue(Matrix(rows: 3, cols: 0).isEmpty)
        XCTAssertTrue(Matrix([]).isEmpty)
        var z = m
        z[0, 2] = 9
        XCTAssertEqual(z.storage, [1, 2, 9, 4, 5, 6])
        z.zero()
        XCTAssertEqual(z, Matrix(rows: 2, cols: 3))
    }

    func testTransposed() {
        let m = Matrix([[1, 2, 3], [4, 5, 6]])
        XCTAssertEqual(m.transposed(), Matrix([[1, 4], [2, 5], [3, 6]]))
        XCTAssertEqual(m.transposed().transposed(), m)
        var rng = TestRNG(seed: 61)
        for (r, c) in [(0, 0), (0, 4), (4, 0), (1, 1), (1, 9), (9, 1), (7, 13)] {
            let a = randomMatrix(r, c, &rng)
            let t = a.transposed()
            XCTAssertEqual(t.rows, c)
            XCTAssertEqual(t.cols, r)
            for i in 0..<r { for j in 0..<c { XCTAssertEqual(t[j, i], a[i, j]) } }
            XCTAssertEqual(t.transposed(), a)
        }
    }

    func testVstack() {
        let a = Matrix([[1, 2]]), b = Matrix([[3, 4], [5, 6]]), empty = Matrix(rows: 0, cols: 2)
        XCTAssertEqual(Matrix.vstack([a, b]), Matrix([[1, 2], [3, 4], [5, 6]]))
        XCTAssertEqual(Matrix.vstack([empty, a, empty, b]), Matrix([[1, 2], [3, 4], [5, 6]]))
        XCTAssertEqual(Matrix.vstack([b]), b)
        XCTAssertEqual(Matrix.vstack([empty, empty]), empty)
        XCTAssertEqual(Matrix.vstack([]), Matrix(rows: 0, cols: 0))
        let wide = Matrix.vstack([Matrix(rows: 2, cols: 0), Matrix(rows: 3, cols: 0)])
        XCTAssertEqual(wide.rows, 5)
        XCTAssertEqual(wide.cols, 0)
    }

    func testRowsRange() {
        var rng = TestRNG(seed: 62)
        let m = randomMatrix(6, 4, &rng)
        XCTAssertEqual(m.rows(0..<6), m)
        XCTAssertEqual(m.rows(2..<2), Matrix(rows: 0, cols: 4))
        XCTAssertEqual(m.rows(6..<6), Matrix(rows: 0, cols: 4))
        let middle = m.rows(1..<4)
        XCTAssertEqual(middle.rows, 3)
        for i in 0..<3 { XCTAssertEqual(middle.row(i), m.row(i + 1)) }
        XCTAssertEqual(Matrix.vstack([m.rows(0..<2), m.rows(2..<5), m.rows(5..<6)]), m)
    }

    func testAppendZeroRows() {
        var m = Matrix([[1, 2], [3, 4]])
        m.appendZeroRows(0)
        XCTAssertEqual(m, Matrix([[1, 2], [3, 4]]))
        m.appendZeroRows(2)
        XCTAssertEqual(m, Matrix([[1, 2], [3, 4], [0, 0], [0, 0]]))
        var empty = Matrix(rows: 0, cols: 3)
        empty.appendZeroRows(1)
        XCTAssertEqual(empty, Matrix(rows: 1, cols: 3))
        var noCols = Matrix(rows: 2, cols: 0)
        noCols.appendZeroRows(3)
        XCTAssertEqual(noCols.rows, 5)
        XCTAssertEqual(noCols.count, 0)
    }

    /// An uninitialized matrix has its shape and, with reserved rows, grows to them in place; appending nothing
    /// to a shared buffer does not copy it.
    func testUninitializedReservesRowsForAppending() {
        var m = Matrix.uninitialized(rows: 3, cols: 4, reservingRows: 5)
        XCTAssertEqual(m.rows, 3)
        XCTAssertEqual(m.count, 12)
        for i in 0..<12 { m.storage[i] = Float(i) }
        let before = m.storage.withUnsafeBufferPointer { $0.baseAddress }
        m.appendZeroRows(2)
        XCTAssertEqual(m.storage.withUnsafeBufferPointer { $0.baseAddress }, before, "appending within the reserve reallocated")
        XCTAssertEqual(m.row(2), [8, 9, 10, 11])
        XCTAssertEqual(m.row(4), [0, 0, 0, 0])
        let shared = m
        m.appendZeroRows(0)
        XCTAssertEqual(m.storage.withUnsafeBufferPointer { $0.baseAddress },
                       shared.storage.withUnsafeBufferPointer { $0.baseAddress }, "appending no rows copied a shared buffer")
        XCTAssertEqual(Matrix.uninitialized(rows: 0, cols: 7).count, 0)
        XCTAssertEqual(Matrix.uninitialized(rows: 2, cols: 0, reservingRows: 9).count, 0)
    }

    func testResizeAndReshape() {
        var m = Matrix([[1, 2, 3], [4, 5, 6]])
        m.resize(rows: 3, cols: 2)  // same element count: storage reused, still zero-filled
        XCTAssertEqual(m, Matrix(rows: 3, cols: 2))
        m = Matrix([[1, 2, 3], [4, 5, 6]])
        m.resize(rows: 4, cols: 5)
        XCTAssertEqual(m, Matrix(rows: 4, cols: 5))
        m[3, 4] = 1
        m.resize(rows: 1, cols: 2)
        XCTAssertEqual(m, Matrix(rows: 1, cols: 2))
        m.resize(rows: 0, cols: 7)
        XCTAssertEqual(m.rows, 0)
        XCTAssertEqual(m.cols, 7)
        XCTAssertEqual(m.count, 0)
        var r = Matrix([[1, 2, 3], [4, 5, 6]])
        r.reshape(rows: 3, cols: 2)
        XCTAssertEqual(r, Matrix([[1, 2], [3, 4], [5, 6]]))
    }

    func testMaxAbsDifference() {
        let a = Matrix([[1, 2], [3, 4]])
        XCTAssertEqual(a.maxAbsDifference(a), 0)
        XCTAssertEqual(a.maxAbsDifference(Matrix([[1, 2.5], [3, 3]])), 1)
        XCTAssertEqual(a.maxAbsDifference(Matrix([[1, 2]])), .infinity)
        XCTAssertFalse(a.description.isEmpty)
    }
}
