import CBLAS

/// `C = alpha · op(A) · op(B) + beta · C` through OpenBLAS `cblas_sgemm` (row-major), where `op` transposes
/// when asked.
///
/// All four transpose combinations are used by the layers: forward `X·W`, backward `G·Wᵀ` for the input
/// gradient and `Xᵀ·G` for the weight gradient. `C` must already have the result's shape.
public func gemm(
    _ a: Matrix, _ b: Matrix, into c: inout Matrix,
    transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1, beta: Float = 0
) {
    let (m, k) = transposeA ? (a.cols, a.rows) : (a.rows, a.cols)
    let (kb, n) = transposeB ? (b.cols, b.rows) : (b.rows, b.cols)
    precondition(k == kb, "gemm inner dimensions differ: op(A) is \(m)×\(k), op(B) is \(kb)×\(n)")
    precondition(c.rows == m && c.cols == n, "gemm output is \(c.rows)×\(c.cols), expected \(m)×\(n)")
    guard m > 0, n > 0 else { return }
    guard k > 0 else {
        // An empty sum: BLAS would leave C alone, but C = beta·C is what the formula says.
        if beta == 0 { c.zero() } else if beta != 1 { scale(&c, by: beta) }
        return
    }
    a.storage.withUnsafeBufferPointer { pa in
        b.storage.withUnsafeBufferPointer { pb in
            c.storage.withUnsafeMutableBufferPointer { pc in
                cblas_sgemm(
                    CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k),
                    alpha, pa.baseAddress, Int32(a.cols),
                    pb.baseAddress, Int32(b.cols),
                    beta, pc.baseAddress, Int32(n))
            }
        }
    }
}

/// `op(A) · op(B)` as a new matrix.
public func matmul(_ a: Matrix, _ b: Matrix, transposeA: Bool = false, transposeB: Bool = false) -> Matrix {
    var c = Matrix(rows: transposeA ? a.cols : a.rows, cols: transposeB ? b.rows : b.cols)
    gemm(a, b, into: &c, transposeA: transposeA, transposeB: transposeB)
    return c
}
