/// Halo's own kernels for products with one narrow side: an output of at most `maximumWidth` columns (a classifier
/// layer's `H·W` and its weight gradient `Hᵀ·G`, n = classes) or an inner dimension of at most `maximumWidth`
/// (the input gradient `G·Wᵀ` behind it, k = classes).
///
/// OpenBLAS packs both operands of every call into panels before its micro-kernel runs. With n or k this small the
/// micro-kernel does almost nothing, so a call is mostly the copy of the tall operand: in a training run of GCN-2 on
/// Amazon-Photo (8 classes) on an AVX2 Zen 3, 11 % of all CPU samples were OpenBLAS's kernel, packing and β-scaling
/// on these shapes. Here the tall operand is read once, in place, and only the narrow one is copied (padded to whole
/// vectors), so a product costs one pass over the tall operand.
///
/// Every output element is a sum in a fixed order that depends on the product's shape and the pool's thread count,
/// never on `rows` (a selection computes the same sums as the whole product, as `gemm` promises).
enum NarrowGEMM {
    /// The widest output (or inner dimension) these kernels take.
    static let maximumWidth = 16
    /// The most floats a padded copy of the narrow operand (and a thread's partial sums of a transposed product)
    /// may hold: larger ones would not stay in cache while the tall operand streams past.
    static let maximumPackedElements = 1 << 16
    /// Columns per vector: eight lanes (one AVX2 register, half an AVX-512 one), so an 8-class output is one
    /// vector per row and no host pads it further.
    typealias Lanes = SIMD8<Float>
    /// Rows of the tall operand multiplied together: their eight accumulators are independent chains of fused
    /// multiply-adds, enough to hide the instruction's latency on two FMA pipes, and each vector of the narrow
    /// operand is loaded once for all of them.
    static let rowsTogether = 8

    /// Whether `gemm` should use these kernels for op(A) (m × k) · op(B) (k × n).
    static func handles(m: Int, n: Int, k: Int, transposeA: Bool) -> Bool {
        if transposeA {
            // Aᵀ·B: the sum runs over A's rows; C (m × n) is kept per thread while they stream.
            return n <= maximumWidth && m * paddedWidth(n) <= maximumPackedElements
        }
        return (n <= maximumWidth || k <= maximumWidth) && k * paddedWidth(n) <= maximumPackedElements
    }

    /// n rounded up to whole vectors.
    static func paddedWidth(_ n: Int) -> Int { (n + Lanes.scalarCount - 1) / Lanes.scalarCount * Lanes.scalarCount }

    /// `C[rows] = alpha · op(A)[rows] · op(B) + beta · C[rows]` (β = 0: C is not read), where `a`, `b` and `c`
    /// point at the whole matrices. `handles` must hold.
    static func multiply(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, operands o: GEMMOperands,
        rows: Range<Int>, beta: Float, into c: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        let packedB = pack(b, o)
        packedB.withUnsafeBufferPointer { pb in
            let b = pb.baseAddress!
            if o.transposeA {
                transposedProduct(a, b, o, rows: rows, beta: beta, into: c, pool: pool)
            } else {
                pool.forEachChunk(of: rows.count, grain: 64) { chunk in
                    rowProduct(a, b, o, rows: (rows.lowerBound + chunk.lowerBound)..<(rows.lowerBound + chunk.upperBound),
                               beta: beta, into: c)
                }
            }
        }
    }

    /// op(B) as k rows of `paddedWidth(n)` floats, zeros after column n.
    static func pack(_ b: UnsafePointer<Float>, _ o: GEMMOperands) -> [Float] {
        let width = paddedWidth(o.n)
        var packed = [Float](repeating: 0, count: o.k * width)
        packed.withUnsafeMutableBufferPointer { p in
            for i in 0..<o.k {
                for j in 0..<o.n { p[i * width + j] = o.transposeB ? b[j * o.ldb + i] : b[i * o.ldb + j] }
            }
        }
        return packed
    }

    /// Rows of C from rows of A (not transposed): for each vector of columns, `rowsTogether` rows' sums over the k
    /// inner elements at once, each a broadcast element of A times a row of the packed B.
    private static func rowProduct(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ o: GEMMOperands,
        rows: Range<Int>, beta: Float, into c: UnsafeMutablePointer<Float>
    ) {
        let width = paddedWidth(o.n), k = o.k, lda = o.lda
        var r = rows.lowerBound
        while r + rowsTogether <= rows.upperBound {
            let a0 = a + r * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda
            let a4 = a3 + lda, a5 = a4 + lda, a6 = a5 + lda, a7 = a6 + lda
            for column in stride(from: 0, to: width, by: Lanes.scalarCount) {
                var s0 = Lanes(), s1 = Lanes(), s2 = Lanes(), s3 = Lanes()
                var s4 = Lanes(), s5 = Lanes(), s6 = Lanes(), s7 = Lanes()
                var bRow = b + column
                for i in 0..<k {
                    let bv = load(bRow)
                    s0.addProduct(a0[i], bv); s1.addProduct(a1[i], bv); s2.addProduct(a2[i], bv); s3.addProduct(a3[i], bv)
                    s4.addProduct(a4[i], bv); s5.addProduct(a5[i], bv); s6.addProduct(a6[i], bv); s7.addProduct(a7[i], bv)
                    bRow += width
                }
                let row = c + r * o.n + column
                finish(s0, o, beta, row, column); finish(s1, o, beta, row + o.n, column)
                finish(s2, o, beta, row + 2 * o.n, column); finish(s3, o, beta, row + 3 * o.n, column)
                finish(s4, o, beta, row + 4 * o.n, column); finish(s5, o, beta, row + 5 * o.n, column)
                finish(s6, o, beta, row + 6 * o.n, column); finish(s7, o, beta, row + 7 * o.n, column)
            }
            r += rowsTogether
        }
        // The last few rows one at a time: the same sums in the same order, one chain each.
        while r < rows.upperBound {
            let ar = a + r * lda
            for column in stride(from: 0, to: width, by: Lanes.scalarCount) {
                var s = Lanes()
                var bRow = b + column
                for i in 0..<k {
                    s.addProduct(ar[i], load(bRow))
                    bRow += width
                }
                finish(s, o, beta, c + r * o.n + column, column)
            }
            r += 1
        }
    }

