/// Column blocks of a row-major matrix, copied out and written back (`ColumnBlocks`).
extension Matrix {
    /// Columns `range` of every row, as a new matrix; `reservingRows` leaves room for `appendZeroRows`.
    public func columns(_ range: Range<Int>, reservingRows: Int = 0) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= cols, "column range \(range) outside 0..<\(cols)")
        var block = Matrix.uninitialized(rows: rows, cols: range.count, reservingRows: reservingRows)
        let width = range.count, stride = cols, first = range.lowerBound, rowCount = rows
        guard width > 0 else { return block }
        storage.withUnsafeBufferPointer { source in
            block.storage.withUnsafeMutableBufferPointer { target in
                for i in 0..<rowCount {
                    (target.baseAddress! + i * width).update(from: source.baseAddress! + i * stride + first, count: width)
                }
            }
        }
        return block
    }

    /// Writes `block` into columns `range` of every row (`accumulate`: adds it).
    public mutating func setColumns(_ range: Range<Int>, from block: Matrix, accumulate: Bool = false) {
        precondition(range.lowerBound >= 0 && range.upperBound <= cols, "column range \(range) outside 0..<\(cols)")
        precondition(block.rows == rows && block.cols == range.count,
                     "a block of \(block.rows)×\(block.cols) does not fill columns \(range) of \(rows) rows")
        let width = range.count, stride = cols, first = range.lowerBound, rowCount = rows
        guard width > 0 else { return }
        block.storage.withUnsafeBufferPointer { source in
            storage.withUnsafeMutableBufferPointer { target in
                for i in 0..<rowCount {
                    let to = target.baseAddress! + i * stride + first, from = source.baseAddress! + i * width
                    if accumulate {
                        for j in 0..<width { to[j] += from[j] }
                    } else {
                        to.update(from: from, count: width)
                    }
                }
            }
        }
    }
}
