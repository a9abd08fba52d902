/// Products with a `BinaryMatrix` by table lookup.
///
/// Both directions work on 64-column slices of the dense operand (four 16-lane registers) and on blocks of eight
/// code groups, whose 16-entry tables fill 32 KiB, so the tables read in the inner loop stay in L1 while the
/// output rows stream through it. Two interleaved register sets halve the addition dependency chains.
///
/// Measured by `halo microbench` on Amazon-Photo's features (7650 × 745, 35% non-zero) at width 256 with 2
/// threads, over several runs (this machine's speed varies with its neighbours' load): `B·X` 4.2–6.7 ms against
/// 6.1–7.0 ms for OpenBLAS on the dense copy and 7.1–9.3 ms for CSR SpMM; `Bᵀ·X` 5.3–5.7 ms against 6.7–7.6 ms
/// and 11.6–17.5 ms. At best the inner loops run at about one 64-byte load per cycle per core.
///
/// On a Zen 3 (AVX2 only, 32 KiB L1, 512 KiB L2, 2 threads, alternating runs of `halo microbench`): `B·X`
/// 13.8–20.6 ms with cache-line-aligned tables and the row chunk sized to the L2, against 17.0–21.9 ms before
/// (tables at 16-byte alignment, 1024-row chunks); the whole Amazon-Photo epoch with evaluation 32.8–36.4 ms against
/// 38.6–40.7 ms. Still about half the load-port rate, even in a stand-alone copy whose tables all stay in L1
/// (~7 cycles per 256-byte lookup against ~4); not explained.
extension BinaryMatrix {
    /// Output rows one thread finishes slice by slice before moving on. Their 64-column slices and their codes
    /// (256 + `groups` bytes a row) take at most a quarter of the core's L2, so they stay there while every block of
    /// tables passes over them, beside the tables' own traffic. 1024 rows (443 KiB on Amazon-Photo) overflowed a
    /// Zen 3's 512 KiB L2: with 256 rows a stand-alone copy of the kernel ran 13 % faster there by the median of
    /// eight interleaved rounds and 31 % by the fastest.
    static func rowChunk(groups: Int, level2Bytes: Int? = CacheSizes.level2Bytes) -> Int {
        let bytesPerRow = 64 * MemoryLayout<Float>.stride + groups
        let rows = (level2Bytes ?? 512 * 1024) / 4 / bytesPerRow
        return max(64, rows / 64 * 64)
    }

