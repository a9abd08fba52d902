import CBLAS

/// `x ← x · op(b)` for a square `op(b)`, without a second matrix of x's size.
///
/// Row i of the product depends only on row i of x, so the rows can be replaced a block at a time through a
/// buffer of `blockRows` rows. A backward pass uses it to turn the aggregated gradient into the input gradient
/// (`G ← G · Wᵀ`) where a new nodes × width matrix would be the largest transient of the step. The extra cost is
/// one copy of x, small next to the product's `2·width` flops per element. Threads split each block's rows, one
/// single-threaded `cblas_sgemm` each, as `gemm` does.
public func multiplyRowsInPlace(
    _ x: inout Matrix, by b: Matrix, transposeB: Bool = false, blockRows: Int = 4096, pool: ComputePool = .serial
) {
    let (k, n) = transposeB ? (b.cols, b.rows) : (b.rows, b.cols)
    precondition(k == n, "x · op(b) in place needs a square op(b), got \(k)×\(n)")
    precondition(x.cols == k, "x · op(b): x has \(x.cols) columns, op(b) has \(k) rows")
    precondition(blockRows > 0, "blockRows must be positive")
    let rows = x.rows, width = x.cols
    guard rows > 0, width > 0 else { return }
    BLASRuntime.useCallerThreadsOnly()
    let transB = transposeB ? CblasTrans : CblasNoTrans
    var block = [Float](repeating: 0, count: min(blockRows, rows) * width)
    b.storage.withUnsafeBufferPointer { bs in
        x.storage.withUnsafeMutableBufferPointer { xs in
            block.withUnsafeMutableBufferPointer { buffer in
                let pb = bs.baseAddress!, px = xs.baseAddress!, pbuf = buffer.baseAddress!
                var start = 0
                while start < rows {
                    let count = min(blockRows, rows - start)
                    let source = px + start * width
                    // Blocks under 32 rows waste most of a kernel's register tile (as in `gemm`).
                    pool.forEachChunk(of: count, grain: 32) { part in
                        let offset = part.lowerBound * width
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, transB, Int32(part.count), Int32(width), Int32(width),
                                    1, source + offset, Int32(width), pb, Int32(b.cols), 0, pbuf + offset, Int32(width))
                        (source + offset).update(from: pbuf + offset, count: part.count * width)
                    }
                    start += count
                }
            }
        }
    }
}
