/// `c += aᵀ · g`, the weight gradient of a layer with input `a` and output gradient `g`, by listing g's non-zeros
/// when `listed` holds them (`BlockColumnLists.ifWorthwhile`), by GEMM otherwise.
///
/// GEMM also takes inputs narrower than one 64-column tile: the listed product would pad them to 64 columns and
/// run them on one thread, and such products are small anyway.
///
/// Where g is zero the listed product skips the term, so a non-finite element of `a` contributes only through g's
/// non-zeros, where GEMM's `0 · ∞` would make the sum NaN. Layer inputs are validated finite features or
/// activations computed from them, and a non-finite activation reaches the loss regardless.
///
/// `rows`, when given, adds only those rows of c (columns of a): one piece of a weight gradient computed in pieces
/// (`WeightGradientPieces`). It must start at a multiple of `BlockColumnLists.tileWidth`, so the listed product's
/// tiles are the whole product's, and a row's sums are the same whichever pieces it is computed in.
public func addTransposedProduct(
    _ a: Matrix, _ g: Matrix, listed: BlockColumnLists?, into c: inout Matrix, pool: ComputePool = .serial,
    rows: Range<Int>? = nil
) {
    precondition(a.rows == g.rows, "aᵀ·g: a has \(a.rows) rows, g has \(g.rows)")
    if let listed, a.cols >= BlockColumnLists.tileWidth {
        precondition(listed.rows == g.rows && listed.cols == g.cols, "aᵀ·g: the lists are not g's")
        listed.accumulateTransposedProduct(of: a, into: &c, pool: pool, rows: rows)
    } else {
        gemm(a, g, into: &c, transposeA: true, beta: 1, pool: pool, rows: rows)
    }
}

/// `c += aᵀ · g`, listing g's non-zeros first when that pays.
public func addTransposedProduct(_ a: Matrix, _ g: Matrix, into c: inout Matrix, pool: ComputePool = .serial) {
    let listed = a.cols >= BlockColumnLists.tileWidth ? BlockColumnLists.ifWorthwhile(g, pool: pool) : nil
    addTransposedProduct(a, g, listed: listed, into: &c, pool: pool)
}

extension BlockColumnLists {
    /// Columns of `a` one pass of the product covers: four 16-lane registers per accumulator set.
    public static let tileWidth = 64