    /// `out = B · x`, or `out += B · x` when `accumulate`.
    public func multiply(_ x: Matrix, into out: inout Matrix, accumulate: Bool = false, pool: ComputePool = .serial) {
        precondition(x.rows == cols, "binary product: matrix is \(rows)×\(cols) but dense has \(x.rows) rows")
        precondition(out.rows == rows && out.cols == x.cols,
                     "binary product: output is \(out.rows)×\(out.cols), expected \(rows)×\(x.cols)")
        let width = x.cols
        guard width > 0, rows > 0 else { return }
        if width % 16 != 0 {
            withPaddedWidth(x, &out, accumulate: accumulate) { multiply($0, into: &$1, accumulate: true, pool: pool) }
            return
        }
        let groups = columnGroups, rowChunk = Self.rowChunk(groups: groups)
        // tables[slice s][group g][entry m][0..<w]: starts at groups·16·s, entries w floats apart. One allocation for
        // all threads (built in parallel, then read by all), unlike Bᵀ·X, whose tables are per thread and per block.
        let tp = Self.allocateTables(floats: groups * 16 * width)
        defer { tp.deallocate() }
        x.storage.withUnsafeBufferPointer { xs in
            let xp = xs.baseAddress!, sourceRows = cols
            pool.forEachChunk(of: groups, grain: 8) { groupRange in
                for g in groupRange {
                    for c in stride(from: 0, to: width, by: 16) {
                        let s = c / 64 * 64, w = min(64, width - s)
                        storeSubsetSums(
                            of: xp, firstRow: 4 * g, rowCount: sourceRows, width: width, column: c,
                            into: tp + groups * 16 * s + g * 16 * w + (c - s), stride: w)
                    }
                }
            }
        }
        let scale = SIMD16<Float>(repeating: value)
        rowCodes.withUnsafeBufferPointer { cs in
            out.storage.withUnsafeMutableBufferPointer { os in
                let cp = cs.baseAddress!, op = os.baseAddress!
                pool.forEachChunk(of: rows, grain: 64) { range in
                    for chunkStart in stride(from: range.lowerBound, to: range.upperBound, by: rowChunk) {
                        let chunk = chunkStart..<min(chunkStart + rowChunk, range.upperBound)
                        for s in stride(from: 0, to: width, by: 64) {
                            let w = min(64, width - s)
                            for firstGroup in stride(from: 0, to: groups, by: Self.blockGroups) {
                                let count = min(Self.blockGroups, groups - firstGroup)
                                let blockTables = tp + groups * 16 * s + firstGroup * 16 * w
                                let overwrite = firstGroup == 0 && !accumulate
                                for r in chunk {
                                    addTableEntries(
                                        tables: blockTables, width: w, codes: cp + r * groups + firstGroup, count: count,
                                        scale: scale, into: op + r * width + s, overwrite: overwrite)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `out = Bᵀ · x`, or `out += Bᵀ · x` when `accumulate` (a weight gradient `Xᵀ·G`).
    ///
    /// Threads own disjoint (column slice, output rows) parts of the result, so no two write the same element; each
    /// builds the tables of its slices in its own L1-sized buffer (16 stores per four input rows).
    ///
    /// `rows`, when given, forms only those rows of the output (a piece of a weight gradient,
    /// `WeightGradientPieces`), from the same tables as the whole product, so with the same sums.
    public func multiplyTransposed(
        _ x: Matrix, into out: inout Matrix, accumulate: Bool = false, pool: ComputePool = .serial,
        rows requested: Range<Int>? = nil
    ) {
        precondition(x.rows == rows, "binary product ᵀ: matrix is \(rows)×\(cols) but dense has \(x.rows) rows")
        precondition(out.rows == cols && out.cols == x.cols,
                     "binary product ᵀ: output is \(out.rows)×\(out.cols), expected \(cols)×\(x.cols)")
        let selected = requested ?? 0..<cols
        precondition(selected.lowerBound >= 0 && selected.upperBound <= cols,
                     "binary product ᵀ: rows \(selected) outside the output's \(cols)")
        let width = x.cols
        guard width > 0, !selected.isEmpty else { return }
        if width % 16 != 0 {
            withPaddedWidth(x, &out, accumulate: accumulate, rows: selected) {
                multiplyTransposed($0, into: &$1, accumulate: true, pool: pool, rows: selected)
            }
            return
        }
        let groups = rowGroups, blocks = rowBlocks, blockGroups = Self.blockGroups, sourceRows = rows
        let scale = SIMD16<Float>(repeating: value)
        x.storage.withUnsafeBufferPointer { xs in
            columnCodes.withUnsafeBufferPointer { cs in
                out.storage.withUnsafeMutableBufferPointer { os in
                    let xp = xs.baseAddress!, cp = cs.baseAddress!, op = os.baseAddress!, outputRows = cols
                    let pieceRows = selected.count, firstRow = selected.lowerBound
                    // Work units are (64-column slice, range of output rows). Slices first: a thread that owns whole
                    // slices builds only their tables; output rows are split further only when there are fewer
                    // slices than threads, and then the threads of one slice each build its tables.
                    // threads / gcd(threads, slices) ranges per slice make the unit count a multiple of the threads.
                    let slices = (width + 63) / 64
                    var a = pool.threads, b = slices
                    while b != 0 { (a, b) = (b, a % b) }
                    let rowRanges = min(pool.threads / a, max(1, pieceRows / 16))
                    pool.forEachChunk(of: slices * rowRanges) { units in
                        let table = Self.allocateTables(floats: blockGroups * 16 * 64)
                        defer { table.deallocate() }
                        for unit in units {
                            let s = unit / rowRanges * 64, w = min(64, width - s), part = unit % rowRanges
                            let rowRange = (firstRow + pieceRows * part / rowRanges)..<(firstRow + pieceRows * (part + 1) / rowRanges)
                            for block in 0..<blocks {
                                let count = min(blockGroups, groups - block * blockGroups)
                                for i in 0..<count {
                                    for c in stride(from: s, to: s + w, by: 16) {
                                        storeSubsetSums(
                                            of: xp, firstRow: 4 * (block * blockGroups + i), rowCount: sourceRows, width: width,
                                            column: c, into: table + i * 16 * w + (c - s), stride: w)
                                    }
                                }
                                let overwrite = block == 0 && !accumulate
                                for f in rowRange {
                                    addTableEntries(
                                        tables: table, width: w, codes: cp + (block * outputRows + f) * blockGroups,
                                        count: count, scale: scale, into: op + f * width + s, overwrite: overwrite)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Table memory on cache-line boundaries. Every entry is a multiple of 16 floats, so each 64-byte line of an
    /// entry is then one line: with the 16-byte alignment of an ordinary allocation, half the 32-byte loads of an
    /// AVX2 host cross a line and cost two (a stand-alone copy of the kernel on a Zen 3: 15–27 % faster aligned).
    private static func allocateTables(floats: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: floats * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: floats)
    }

    /// Runs `body` on copies of `x` and `out` widened with zero columns to a multiple of 16 (the kernels' register
    /// width), then copies the real columns back. `body` accumulates into the widened output, which starts as
    /// `out` or zeros.
    /// Only `rows` of the output are copied back, when given (the rows `body` forms).
    private func withPaddedWidth(
        _ x: Matrix, _ out: inout Matrix, accumulate: Bool, rows: Range<Int>? = nil,
        _ body: (Matrix, inout Matrix) -> Void
    ) {
        let padded = (x.cols + 15) / 16 * 16
        let wideX = Matrix(rows: x.rows, cols: padded) { i, j in j < x.cols ? x[i, j] : 0 }
        // Read `out` in place (a second reference would make the copy-back below copy all of it first).
        var wideOut = Matrix(rows: out.rows, cols: padded) { i, j in accumulate && j < out.cols ? out[i, j] : 0 }
        body(wideX, &wideOut)
        for i in rows ?? 0..<out.rows {
            for j in 0..<out.cols { out[i, j] = wideOut[i, j] }
        }
    }
}

/// Entry `m` of the table of four rows `r_0…r_3` (rows `firstRow…firstRow+3` of `x`, zero past `rowCount`) at 16
/// columns from `column`: `Σ r_b` over the set bits `b` of `m`, stored at `table + m · stride`.
@inline(__always)
private func storeSubsetSums(
    of x: UnsafePointer<Float>, firstRow: Int, rowCount: Int, width: Int, column: Int,
    into table: UnsafeMutablePointer<Float>, stride: Int
) {
    @inline(__always) func row(_ b: Int) -> SIMD16<Float> {
        firstRow + b < rowCount ? loadVector(x + (firstRow + b) * width + column) : SIMD16<Float>()
    }
    let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3)
    let r01 = r0 + r1, r23 = r2 + r3
    // Written out: an array of the 16 entries would be built on the heap on every call.
    storeVector(SIMD16<Float>(), table); storeVector(r0, table + stride)
    storeVector(r1, table + 2 * stride); storeVector(r01, table + 3 * stride)
    storeVector(r2, table + 4 * stride); storeVector(r0 + r2, table + 5 * stride)
    storeVector(r1 + r2, table + 6 * stride); storeVector(r01 + r2, table + 7 * stride)
    storeVector(r3, table + 8 * stride); storeVector(r0 + r3, table + 9 * stride)
    storeVector(r1 + r3, table + 10 * stride); storeVector(r01 + r3, table + 11 * stride)
    storeVector(r23, table + 12 * stride); storeVector(r0 + r23, table + 13 * stride)
    storeVector(r1 + r23, table + 14 * stride); storeVector(r01 + r23, table + 15 * stride)
}

/// `out[0..<width] = (overwrite ? 0 : out) + scale · Σ_{g < count} table_g[codes[g]]`, where group `g`'s table
/// starts at `tables + g · 16 · width` with entries `width` floats apart. Width 64 runs in four registers (the
/// common case); narrower slices 16 columns at a time.
@inline(__always)
private func addTableEntries(
    tables: UnsafePointer<Float>, width: Int, codes: UnsafePointer<UInt8>, count: Int,
    scale: SIMD16<Float>, into out: UnsafeMutablePointer<Float>, overwrite: Bool
) {
    let groupStride = 16 * width
    if width == 64 {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
        var g = 0
        while g + 2 <= count {
            let e = tables + g * groupStride + Int(codes[g]) * 64
            a0 += loadVector(e); a1 += loadVector(e + 16); a2 += loadVector(e + 32); a3 += loadVector(e + 48)
            let f = tables + (g + 1) * groupStride + Int(codes[g + 1]) * 64
            b0 += loadVector(f); b1 += loadVector(f + 16); b2 += loadVector(f + 32); b3 += loadVector(f + 48)
            g += 2
        }
        if g < count {
            let e = tables + g * groupStride + Int(codes[g]) * 64
            a0 += loadVector(e); a1 += loadVector(e + 16); a2 += loadVector(e + 32); a3 += loadVector(e + 48)
        }
        if overwrite {
            storeVector(scale * (a0 + b0), out); storeVector(scale * (a1 + b1), out + 16)
            storeVector(scale * (a2 + b2), out + 32); storeVector(scale * (a3 + b3), out + 48)
        } else {
            storeVector(loadVector(out).addingProduct(scale, a0 + b0), out)
            storeVector(loadVector(out + 16).addingProduct(scale, a1 + b1), out + 16)
            storeVector(loadVector(out + 32).addingProduct(scale, a2 + b2), out + 32)
            storeVector(loadVector(out + 48).addingProduct(scale, a3 + b3), out + 48)
        }
        return
    }
    for j in stride(from: 0, to: width, by: 16) {
        var a = SIMD16<Float>(), b = SIMD16<Float>()
        var g = 0
        while g + 2 <= count {
            a += loadVector(tables + g * groupStride + Int(codes[g]) * width + j)
            b += loadVector(tables + (g + 1) * groupStride + Int(codes[g + 1]) * width + j)
            g += 2
        }
        if g < count { a += loadVector(tables + g * groupStride + Int(codes[g]) * width + j) }
        storeVector(overwrite ? scale * (a + b) : loadVector(out + j).addingProduct(scale, a + b), out + j)
    }
}
