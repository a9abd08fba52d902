/// `c += aᵀ · g` where `g` is mostly zeros, such as the gradient behind a ReLU and dropout: the weight gradient
/// of a hidden layer. GEMM when `g` is too dense for skipping its zeros to pay.
///
/// Measured by `halo microbench` on Amazon-Photo's first-layer shape (a 7650 × 745, g 7650 × 256, 2 threads),
/// listing included: 2.2 ms against OpenBLAS's 7.3 ms with 5 % of g non-zero (what training sees after its first
/// epochs), 4.9 against 7.4 ms at 25 %, 7.6 against 7.4 ms at 50 %, hence `maximumDensity`. On a hidden layer's
/// shape (a 7650 × 256): 0.9 against 2.8 ms at 5 %.
public func accumulateTransposedProduct(_ a: Matrix, _ g: Matrix, into c: inout Matrix, pool: ComputePool = .serial) {
    precondition(a.rows == g.rows, "aᵀ·g: a has \(a.rows) rows, g has \(g.rows)")
    if let lists = BlockColumnLists(g, maximumDensity: SparseGradientProduct.maximumDensity, pool: pool) {
        accumulateTransposedProduct(a, lists, into: &c, pool: pool)
    } else {
        gemm(a, g, into: &c, transposeA: true, beta: 1, pool: pool)
    }
}

/// Tuning of `accumulateTransposedProduct` with a mostly-zero right-hand side.
public enum SparseGradientProduct {
    /// The densest `g` the list-based product is used for (break-even with GEMM is near 50 %).
    public static let maximumDensity = 0.4
}