    /// `c += aᵀ · G`, G being the listed matrix: only G's non-zeros are multiplied.
    ///
    /// Work is cut into 64-column tiles of `a` (rows of c), and, when there are fewer tiles than threads, also into
    /// ranges of G's columns. For one unit a thread keeps 64 sums per column of G (in L2) and walks the row blocks:
    /// it packs the block's 128 × 64 part of `a` into an aligned 32 KiB buffer (a's rows start anywhere, and loads
    /// straddling cache lines ran the kernel at two thirds of the packed speed), then, for every column j, adds
    /// `G[r, j] · a[r, tile]` over the list of (block, j) into four registers, alternating between two sets of four
    /// so that consecutive multiply-adds do not wait on each other. The order of the additions depends on the shapes
    /// and on G's pattern, never on the thread count.
    ///
    /// Measured by `halo microbench` on Amazon-Photo's first-layer shape (a 7650 × 745, G 7650 × 256, 2 threads),
    /// listing included, over eight runs: 1.9–2.4 ms against OpenBLAS's 7.0–8.0 ms with 5 % of G non-zero,
    /// 4.4–5.1 against 6.9–8.1 ms at 25 %, 7.4–8.3 against 7.3–7.9 ms at 50 %; on a hidden layer's shape
    /// (a 7650 × 256) 0.8–1.1 against 2.6–3.2 ms at 5 %.
    ///
    /// `rows`, when given, adds only those rows of c: whole tiles, as it must start at a tile boundary.
    public func accumulateTransposedProduct(
        of a: Matrix, into c: inout Matrix, pool: ComputePool = .serial, rows outputRows: Range<Int>? = nil
    ) {
        precondition(a.rows == rows, "aᵀ·G: a has \(a.rows) rows, G has \(rows)")
        precondition(c.rows == a.cols && c.cols == cols, "aᵀ·G: output is \(c.rows)×\(c.cols), expected \(a.cols)×\(cols)")
        let depth = a.cols, width = cols, rowCount = rows
        let selected = outputRows ?? 0..<depth
        precondition(selected.lowerBound % Self.tileWidth == 0 && selected.lowerBound >= 0 && selected.upperBound <= depth,
                     "aᵀ·G: rows \(selected) must start at a multiple of \(Self.tileWidth) and lie within \(depth)")
        guard !selected.isEmpty, width > 0, nonZeroCount > 0 else { return }
        let tileWidth = Self.tileWidth, blockRows = Self.blockRows, blocks = blockCount
        let firstTile = selected.lowerBound / tileWidth
        let tiles = (selected.count + tileWidth - 1) / tileWidth
        let columnRanges = min(width, max(1, (pool.threads + tiles - 1) / tiles))
        withLists { sp, rp, vp in
            a.storage.withUnsafeBufferPointer { aStorage in
                c.storage.withUnsafeMutableBufferPointer { cStorage in
                    let ap = aStorage.baseAddress!, cp = cStorage.baseAddress!
                    pool.forEachChunk(of: tiles * columnRanges) { units in
                        let packed = UnsafeMutableRawPointer.allocate(byteCount: blockRows * tileWidth * 4, alignment: 64)
                            .bindMemory(to: Float.self, capacity: blockRows * tileWidth)
                        let sums = UnsafeMutableRawPointer.allocate(byteCount: width * tileWidth * 4, alignment: 64)
                            .bindMemory(to: Float.self, capacity: width * tileWidth)
                        defer {
                            packed.deallocate()
                            sums.deallocate()
                        }
                        for unit in units {
                            let tile = firstTile + unit / columnRanges, part = unit % columnRanges
                            let gColumns = (width * part / columnRanges)..<(width * (part + 1) / columnRanges)
                            let firstColumn = tile * tileWidth
                            let columns = min(tileWidth, selected.upperBound - firstColumn)
                            (sums + gColumns.lowerBound * tileWidth).initialize(repeating: 0, count: gColumns.count * tileWidth)
                            for b in 0..<blocks {
                                let firstRow = b * blockRows
                                packTile(of: ap, stride: depth, rows: firstRow..<min(rowCount, firstRow + blockRows),
                                         firstColumn: firstColumn, columns: columns, into: packed)
                                let listStarts = sp + b * width
                                for j in gColumns {
                                    let first = listStarts[j], end = listStarts[j + 1]
                                    if first < end {
                                        addListedRows(packed, rowsInBlock: rp, values: vp, entries: first..<end,
                                                      into: sums + j * tileWidth)
                                    }
                                }
                            }
                            for t in 0..<columns {
                                let out = cp + (firstColumn + t) * width
                                for j in gColumns { out[j] += sums[j * tileWidth + t] }
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
    let tileWidth = BlockColumnLists.tileWidth
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

/// `sum[0..<64] += Σ values[e] · packed row rowsInBlock[e]` over `entries`.
@inline(__always)
private func addListedRows(
    _ packed: UnsafeMutablePointer<Float>, rowsInBlock: UnsafePointer<UInt8>, values: UnsafePointer<Float>,
    entries: Range<Int>, into sum: UnsafeMutablePointer<Float>
) {
    // Packed rows are 64 floats apart.
    @inline(__always) func row(_ e: Int) -> UnsafeMutablePointer<Float> { packed + (Int(rowsInBlock[e]) &<< 6) }
    var a0 = loadVector(sum), a1 = loadVector(sum + 16), a2 = loadVector(sum + 32), a3 = loadVector(sum + 48)
    var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
    var e = entries.lowerBound
    while e + 1 < entries.upperBound {
        let p = row(e), q = row(e + 1)
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
        let p = row(e), u = SIMD16<Float>(repeating: values[e])
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

/// `c = g · wᵀ`, or `c += g · wᵀ` when `accumulate`: a layer's input gradient from its output gradient `g` and
/// weight `w`. From the lists when g's are given and at most `listedBelow` of g is non-zero (this host's
/// break-even, `KernelRates.listedInputGradientBreakEvenDensity`, in a calibrated run), by GEMM otherwise. As with `addTransposedProduct`, the lists skip g's zeros, so a non-finite weight
/// spreads only through g's non-zeros (GEMM: `0 · ∞ = NaN`).
public func multiplyTransposedWeight(
    _ g: Matrix, _ w: Matrix, listed: BlockColumnLists?, into c: inout Matrix, accumulate: Bool = false,
    listedBelow density: Double = BlockColumnLists.worthwhileInputGradientDensity, pool: ComputePool = .serial
) {
    if let listed, listed.density <= density {
        precondition(listed.rows == g.rows && listed.cols == g.cols, "g·wᵀ: the lists are not g's")
        listed.multiply(w.transposed(), into: &c, accumulate: accumulate, pool: pool)
    } else {
        gemm(g, w, into: &c, transposeB: true, beta: accumulate ? 1 : 0, pool: pool)
    }
}

extension BlockColumnLists {
    /// The densest G whose lists also serve the input gradient `G · Wᵀ`. Adding a scaled row of Wᵀ to an output
    /// row per non-zero loads and stores that row each time, so it breaks even with GEMM much earlier than `Aᵀ·G`:
    /// `halo microbench` (2 threads, G nodes × 256, W 256 × 256, transposing W included) measured 0.8 against 2.6 ms
    /// at 5 % and 3.4 against 2.6 ms at 25 % on Amazon-Photo's 7650 rows, 5.7 against 12.2 ms and 21.6 against
    /// 12.2 ms on Coauthor-Physics's 34493: break-even near 18 % and 13 %. The limit keeps a margin below both.
    /// A calibrated run uses this host's break-even instead (`KernelRates.listedInputGradientBreakEvenDensity`).
    public static let worthwhileInputGradientDensity = 0.12

    /// `out = G · b`, or `out += G · b` when `accumulate`, G being the listed matrix: a layer's input gradient
    /// `G · Wᵀ` (with `b = Wᵀ`) from the lists its weight gradient already made.
    ///
    /// Threads take blocks of rows, so each writes only its own rows of `out`. Within a block, column j's list adds
    /// `G[r, j] · b[j, :]` to row r for each of its entries; b's row stays in L1 while the block's output rows (128
    /// of them) stay in L2. A row's terms are added in increasing j whatever the thread count.
    public func multiply(_ b: Matrix, into out: inout Matrix, accumulate: Bool = false, pool: ComputePool = .serial) {
        precondition(b.rows == cols, "G·b: G is \(rows)×\(cols), b has \(b.rows) rows")
        precondition(out.rows == rows && out.cols == b.cols, "G·b: output is \(out.rows)×\(out.cols), expected \(rows)×\(b.cols)")
        let width = b.cols, listCount = cols, rowCount = rows, blockRows = Self.blockRows
        guard width > 0, rowCount > 0 else { return }
        if !accumulate { out.zero() }
        guard nonZeroCount > 0 else { return }
        withLists { sp, rp, vp in
            b.storage.withUnsafeBufferPointer { bStorage in
                out.storage.withUnsafeMutableBufferPointer { outStorage in
                    let bp = bStorage.baseAddress!, op = outStorage.baseAddress!
                    pool.forEachChunk(of: blockCount) { blocks in
                        for block in blocks {
                            let blockOut = op + block * blockRows * width
                            for j in 0..<listCount {
                                let source = bp + j * width
                                for e in sp[block * listCount + j]..<sp[block * listCount + j + 1] {
                                    addScaled(source, by: vp[e], to: blockOut + Int(rp[e]) * width, count: width)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The lists' starts, rows within blocks and values as pointers, for the duration of `body` (non-empty lists
    /// only: both products return early when G has no non-zeros).
    private func withLists<R>(
        _ body: (UnsafePointer<Int>, UnsafePointer<UInt8>, UnsafePointer<Float>) -> R
    ) -> R {
        starts.withUnsafeBufferPointer { s in
            rowsInBlock.withUnsafeBufferPointer { r in
                values.withUnsafeBufferPointer { v in body(s.baseAddress!, r.baseAddress!, v.baseAddress!) }
            }
        }
    }
}

/// `target[0..<count] += scale · source[0..<count]`.
@inline(__always)
private func addScaled(_ source: UnsafePointer<Float>, by scale: Float, to target: UnsafeMutablePointer<Float>, count: Int) {
    let s = SIMD16<Float>(repeating: scale)
    var c = 0
    while c + 16 <= count {
        storeVector(loadVector(target + c).addingProduct(s, loadVector(source + c)), target + c)
        c += 16
    }
    while c < count {
        target[c] = target[c].addingProduct(scale, source[c])
        c += 1
    }
}
