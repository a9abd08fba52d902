import CBLAS

// Row- and element-wise kernels shared by the layers. Each is a single pass over memory, split over rows by the
// caller's pool; none allocates unless it returns a new matrix.

/// `m *= factor`.
public func scale(_ m: inout Matrix, by factor: Float) {
    m.storage.withUnsafeMutableBufferPointer { p in
        for i in p.indices { p[i] *= factor }
    }
}

/// `y += alpha · x` (shapes must match).
public func addScaled(_ x: Matrix, _ alpha: Float = 1, to y: inout Matrix) {
    precondition(x.rows == y.rows && x.cols == y.cols, "addScaled: \(x.rows)×\(x.cols) vs \(y.rows)×\(y.cols)")
    guard !x.isEmpty else { return }
    x.storage.withUnsafeBufferPointer { px in
        y.storage.withUnsafeMutableBufferPointer { py in
            cblas_saxpy(Int32(px.count), alpha, px.baseAddress, 1, py.baseAddress, 1)
        }
    }
}

/// Adds `vector` to every row of `m` (bias).
public func addRowVector(_ vector: [Float], to m: inout Matrix, pool: ComputePool = .serial) {
    precondition(vector.count == m.cols, "row vector has \(vector.count) elements, matrix has \(m.cols) columns")
    let cols = m.cols
    vector.withUnsafeBufferPointer { v in
        m.storage.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!, vb = v.baseAddress!
            pool.forEachChunk(of: m.rows, grain: 256) { rows in
                for r in rows {
                    let row = base + r * cols
                    for j in 0..<cols { row[j] += vb[j] }
                }
            }
        }
    }
}

/// Column sums of `m`, i.e. `1ᵀ·m` (bias gradient), through BLAS `sgemv`.
public func columnSums(_ m: Matrix) -> [Float] {
    var sums = [Float](repeating: 0, count: m.cols)
    guard m.rows > 0, m.cols > 0 else { return sums }
    let ones = [Float](repeating: 1, count: m.rows)
    m.storage.withUnsafeBufferPointer { p in
        ones.withUnsafeBufferPointer { o in
            sums.withUnsafeMutableBufferPointer { s in
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(m.rows), Int32(m.cols), 1,
                            p.baseAddress, Int32(m.cols), o.baseAddress, 1, 0, s.baseAddress, 1)
            }
        }
    }
    return sums
}

/// `m = max(m, 0)` in place.
public func reluInPlace(_ m: inout Matrix, pool: ComputePool = .serial) {
    let cols = m.cols
    m.storage.withUnsafeMutableBufferPointer { p in
        guard let base = p.baseAddress else { return }
        pool.forEachChunk(of: m.rows, grain: 256) { rows in
            rectify(base + rows.lowerBound * cols, count: rows.count * cols)
        }
    }
}

/// `p[0..<count] = max(p, 0)` in place; NaN and −0 stay as they are. Sixteen lanes are blended and stored whole:
/// the plain loop `where p[i] < 0 { p[i] = 0 }` compiles to masked stores, which AMD microcodes (about a third of
/// the samples of the dropout pass that holds an evaluation's ReLU, in a profile of an Amazon-Photo run on a Zen 3).
public func rectify(_ p: UnsafeMutablePointer<Float>, count: Int) {
    let zero = SIMD16<Float>()
    var i = 0
    while i + 16 <= count {
        let v = loadVector(p + i)
        storeVector(v.replacing(with: zero, where: v .< zero), p + i)
        i += 16
    }
    while i < count {
        if p[i] < 0 { p[i] = 0 }
        i += 1
    }
}

/// Zeroes the gradient where the ReLU output was zero: `grad *= (output > 0)`.
public func reluBackwardInPlace(_ grad: inout Matrix, output: Matrix, pool: ComputePool = .serial) {
    precondition(grad.rows == output.rows && grad.cols == output.cols, "relu backward shape mismatch")
    let cols = grad.cols
    output.storage.withUnsafeBufferPointer { o in
        grad.storage.withUnsafeMutableBufferPointer { g in
            let ob = o.baseAddress!, gb = g.baseAddress!
            pool.forEachChunk(of: grad.rows, grain: 256) { rows in
                for i in (rows.lowerBound * cols)..<(rows.upperBound * cols) where ob[i] <= 0 { gb[i] = 0 }
            }
        }
    }
}

/// Copies rows `indices` of `source` into consecutive rows of `destination` starting at `destinationRow`.
/// Used to pack boundary rows into messages and to place received halo rows.
public func gatherRows(
    _ source: Matrix, _ indices: [Int32], into destination: inout Matrix, at destinationRow: Int = 0,
    pool: ComputePool = .serial
) {
    precondition(source.cols == destination.cols, "gatherRows: widths \(source.cols) and \(destination.cols) differ")
    precondition(destinationRow + indices.count <= destination.rows, "gatherRows: destination too small")
    let cols = source.cols
    guard cols > 0 else { return }
    source.storage.withUnsafeBufferPointer { s in
        indices.withUnsafeBufferPointer { idx in
            destination.storage.withUnsafeMutableBufferPointer { d in
                let sb = s.baseAddress!, db = d.baseAddress! + destinationRow * cols, ib = idx.baseAddress!
                pool.forEachChunk(of: indices.count, grain: 512) { rows in
                    for k in rows {
                        precondition(Int(ib[k]) < source.rows, "gatherRows: row \(ib[k]) outside \(source.rows)")
                        (db + k * cols).update(from: sb + Int(ib[k]) * cols, count: cols)
                    }
                }
            }
        }
    }
}

/// Adds consecutive rows of `source` (from `sourceRow`) into rows `indices` of `destination`.
/// Indices must be distinct (each owner row receives one contribution per message).
public func scatterAddRows(
    _ source: Matrix, from sourceRow: Int = 0, count: Int, into destination: inout Matrix, _ indices: [Int32],
    pool: ComputePool = .serial
) {
    precondition(indices.count == count && sourceRow + count <= source.rows, "scatterAddRows: bad row counts")
    precondition(source.cols == destination.cols, "scatterAddRows: widths differ")
    let cols = source.cols
    guard cols > 0 else { return }
    source.storage.withUnsafeBufferPointer { s in
        indices.withUnsafeBufferPointer { idx in
            destination.storage.withUnsafeMutableBufferPointer { d in
                let sb = s.baseAddress! + sourceRow * cols, db = d.baseAddress!, ib = idx.baseAddress!
                pool.forEachChunk(of: count, grain: 512) { rows in
                    for k in rows {
                        let dst = db + Int(ib[k]) * cols, src = sb + k * cols
                        for j in 0..<cols { dst[j] += src[j] }
                    }
                }
            }
        }
    }
}
