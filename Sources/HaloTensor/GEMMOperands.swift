import CBLAS

/// The layout of one `gemm` product (row-major operands, transposes, leading dimensions) and the OpenBLAS call
/// for any piece of it: a range of C's rows, of its columns, and of the inner dimension.
struct GEMMOperands {
    /// op(A) is m × k, op(B) is k × n.
    let m: Int, n: Int, k: Int
    let transposeA: Bool, transposeB: Bool
    /// Row strides of A and B as stored.
    let lda: Int, ldb: Int
    let alpha: Float

    /// `C[rows, columns] = alpha · op(A)[rows, inner] · op(B)[inner, columns] + beta · C[rows, columns]`, one
    /// single-threaded OpenBLAS call, where `c` points at C's element (0, 0) and rows of C are `ldc` apart.
    func multiply(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        rows: Range<Int>, columns: Range<Int>, inner: Range<Int>,
        beta: Float, into c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // op(A)(r, i) is A(r, i), or A(i, r) when transposed; op(B)(i, j) is B(i, j), or B(j, i).
        let pieceA = transposeA ? a + inner.lowerBound * lda + rows.lowerBound
                                : a + rows.lowerBound * lda + inner.lowerBound
        let pieceB = transposeB ? b + columns.lowerBound * ldb + inner.lowerBound
                                : b + inner.lowerBound * ldb + columns.lowerBound
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(rows.count), Int32(columns.count), Int32(inner.count),
                    alpha, pieceA, Int32(lda), pieceB, Int32(ldb),
                    beta, c + rows.lowerBound * ldc + columns.lowerBound, Int32(ldc))
    }

    /// The whole product with the inner dimension cut into one range per thread (`GEMMPartition.inner`): the
    /// first range's product goes straight into C (with `beta`), the others into partial products of their own,
    /// which are then added into C, rows split over the pool.
    func multiplySplittingInner(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        beta: Float, into c: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        let pieces = GEMMPartition.inner.pieces(m: m, n: n, k: k, threads: pool.threads)
        let size = m * n
        // Every element is written by its piece's call (beta 0), so the partials need no zero-fill.
        var partials = [Float](unsafeUninitializedCapacity: (pieces - 1) * size) { _, count in
            count = (pieces - 1) * size
        }
        partials.withUnsafeMutableBufferPointer { buffer in
            let partial = buffer.baseAddress
            pool.forEachChunk(of: pieces) { indices in
                for piece in indices {
                    let inner = (k * piece / pieces)..<(k * (piece + 1) / pieces)
                    if piece == 0 {
                        multiply(a, b, rows: 0..<m, columns: 0..<n, inner: inner, beta: beta, into: c, ldc: n)
                    } else {
                        multiply(a, b, rows: 0..<m, columns: 0..<n, inner: inner, beta: 0,
                                 into: partial! + (piece - 1) * size, ldc: n)
                    }
                }
            }
            guard let partial else { return }
            pool.forEachChunk(of: m) { rows in
                let elements = (rows.lowerBound * n)..<(rows.upperBound * n)
                for piece in 1..<pieces {
                    let source = partial + (piece - 1) * size
                    for e in elements { c[e] += source[e] }
                }
            }
        }
    }
}