    /// Rows `rows` of C = α·Aᵀ·B + β·C, where A is K × m as stored and the sum runs over its K rows: the rows are cut
    /// into one range per thread (by K and the pool alone), each range's sums go into a partial C of its own, `rowsTogether`
    /// rows of A at a time, and the partials are added in range order.
    private static func transposedProduct(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ o: GEMMOperands,
        rows: Range<Int>, beta: Float, into c: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        let width = paddedWidth(o.n), inner = o.k, selected = rows.count, lda = o.lda, first = rows.lowerBound
        let pieces = max(1, min(pool.threads, inner / 64))
        var partials = [Float](repeating: 0, count: pieces * selected * width)
        partials.withUnsafeMutableBufferPointer { buffer in
            let partial = buffer.baseAddress!
            pool.forEachChunk(of: pieces) { indices in
                for piece in indices {
                    let sums = partial + piece * selected * width
                    var r = inner * piece / pieces
                    let end = inner * (piece + 1) / pieces
                    while r < end {
                        let together = min(rowsTogether, end - r)
                        for column in stride(from: 0, to: width, by: Lanes.scalarCount) {
                            let bRows = b + r * width + column
                            var p = sums + column
                            if together == rowsTogether {
                                let b0 = load(bRows), b1 = load(bRows + width), b2 = load(bRows + 2 * width)
                                let b3 = load(bRows + 3 * width), b4 = load(bRows + 4 * width)
                                let b5 = load(bRows + 5 * width), b6 = load(bRows + 6 * width)
                                let b7 = load(bRows + 7 * width)
                                let a0 = a + r * lda + first, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda
                                let a4 = a3 + lda, a5 = a4 + lda, a6 = a5 + lda, a7 = a6 + lda
                                for i in 0..<selected {
                                    var v = load(p)
                                    v.addProduct(a0[i], b0); v.addProduct(a1[i], b1)
                                    v.addProduct(a2[i], b2); v.addProduct(a3[i], b3)
                                    v.addProduct(a4[i], b4); v.addProduct(a5[i], b5)
                                    v.addProduct(a6[i], b6); v.addProduct(a7[i], b7)
                                    store(v, p)
                                    p += width
                                }
                            } else {
                                for t in 0..<together {
                                    let bt = load(bRows + t * width), at = a + (r + t) * lda + first
                                    p = sums + column
                                    for i in 0..<selected {
                                        var v = load(p)
                                        v.addProduct(at[i], bt)
                                        store(v, p)
                                        p += width
                                    }
                                }
                            }
                        }
                        r += together
                    }
                }
            }
            for s in 0..<selected {
                let out = c + (first + s) * o.n
                for j in 0..<o.n {
                    var sum: Float = 0
                    for piece in 0..<pieces { sum += partial[(piece * selected + s) * width + j] }
                    out[j] = beta == 0 ? o.alpha * sum : o.alpha * sum + beta * out[j]
                }
            }
        }
    }

    /// Writes the real columns of one vector of sums into C at `out` (column `column` of its row):
    /// `α·sum + β·C` (C unread when β = 0).
    @inline(__always)
    private static func finish(_ sum: Lanes, _ o: GEMMOperands, _ beta: Float, _ out: UnsafeMutablePointer<Float>, _ column: Int) {
        let count = min(Lanes.scalarCount, o.n - column)
        if count == Lanes.scalarCount {
            let scaled = o.alpha * sum
            store(beta == 0 ? scaled : scaled + beta * load(out), out)
        } else {
            for j in 0..<count { out[j] = beta == 0 ? o.alpha * sum[j] : o.alpha * sum[j] + beta * out[j] }
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

    @inline(__always)
    private static func load(_ p: UnsafeMutablePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

    @inline(__always)
    private static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
    }
}

private extension SIMD8 where Scalar == Float {
    /// `self += a · b` as one fused multiply-add per lane.
    @inline(__always)
    mutating func addProduct(_ a: Float, _ b: Self) { self = self.addingProduct(Self(repeating: a), b) }
}
