import CBLAS

/// `C = alpha · op(A) · op(B) + beta · C` through OpenBLAS `cblas_sgemm` (row-major), where `op` transposes
/// when asked.
///
/// All four transpose combinations are used by the layers: forward `X·W`, backward `G·Wᵀ` for the input
/// gradient and `Xᵀ·G` for the weight gradient. `C` must already have the result's shape.
///
/// Products with a narrow side (an output or inner dimension of at most 16, a classifier layer's) run on Halo's own
/// kernels instead (`NarrowGEMM`), which read the tall operand once where OpenBLAS would copy it first.
///
/// Threads come from `pool`, not from OpenBLAS: the product is cut into independent pieces (blocks of rows or
/// columns of C, or ranges of the inner dimension whose partial products are then added, as `GEMMPartition`
/// decides) and each piece is one single-threaded `cblas_sgemm` call on a pool thread. OpenBLAS's own workers spin
/// in `sched_yield` for a while after every call and then compete with the pool's SpMM and elementwise kernels for
/// the same cores (measured on Coauthor-Physics with 2 threads: 28 % of all CPU samples in that spin loop, epoch
/// 110 ms → 81 ms without it), so Halo keeps OpenBLAS at one thread (`BLASRuntime.useCallerThreadsOnly()`, done
/// here on the first call) and has one parallel-for for everything. On a one-thread pool too: OpenBLAS's own split
/// of a call would use cores the run was not given, and it cuts each call by the call's shape, so a piece of rows
/// would no longer get the whole product's sums (seen on the Zen kernels: weight gradients formed in pieces on one
/// thread trained another model than the whole ones).
///
/// `rowsPerCall`, when given, cuts each thread's rows further into calls of about that many rows (see
/// `GEMMRowBlocking`, a decision measured per host); products cut by columns or by the inner dimension ignore it.
///
/// `rows`, when given, computes only those rows of C (the others are neither read nor written): the product
/// `op(A)[rows, :] · op(B)`, cut the way the whole product would be (`GEMMPartition` of the full shape), so each
/// row gets the same sums as in the whole product. A weight gradient computed a piece of rows at a time
/// (`WeightGradientPieces`) lets each piece's sum over ranks start while the next is computed.
public func gemm(
    _ a: Matrix, _ b: Matrix, into c: inout Matrix,
    transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1, beta: Float = 0,
    pool: ComputePool = .serial, rowsPerCall: Int? = nil, rows outputRows: Range<Int>? = nil
) {
    let (fullM, k) = transposeA ? (a.cols, a.rows) : (a.rows, a.cols)
    let (kb, n) = transposeB ? (b.cols, b.rows) : (b.rows, b.cols)
    precondition(k == kb, "gemm inner dimensions differ: op(A) is \(fullM)×\(k), op(B) is \(kb)×\(n)")
    precondition(c.rows == fullM && c.cols == n, "gemm output is \(c.rows)×\(c.cols), expected \(fullM)×\(n)")
    let selected = outputRows ?? 0..<fullM
    precondition(selected.lowerBound >= 0 && selected.upperBound <= fullM,
                 "gemm rows \(selected) outside the output's \(fullM) rows")
    let m = selected.count
    guard m > 0, n > 0 else { return }
    guard k > 0 else {
        // An empty sum: BLAS would leave C alone, but C = beta·C is what the formula says.
        if beta != 1 {
            c.storage.withUnsafeMutableBufferPointer { pc in
                for e in (selected.lowerBound * n)..<(selected.upperBound * n) { pc[e] = beta == 0 ? 0 : beta * pc[e] }
            }
        }
        return
    }
    BLASRuntime.useCallerThreadsOnly()
    let operands = GEMMOperands(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                                lda: a.cols, ldb: b.cols, alpha: alpha)
    if NarrowGEMM.handles(m: fullM, n: n, k: k, transposeA: transposeA) {
        let whole = GEMMOperands(m: fullM, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                                 lda: a.cols, ldb: b.cols, alpha: alpha)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                c.storage.withUnsafeMutableBufferPointer { pc in
                    NarrowGEMM.multiply(pa.baseAddress!, pb.baseAddress!, operands: whole, rows: selected, beta: beta,
                                        into: pc.baseAddress!, pool: pool)
                }
            }
        }
        return
    }
    let partition = GEMMPartition.choose(m: fullM, n: n, k: k, threads: pool.threads)
    // Row r of op(A) starts r elements into A when A is transposed (a column of A), r rows into it otherwise.
    let firstRowOffset = selected.lowerBound * (transposeA ? 1 : a.cols)
    a.storage.withUnsafeBufferPointer { pa in
        b.storage.withUnsafeBufferPointer { pb in
            c.storage.withUnsafeMutableBufferPointer { pc in
                let pa = pa.baseAddress! + firstRowOffset, pb = pb.baseAddress!
                let pc = pc.baseAddress! + selected.lowerBound * n
                switch partition {
                case .rows:
                    // Cuts between threads and calls lie on OpenBLAS's row blocks of the whole product
                    // (`GEMMPartition.rowQuantum`), so they do not change any row's sums.
                    let threads = min(pool.threads, max(1, m / GEMMPartition.minimumBlock))
                    let chunks = GEMMPartition.alignedCuts(of: selected, pieces: threads)
                    pool.forEachChunk(of: chunks.count) { indices in
                        for rows in indices.map({ chunks[$0] }) where !rows.isEmpty {
                            // Calls of about `rowsPerCall` rows, as equal as the row blocks allow: no short last call
                            // repacking op(B) for a few rows.
                            let step = max(1, rowsPerCall ?? rows.count)
                            for call in GEMMPartition.alignedCuts(of: rows, pieces: (rows.count + step - 1) / step)
                            where !call.isEmpty {
                                let relative = (call.lowerBound - selected.lowerBound)..<(call.upperBound - selected.lowerBound)
                                operands.multiply(pa, pb, rows: relative, columns: 0..<n, inner: 0..<k,
                                                  beta: beta, into: pc, ldc: n)
                            }
                        }
                    }
                case .columns:
                    pool.forEachChunk(of: n, grain: GEMMPartition.minimumBlock) { columns in
                        operands.multiply(pa, pb, rows: 0..<m, columns: columns, inner: 0..<k,
                                          beta: beta, into: pc, ldc: n)
                    }
                case .inner:
                    operands.multiplySplittingInner(pa, pb, beta: beta, into: pc, pool: pool)
                }
            }
        }
    }
}

/// `op(A) · op(B)` as a new matrix.
public func matmul(
    _ a: Matrix, _ b: Matrix, transposeA: Bool = false, transposeB: Bool = false, pool: ComputePool = .serial
) -> Matrix {
    // β = 0 overwrites every element (and an empty inner dimension zero-fills), so no zero-fill first.
    var c = Matrix.uninitialized(rows: transposeA ? a.cols : a.rows, cols: transposeB ? b.rows : b.cols)
    gemm(a, b, into: &c, transposeA: transposeA, transposeB: transposeB, pool: pool)
    return c
}
