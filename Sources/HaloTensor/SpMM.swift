/// Sparse × dense products: the aggregation step of every graph layer and the first layer on sparse features.
///
/// The kernel walks one output row at a time and keeps a 128- or 64-float slice of it in 16-lane registers while
/// it streams the row's non-zeros, so each output element is written once and each input row slice is read once per
/// non-zero — the memory-bound optimum for CSR. Rows are split across threads by non-zero count.
extension SparseMatrix {
    /// `out = self · x` (or `out += self · x` when `accumulate`), for the sparse rows `rowRange` only.
    ///
    /// Sparse row `r` is written to output row `outputRow + (r − rowRange.lowerBound)`; by default output rows line
    /// up with sparse rows. Restricting the rows lets a layer aggregate central nodes while marginal-node messages
    /// are still in flight, and compute the halo part of a backward product into its own small matrix.
    ///
    /// `columns` restricts the product to those columns of `x`, written to the output's columns from
    /// `outputColumn` on (by default all of `x`'s, at column 0): a layer evaluated in column blocks
    /// (`ColumnBlocks`) aggregates one block at a time without copying it out or back.
    public func multiply(
        _ x: Matrix, columns columnRange: Range<Int>? = nil, into out: inout Matrix, rows rowRange: Range<Int>? = nil,
        outputRow: Int? = nil, outputColumn: Int = 0, accumulate: Bool = false, pool: ComputePool = .serial
    ) {
        let range = rowRange ?? 0..<rows
        let outBase = outputRow ?? range.lowerBound
        let inputColumns = columnRange ?? 0..<x.cols
        let width = inputColumns.count
        precondition(x.rows == cols, "SpMM: sparse is \(rows)×\(cols) but dense has \(x.rows) rows")
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "SpMM: row range \(range) outside 0..<\(rows)")
        precondition(inputColumns.lowerBound >= 0 && inputColumns.upperBound <= x.cols,
                     "SpMM: columns \(inputColumns) outside the dense matrix's 0..<\(x.cols)")
        precondition(outputColumn >= 0 && outputColumn + width <= out.cols && outBase >= 0 && outBase + range.count <= out.rows,
                     "SpMM: output is \(out.rows)×\(out.cols), rows \(outBase)..<\(outBase + range.count) and columns \(outputColumn)..<\(outputColumn + width) needed")
        let xStride = x.cols, outStride = out.cols
        guard width > 0, !range.isEmpty else { return }
        rowPointers.withUnsafeBufferPointer { rp in
            columnIndices.withUnsafeBufferPointer { ci in
                values.withUnsafeBufferPointer { va in
                    x.storage.withUnsafeBufferPointer { xs in
                        out.storage.withUnsafeMutableBufferPointer { os in
                            let rpp = rp.baseAddress!, cip = ci.baseAddress!, vap = va.baseAddress!
                            let xp = xs.baseAddress! + inputColumns.lowerBound, op = os.baseAddress! + outputColumn
                            let first = range.lowerBound
                            pool.forEachBalancedChunk(of: range.count, prefixCost: { rpp[first + $0] + $0 }) { chunk in
                                for r in (first + chunk.lowerBound)..<(first + chunk.upperBound) {
                                    spmmRow(
                                        out: op + (outBase + r - first) * outStride, x: xp, xStride: xStride, width: width,
                                        columns: cip + rpp[r], values: vap + rpp[r], count: rpp[r + 1] - rpp[r],
                                        accumulate: accumulate)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `self · x` as a new matrix.
    public func multiplied(by x: Matrix, pool: ComputePool = .serial) -> Matrix {
        var out = Matrix(rows: rows, cols: x.cols)
        multiply(x, into: &out, pool: pool)
        return out
    }
}

/// One output row: `out[0..<width] (+)= Σ_e values[e] · x[columns[e], 0..<width]`, where `x`'s rows are
/// `xStride` floats apart.
@inline(__always)
func spmmRow(
    out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, xStride: Int, width: Int,
    columns: UnsafePointer<Int32>, values: UnsafePointer<Float>, count: Int, accumulate: Bool
) {
    var j = 0
    // 128 columns at a time in eight registers where the row is that wide: more independent gathers in flight
    // per non-zero (Coauthor-Physics operator in locality order, width 256, 2 threads, two alternating series of
    // `halo microbench`: 5.4 → 5.0 ms and 6.1 → 5.3 ms). Written out rather than generic: a SIMD64 version was
    // not compiled into registers (100× slower). Prefetching the row four non-zeros ahead (`__builtin_prefetch` on
    // its eight lines) gained nothing: Coauthor-Physics, 2 threads, six alternating runs, medians 21.1 against
    // 18.7 ms for the aggregation and 12.2 against 9.8 ms for the sparse features' X·W (Zen 4, 2026-12-07).
    while j + 128 <= width {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var a4 = SIMD16<Float>(), a5 = SIMD16<Float>(), a6 = SIMD16<Float>(), a7 = SIMD16<Float>()
        if accumulate {
            a0 = loadVector(out + j); a1 = loadVector(out + j + 16); a2 = loadVector(out + j + 32)
            a3 = loadVector(out + j + 48); a4 = loadVector(out + j + 64); a5 = loadVector(out + j + 80)
            a6 = loadVector(out + j + 96); a7 = loadVector(out + j + 112)
        }
        for e in 0..<count {
            let v = SIMD16<Float>(repeating: values[e])
            let src = x + Int(columns[e]) * xStride + j
            a0 = a0.addingProduct(v, loadVector(src)); a1 = a1.addingProduct(v, loadVector(src + 16))
            a2 = a2.addingProduct(v, loadVector(src + 32)); a3 = a3.addingProduct(v, loadVector(src + 48))
            a4 = a4.addingProduct(v, loadVector(src + 64)); a5 = a5.addingProduct(v, loadVector(src + 80))
            a6 = a6.addingProduct(v, loadVector(src + 96)); a7 = a7.addingProduct(v, loadVector(src + 112))
        }
        storeVector(a0, out + j); storeVector(a1, out + j + 16); storeVector(a2, out + j + 32)
        storeVector(a3, out + j + 48); storeVector(a4, out + j + 64); storeVector(a5, out + j + 80)
        storeVector(a6, out + j + 96); storeVector(a7, out + j + 112)
        j += 128
    }
    if j + 64 <= width {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        if accumulate {
            a0 = loadVector(out + j); a1 = loadVector(out + j + 16)
            a2 = loadVector(out + j + 32); a3 = loadVector(out + j + 48)
        }
        for e in 0..<count {
            let v = SIMD16<Float>(repeating: values[e])
            let src = x + Int(columns[e]) * xStride + j
            a0 = a0.addingProduct(v, loadVector(src))
            a1 = a1.addingProduct(v, loadVector(src + 16))
            a2 = a2.addingProduct(v, loadVector(src + 32))
            a3 = a3.addingProduct(v, loadVector(src + 48))
        }
        storeVector(a0, out + j); storeVector(a1, out + j + 16)
        storeVector(a2, out + j + 32); storeVector(a3, out + j + 48)
        j += 64
    }
    // Then one 16-, 8- or 4-lane register at a time (narrow outputs such as class logits), then scalars.
    while j + 16 <= width {
        spmmColumns(SIMD16<Float>.self, out: out, x: x, xStride: xStride, at: j,
                    columns: columns, values: values, count: count, accumulate: accumulate)
        j += 16
    }
    if j + 8 <= width {
        spmmColumns(SIMD8<Float>.self, out: out, x: x, xStride: xStride, at: j,
                    columns: columns, values: values, count: count, accumulate: accumulate)
        j += 8
    }
    if j + 4 <= width {
        spmmColumns(SIMD4<Float>.self, out: out, x: x, xStride: xStride, at: j,
                    columns: columns, values: values, count: count, accumulate: accumulate)
        j += 4
    }
    while j < width {
        var a: Float = accumulate ? out[j] : 0
        for e in 0..<count { a += values[e] * x[Int(columns[e]) * xStride + j] }
        out[j] = a
        j += 1
    }
}

/// Columns `j ..< j + V.scalarCount` of one output row, accumulated in a single register.
@inline(__always)
private func spmmColumns<V: SIMD>(
    _: V.Type, out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, xStride: Int, at j: Int,
    columns: UnsafePointer<Int32>, values: UnsafePointer<Float>, count: Int, accumulate: Bool
) where V.Scalar == Float {
    var a = accumulate ? UnsafeRawPointer(out + j).loadUnaligned(as: V.self) : V()
    for e in 0..<count {
        let row = UnsafeRawPointer(x + Int(columns[e]) * xStride + j).loadUnaligned(as: V.self)
        a = a.addingProduct(V(repeating: values[e]), row)
    }
    UnsafeMutableRawPointer(out + j).storeBytes(of: a, as: V.self)
}

extension SparseMatrix {
    /// `out (+)= selfᵀ · x` without forming the transpose: each row of `x` is read once, in order, and scattered
    /// into the output rows its non-zeros name.
    ///
    /// The better choice when the output is small enough to stay in cache and `x` is not — a weight gradient
    /// `Xᵀ·G` of sparse input features: gathering rows of `G` from memory for every non-zero (the transpose-then-
    /// SpMM way) reads `nnz · width` floats from DRAM, this reads `G` once. Threads own disjoint column ranges of
    /// `self` (rows of `out`), found per row by binary search in its sorted columns, so no two threads write the
    /// same output row and the result does not depend on the thread count.
    ///
    /// `rows`, when given, forms only those rows of the output (a piece of a weight gradient,
    /// `WeightGradientPieces`); each row's terms are added in the same order as for the whole product.
    public func multiplyTransposed(
        _ x: Matrix, into out: inout Matrix, accumulate: Bool = false, pool: ComputePool = .serial,
        rows outputRows: Range<Int>? = nil
    ) {
        precondition(x.rows == rows, "SpMMᵀ: sparse is \(rows)×\(cols) but dense has \(x.rows) rows")
        precondition(out.rows == cols && out.cols == x.cols, "SpMMᵀ: output is \(out.rows)×\(out.cols), expected \(cols)×\(x.cols)")
        let selected = outputRows ?? 0..<cols
        precondition(selected.lowerBound >= 0 && selected.upperBound <= cols, "SpMMᵀ: rows \(selected) outside the output's \(cols)")
        let width = x.cols
        if !accumulate {
            out.storage.withUnsafeMutableBufferPointer { o in
                guard let base = o.baseAddress else { return }
                (base + selected.lowerBound * width).update(repeating: 0, count: selected.count * width)
            }
        }
        guard width > 0, rows > 0, !selected.isEmpty else { return }
        rowPointers.withUnsafeBufferPointer { rp in
            columnIndices.withUnsafeBufferPointer { ci in
                values.withUnsafeBufferPointer { va in
                    x.storage.withUnsafeBufferPointer { xs in
                        out.storage.withUnsafeMutableBufferPointer { os in
                            let rpp = rp.baseAddress!, cip = ci.baseAddress!, vap = va.baseAddress!
                            let xp = xs.baseAddress!, op = os.baseAddress!, rowCount = rows
                            pool.forEachChunk(of: selected.count, grain: 64) { chunk in
                                let columns = (selected.lowerBound + chunk.lowerBound)..<(selected.lowerBound + chunk.upperBound)
                                let lo = Int32(columns.lowerBound), hi = Int32(columns.upperBound)
                                for r in 0..<rowCount {
                                    var e = rpp[r], end = rpp[r + 1]
                                    if e == end { continue }
                                    if lo > 0 { e = lowerBound(cip, e, end, lo) }
                                    if Int(hi) < cols { end = lowerBound(cip, e, end, hi) }
                                    let src = xp + r * width
                                    for k in e..<end {
                                        axpyRow(op + Int(cip[k]) * width, src, vap[k], width)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// First index in `[from, to)` whose column is ≥ `value` (columns sorted).
@inline(__always)
private func lowerBound(_ columns: UnsafePointer<Int32>, _ from: Int, _ to: Int, _ value: Int32) -> Int {
    var lo = from, hi = to
    while lo < hi {
        let mid = (lo + hi) >> 1
        if columns[mid] < value { lo = mid + 1 } else { hi = mid }
    }
    return lo
}

/// `dst[0..<width] += a · src[0..<width]`.
@inline(__always)
private func axpyRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ a: Float, _ width: Int) {
    let v = SIMD16<Float>(repeating: a)
    var j = 0
    while j + 16 <= width {
        storeVector(loadVector(dst + j).addingProduct(v, loadVector(src + j)), dst + j)
        j += 16
    }
    while j < width {
        dst[j] += a * src[j]
        j += 1
    }
}
