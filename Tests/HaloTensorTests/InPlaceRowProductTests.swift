import HaloTensor
import HaloTestSupport
import XCTest

final class InPlaceRowProductTests: XCTestCase {
    /// `x ← x · op(b)` against the naive product, with blocks that divide the rows, do not, exceed them, and hold
    /// one row; on one and three threads; with and without the transpose.
    func testMatchesTheNaiveProduct() {
        var rng = TestRNG(seed: 31)
        for (rows, width) in [(0, 4), (1, 1), (7, 3), (100, 16), (257, 33)] {
            for blockRows in [1, 5, 64, 4096] {
                for transposeB in [false, true] {
                    for threads in [1, 3] {
                        let x = randomMatrix(rows, width, &rng)
                        let b = randomMatrix(width, width, &rng)
                        let expected = naiveProduct(x, b, transposeB: transposeB)
                        var y = x
                        multiplyRowsInPlace(&y, by: b, transposeB: transposeB, blockRows: blockRows,
                                            pool: ComputePool(threads: threads))
                        XCTAssertEqual(y.rows, rows)
                        XCTAssertEqual(y.cols, width)
                        assertClose(y, expected, tolerance: 1e-4,
                                    "\(rows)×\(width) blocks of \(blockRows) transposeB \(transposeB) threads \(threads)")
                    }
                }
            }
        }
    }

    /// The product replaces the matrix's own buffer: no second buffer of its size is made (a shared buffer is
    /// copied once, as any write to it would be, and the other holder keeps its values).
    func testWritesInPlaceAndLeavesASharedCopyAlone() {
        var rng = TestRNG(seed: 32), again = TestRNG(seed: 32)
        let x = randomMatrix(50, 8, &rng)
        let b = randomMatrix(8, 8, &rng)
        var y = x
        multiplyRowsInPlace(&y, by: b, blockRows: 16)
        XCTAssertEqual(x.storage, randomMatrix(50, 8, &again).storage, "the other holder of the buffer is untouched")
        assertClose(y, naiveProduct(x, b), tolerance: 1e-4, "shared input")
        var unique = randomMatrix(40, 8, &rng)
        let before = unique.storage.withUnsafeBufferPointer { $0.baseAddress }
        multiplyRowsInPlace(&unique, by: b, blockRows: 16)
        XCTAssertEqual(unique.storage.withUnsafeBufferPointer { $0.baseAddress }, before, "the rows are replaced where they are")
    }
}
