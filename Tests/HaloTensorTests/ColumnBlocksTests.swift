import HaloTensor
import HaloTestSupport
import XCTest

/// Column blocks (`ColumnBlocks`), the copies in and out of them, and SpMM on a block of columns.
final class ColumnBlocksTests: XCTestCase {
    func testBlocksCoverTheWidthInOrder() {
        for width in [0, 1, 31, 32, 47, 63, 64, 100, 128, 255, 256, 257, 1000] {
            for count in 1...9 {
                let blocks = ColumnBlocks(width: width, count: count)
                let label = "width \(width), \(count) asked"
                XCTAssertEqual(blocks.ranges.first?.lowerBound, 0, label)
                XCTAssertEqual(blocks.ranges.last?.upperBound, width, label)
                for (a, b) in zip(blocks.ranges, blocks.ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound, label) }
                XCTAssertLessThanOrEqual(blocks.count, count, label)
                XCTAssertEqual(blocks.isSplit, blocks.count > 1, label)
                if blocks.isSplit {
                    // Every block but the last is a multiple of 4 wide; none is narrower than the minimum.
                    for r in blocks.ranges.dropLast() { XCTAssertEqual(r.count % 4, 0, label) }
                    for r in blocks.ranges { XCTAssertGreaterThanOrEqual(r.count, ColumnBlocks.minimumWidth, label) }
                    XCTAssertLessThanOrEqual(blocks.largestWidth, (width + blocks.count - 1) / blocks.count + 3, label)
                    XCTAssertEqual(blocks.count, min(count, width / ColumnBlocks.minimumWidth), label)
                }
            }
        }
        XCTAssertEqual(ColumnBlocks(width: 256, count: 4).ranges, [0..<64, 64..<128, 128..<192, 192..<256])
        XCTAssertEqual(ColumnBlocks(width: 256, count: 8).largestWidth, 32)
        XCTAssertEqual(ColumnBlocks(width: 100, count: 8).ranges, [0..<32, 32..<64, 64..<100], "at most 100 / 32 blocks")
        XCTAssertEqual(ColumnBlocks(width: 260, count: 8).ranges.map(\.count), [32, 32, 32, 32, 32, 32, 32, 36])
        XCTAssertFalse(ColumnBlocks(width: 47, count: 8).isSplit, "a layer narrower than two minimum blocks stays whole")
        XCTAssertEqual(ColumnBlocks(width: 256, count: 1).ranges, [0..<256])
    }

    func testColumnsCopyOutAndBack() {
        var rng = TestRNG(seed: 61)
        let m = randomMatrix(7, 13, &rng)
        for range in [0..<13, 0..<0, 3..<9, 12..<13] {
            let block = m.columns(range, reservingRows: 10)
            XCTAssertEqual(block.rows, 7)
            XCTAssertEqual(block.cols, range.count)
            for i in 0..<7 { for (j, c) in range.enumerated() { XCTAssertEqual(block[i, j], m[i, c]) } }

            var target = Matrix(rows: 7, cols: 13, repeating: 2)
            target.setColumns(range, from: block)
            var added = Matrix(rows: 7, cols: 13, repeating: 2)
            added.setColumns(range, from: block, accumulate: true)
            for i in 0..<7 {
                for c in 0..<13 {
                    XCTAssertEqual(target[i, c], range.contains(c) ? m[i, c] : 2, "set [\(i), \(c)] of \(range)")
                    XCTAssertEqual(added[i, c], range.contains(c) ? m[i, c] + 2 : 2, "add [\(i), \(c)] of \(range)")
                }
            }
        }
    }

    /// Blocks of rows into one reused buffer (the one-rank backward's row blocks).
    func testCopyRowsReusesItsBuffer() {
        var rng = TestRNG(seed: 63)
        let m = randomMatrix(10, 6, &rng)
        var buffer = Matrix(rows: 0, cols: 0)
        for range in [0..<4, 4..<8, 8..<10, 3..<3] {
            m.copyRows(range, into: &buffer)
            XCTAssertEqual(buffer, m.rows(range), "\(range)")
        }
        m.copyRows(0..<4, into: &buffer)
        let storage = buffer.storage.withUnsafeBufferPointer { $0.baseAddress }
        m.copyRows(5..<9, into: &buffer)
        XCTAssertEqual(buffer.storage.withUnsafeBufferPointer { $0.baseAddress }, storage, "same size, same storage")
        XCTAssertEqual(buffer, m.rows(5..<9))
    }

    /// A block of the dense matrix's columns, written to a block of the output's: the same numbers as the whole
    /// product's columns (bit for bit: each output column is summed the same way), other columns untouched.
    func testSpMMOnAColumnBlockMatchesTheWholeProduct() {
        var rng = TestRNG(seed: 62)
        let s = randomCSR(rows: 30, cols: 19, maxPerRow: 6, &rng)
        for width in [5, 64, 100, 200] {
            let x = randomMatrix(19, width, &rng)
            let whole = s.multiplied(by: x)
            for blockCount in [1, 2, 3, 6] {
                let blocks = ColumnBlocks(width: width, count: blockCount)
                for pool in [ComputePool.serial, ComputePool(threads: 3)] {
                    var out = Matrix(rows: 30, cols: width + 5, repeating: -3)
                    for block in blocks.ranges {
                        s.multiply(x, columns: block, into: &out, outputColumn: block.lowerBound + 5, pool: pool)
                    }
                    for i in 0..<30 {
                        for j in 0..<5 { XCTAssertEqual(out[i, j], -3, "untouched [\(i), \(j)]") }
                        for j in 0..<width { XCTAssertEqual(out[i, j + 5], whole[i, j], "[\(i), \(j)] width \(width) blocks \(blocks)") }
                    }
                    // Rows of the product into the rows of another matrix, accumulated, on a column block.
                    let block = blocks.ranges[blocks.count - 1]
                    var acc = Matrix(rows: 12, cols: block.count, repeating: 1)
                    s.multiply(x, columns: block, into: &acc, rows: 10..<22, outputRow: 0, accumulate: true, pool: pool)
                    let expected = naiveSparseProduct(s, x)
                    for i in 0..<12 {
                        for (j, c) in block.enumerated() {
                            XCTAssertEqual(Double(acc[i, j]), expected[10 + i][c] + 1, accuracy: 1e-5, "acc [\(i), \(j)]")
                        }
                    }
                }
            }
        }
    }
}