/// `c += aᵀ · g` with g's non-zeros listed (`BlockColumnLists`).
///
/// Each thread takes 64-column tiles of `a` (of `c`'s rows). For one tile it keeps the sums for all of g's columns
/// (`g.cols` × 64 floats, in L2) and walks the row blocks: it packs the block's 128 × 64 part of `a` into an
/// aligned 32 KiB buffer (A's rows start anywhere, and loads that straddle cache lines ran the kernel at two
/// thirds of the packed speed), then, for every column j, adds `g[r, j] · a[r, tile]` over the list of (b, j) into
/// four registers, alternating between two sets of four so consecutive multiply-adds do not wait on each other.
/// The order of the additions depends only on the shapes, so the result is the same for any thread count.
public func accumulateTransposedProduct(
    _ a: Matrix, _ g: BlockColumnLists, into c: inout Matrix, pool: ComputePool = .serial
) {
    precondition(a.rows == g.rows, "aᵀ·g: a has \(a.rows) rows, g has \(g.rows)")
    precondition(c.rows == a.cols && c.cols == g.cols, "aᵀ·g: output is \(c.rows)×\(c.cols), expected \(a.cols)×\(g.cols)")
    let depth = a.cols, width = g.cols, rows = a.rows
    guard depth > 0, width > 0, g.nonZeroCount > 0 else { return }
    let tileWidth = BlockColumnLists.packedRowStride, blockRows = BlockColumnLists.blockRows
    let tiles = (depth + tileWidth - 1) / tileWidth, blocks = g.blockCount
    a.storage.withUnsafeBufferPointer { aStorage in
        g.starts.withUnsafeBufferPointer { startStorage in
            g.rowOffsets.withUnsafeBufferPointer { offsetStorage in
                g.values.withUnsafeBufferPointer { valueStorage in
                    c.storage.withUnsafeMutableBufferPointer { cStorage in
                        let ap = aStorage.baseAddress!, sp = startStorage.baseAddress!
                        let op = offsetStorage.baseAddress!, vp = valueStorage.baseAddress!, cp = cStorage.baseAddress!
                        pool.forEachChunk(of: tiles) { tileRange in
                            let packed = UnsafeMutableRawPointer.allocate(byteCount: blockRows * tileWidth * 4, alignment: 64)
                                .bindMemory(to: Float.self, capacity: blockRows * tileWidth)
                            let sums = UnsafeMutableRawPointer.allocate(byteCount: width * tileWidth * 4, alignment: 64)
                                .bindMemory(to: Float.self, capacity: width * tileWidth)
                            defer {
                                packed.deallocate()
                                sums.deallocate()
                            }
                            for tile in tileRange {
                                let firstColumn = tile * tileWidth, columns = min(tileWidth, depth - firstColumn)
                                sums.initialize(repeating: 0, count: width * tileWidth)
                                for b in 0..<blocks {
                                    let firstRow = b * blockRows
                                    packTile(of: ap, stride: depth, rows: firstRow..<min(rows, firstRow + blockRows),
                                             firstColumn: firstColumn, columns: columns, into: packed)
                                    let listStarts = sp + b * width
                                    for j in 0..<width {
                                        let first = listStarts[j], end = listStarts[j + 1]
                                        if first < end {
                                            addListedRows(packed, offsets: op, values: vp, entries: first..<end, into: sums + j * tileWidth)
                                        }
                                    }
                                }
                                for t in 0..<columns {
                                    let out = cp + (firstColumn + t) * width
                                    for j in 0..<width { out[j] += sums[j * tileWidth + t] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Copies columns `firstColumn ..< firstColumn + columns` of `rows` into consecutive 64-float rows at `packed`,
/// zero-filling a narrower last tile's remaining columns.
@inline(__always)
private func packTile(
    of a: UnsafePointer<Float>, stride: Int, rows: Range<Int>, firstColumn: Int, columns: Int,
    into packed: UnsafeMutablePointer<Float>
) {
    let tileWidth = BlockColumnLists.packedRowStride
    for r in rows {
        let source = a + r * stride + firstColumn, target = packed + (r - rows.lowerBound) * tileWidth
        if columns == tileWidth {
            storeVector(loadVector(source), target)
            storeVector(loadVector(source + 16), target + 16)
            storeVector(loadVector(source + 32), target + 32)
            storeVector(loadVector(source + 48), target + 48)
        } else {
            var t = 0
            while t + 16 <= columns {
                storeVector(loadVector(source + t), target + t)
                t += 16
            }
            while t < columns {
                target[t] = source[t]
                t += 1
            }
            while t < tileWidth {
                target[t] = 0
                t += 1
            }
        }
    }
}

/// `sum[0..<64] += Σ values[e] · packed[offsets[e] ..< offsets[e] + 64]` over `entries`.
@inline(__always)
private func addListedRows(
    _ packed: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int32>, values: UnsafePointer<Float>,
    entries: Range<Int>, into sum: UnsafeMutablePointer<Float>
) {
    var a0 = loadVector(sum), a1 = loadVector(sum + 16), a2 = loadVector(sum + 32), a3 = loadVector(sum + 48)
    var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
    var e = entries.lowerBound
    while e + 1 < entries.upperBound {
        let p = packed + Int(offsets[e]), q = packed + Int(offsets[e + 1])
        let u = SIMD16<Float>(repeating: values[e]), v = SIMD16<Float>(repeating: values[e + 1])
        a0 = a0.addingProduct(u, loadVector(p))
        a1 = a1.addingProduct(u, loadVector(p + 16))
        a2 = a2.addingProduct(u, loadVector(p + 32))
        a3 = a3.addingProduct(u, loadVector(p + 48))
        b0 = b0.addingProduct(v, loadVector(q))
        b1 = b1.addingProduct(v, loadVector(q + 16))
        b2 = b2.addingProduct(v, loadVector(q + 32))
        b3 = b3.addingProduct(v, loadVector(q + 48))
        e += 2
    }
    if e < entries.upperBound {
        let p = packed + Int(offsets[e]), u = SIMD16<Float>(repeating: values[e])
        a0 = a0.addingProduct(u, loadVector(p))
        a1 = a1.addingProduct(u, loadVector(p + 16))
        a2 = a2.addingProduct(u, loadVector(p + 32))
        a3 = a3.addingProduct(u, loadVector(p + 48))
    }
    storeVector(a0 + b0, sum)
    storeVector(a1 + b1, sum + 16)
    storeVector(a2 + b2, sum + 32)
    storeVector(a3 + b3, sum + 48)
}
