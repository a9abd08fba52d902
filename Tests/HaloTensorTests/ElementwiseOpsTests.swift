import HaloTensor
import HaloTestSupport
import XCTest

final class ElementwiseOpsTests: XCTestCase {
    private let shapes = [(0, 0), (0, 5), (5, 0), (1, 1), (1, 17), (9, 1), (7, 63), (300, 3), (33, 130)]
    private let pools = [ComputePool.serial, ComputePool(threads: 2), ComputePool(threads: 5)]

    func testScale() {
        var rng = TestRNG(seed: 41)
        for (r, c) in shapes {
            let m = randomMatrix(r, c, &rng)
            for factor: Float in [0, 1, -2.5, 0.125] {
                var s = m
                scale(&s, by: factor)
                XCTAssertEqual(s.rows, r)
                XCTAssertEqual(s.cols, c)
                XCTAssertEqual(s.storage, m.storage.map { $0 * factor }, "\(r)×\(c) by \(factor)")
            }
        }
    }

    func testAddScaled() {
        var rng = TestRNG(seed: 42)
        for (r, c) in shapes {
            let x = randomMatrix(r, c, &rng), y0 = randomMatrix(r, c, &rng)
            for alpha: Float in [1, 0, -1, 0.3] {
                var y = y0
                addScaled(x, alpha, to: &y)
                for i in 0..<x.count {
                    XCTAssertEqual(y.storage[i], y0.storage[i] + alpha * x.storage[i], accuracy: 1e-6, "\(r)×\(c) α=\(alpha)")
                }
            }
            var y = y0
            addScaled(x, to: &y)  // default alpha 1
            for i in 0..<x.count { XCTAssertEqual(y.storage[i], y0.storage[i] + x.storage[i], accuracy: 1e-6) }
        }
    }

    func testAddRowVector() {
        var rng = TestRNG(seed: 43)
        for (r, c) in shapes {
            let m = randomMatrix(r, c, &rng)
            let v = (0..<c).map { _ in rng.float() }
            for pool in pools {
                var out = m
                addRowVector(v, to: &out, pool: pool)
                XCTAssertEqual(out, Matrix(rows: r, cols: c) { i, j in m[i, j] + v[j] }, "\(r)×\(c) threads \(pool.threads)")
            }
        }
    }

    func testColumnSums() {
        var rng = TestRNG(seed: 44)
        for (r, c) in shapes {
            let m = randomMatrix(r, c, &rng)
            let sums = columnSums(m)
            XCTAssertEqual(sums.count, c)
            for j in 0..<c {
                let expected = (0..<r).reduce(0.0) { $0 + Double(m[$1, j]) }
                XCTAssertEqual(Double(sums[j]), expected, accuracy: 1e-4, "\(r)×\(c) column \(j)")
            }
        }
        XCTAssertEqual(columnSums(Matrix([[1, 2], [3, 4], [5, 6]])), [9, 12])
    }

    func testReluForwardAndBackward() {
        var rng = TestRNG(seed: 45)
        for (r, c) in shapes {
            var m = randomMatrix(r, c, &rng)
            if m.count > 2 { m.storage[0] = 0; m.storage[1] = -0.0 }
            let grad = randomMatrix(r, c, &rng)
            for pool in pools {
                var out = m
                reluInPlace(&out, pool: pool)
                XCTAssertEqual(out.storage, m.storage.map { $0 < 0 ? 0 : $0 }, "\(r)×\(c) threads \(pool.threads)")
                XCTAssertTrue(out.storage.allSatisfy { $0 >= 0 })
                var g = grad
                reluBackwardInPlace(&g, output: out, pool: pool)
                let expected = (0..<grad.count).map { out.storage[$0] > 0 ? grad.storage[$0] : 0 }
                XCTAssertEqual(g.storage, expected, "backward \(r)×\(c) threads \(pool.threads)")
            }
        }
    }

    func testGatherRows() {
        var rng = TestRNG(seed: 46)
        for c in [0, 1, 7, 65] {
            let source = randomMatrix(10, c, &rng)
            for indices in [[], [4], [9, 0, 3, 3, 7], (0..<10).map { Int32(9 - $0) }] as [[Int32]] {
                for at in [0, 2] {
                    for pool in pools {
                        var dest = Matrix(rows: indices.count + at + 1, cols: c, repeating: -1)
                        gatherRows(source, indices, into: &dest, at: at, pool: pool)
                        for i in 0..<dest.rows {
                            let expected = i >= at && i < at + indices.count
                                ? source.row(Int(indices[i - at])) : [Float](repeating: -1, count: c)
                            XCTAssertEqual(dest.row(i), expected, "width \(c) indices \(indices) at \(at) row \(i)")
                        }
                    }
                }
            }
        }
        // Many rows, so a multi-threaded pool really splits (grain 512).
        let big = randomMatrix(1500, 3, &rng)
        let indices = (0..<1500).map { Int32(($0 * 7) % 1500) }
        var serial = Matrix(rows: 1500, cols: 3), parallel = Matrix(rows: 1500, cols: 3)
        gatherRows(big, indices, into: &serial)
        gatherRows(big, indices, into: &parallel, pool: ComputePool(threads: 3))
        XCTAssertEqual(serial, parallel)
        XCTAssertEqual(serial.row(1), big.row(7))
    }

    func testScatterAddRows() {
        var rng = TestRNG(seed: 47)
        for c in [0, 1, 7, 65] {
            let source = randomMatrix(8, c, &rng)
            let initial = randomMatrix(12, c, &rng)
            for (from, indices) in [(0, [Int32]()), (0, [3]), (2, [11, 0, 5]), (0, (0..<8).map { Int32(8 - $0) })] {
                for pool in pools {
                    var dest = initial
                    scatterAddRows(source, from: from, count: indices.count, into: &dest, indices, pool: pool)
                    var expected = initial
                    for (k, d) in indices.enumerated() {
                        for j in 0..<c { expected[Int(d), j] += source[from + k, j] }
                    }
                    XCTAssertEqual(dest, expected, "width \(c) from \(from) indices \(indices)")
                }
            }
        }
        let source = randomMatrix(1200, 2, &rng)
        let indices = (0..<1200).map { Int32(1199 - $0) }
        var serial = Matrix(rows: 1200, cols: 2), parallel = Matrix(rows: 1200, cols: 2)
        scatterAddRows(source, count: 1200, into: &serial, indices)
        scatterAddRows(source, count: 1200, into: &parallel, indices, pool: ComputePool(threads: 3))
        XCTAssertEqual(serial, parallel)
        XCTAssertEqual(serial.row(0), source.row(1199))
    }

    /// gatherRows then scatterAddRows with the same indices into a zero matrix puts each gathered row back.
    func testGatherScatterRoundTrip() {
        var rng = TestRNG(seed: 48)
        let m = randomMatrix(9, 5, &rng)
        let indices: [Int32] = [8, 1, 4]
        var packed = Matrix(rows: 3, cols: 5)
        gatherRows(m, indices, into: &packed)
        var back = Matrix(rows: 9, cols: 5)
        scatterAddRows(packed, count: 3, into: &back, indices)
        for i in 0..<9 {
            XCTAssertEqual(back.row(i), indices.contains(Int32(i)) ? m.row(i) : [Float](repeating: 0, count: 5))
        }
    }
}
