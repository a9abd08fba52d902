import HaloTensor

/// Layer normalisation over each row's features, with a learned scale and shift.
///
/// Purely row-local, so it needs no communication and gives the same result on any partitioning.
public final class LayerNorm {
    public let scale: Parameter
    public let shift: Parameter
    public let epsilon: Float
    private var normalized = Matrix(rows: 0, cols: 0)
    private var inverseStd: [Float] = []

    public init(width: Int, name: String, epsilon: Float = 1e-5) {
        scale = Parameter(name: name + ".scale", value: Matrix(rows: 1, cols: width, repeating: 1))
        shift = Parameter(name: name + ".shift", value: Matrix(rows: 1, cols: width))
        self.epsilon = epsilon
    }

    public var parameters: [Parameter] { [scale, shift] }

    /// `y = (x − mean) / sqrt(var + ε) · scale + shift`, row by row, in place.
    public func forward(_ x: inout Matrix, pool: ComputePool) {
        let rows = x.rows, cols = x.cols, eps = epsilon
        normalized.resize(rows: rows, cols: cols)
        inverseStd = [Float](repeating: 0, count: rows)
        guard cols > 0 else { return }
        scale.value.storage.withUnsafeBufferPointer { g in
            shift.value.storage.withUnsafeBufferPointer { b in
                inverseStd.withUnsafeMutableBufferPointer { inv in
                    normalized.storage.withUnsafeMutableBufferPointer { nz in
                        x.storage.withUnsafeMutableBufferPointer { xs in
                            let gb = g.baseAddress!, bb = b.baseAddress!, ib = inv.baseAddress!
                            let nb = nz.baseAddress!, xb = xs.baseAddress!
                            pool.forEachChunk(of: rows, grain: 64) { range in
                                for r in range {
                                    let row = xb + r * cols, nrow = nb + r * cols
                                    var sum: Float = 0
                                    for j in 0..<cols { sum += row[j] }
                                    let mean = sum / Float(cols)
                                    var sq: Float = 0
                                    for j in 0..<cols { let d = row[j] - mean; sq += d * d }
                                    let istd = 1 / (sq / Float(cols) + eps).squareRoot()
                                    ib[r] = istd
                                    for j in 0..<cols {
                                        let n = (row[j] - mean) * istd
                                        nrow[j] = n
                                        row[j] = n * gb[j] + bb[j]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Turns `dL/dy` into `dL/dx` in place and accumulates the parameter gradients.
    public func backward(_ gradient: inout Matrix, pool: ComputePool) {
        let rows = gradient.rows, cols = gradient.cols
        precondition(rows == normalized.rows && cols == normalized.cols, "layer norm backward shape mismatch")
        guard cols > 0, rows > 0 else { return }
        // Parameter gradients: dscale = Σ_rows dy ⊙ x̂, dshift = Σ_rows dy.
        var product = gradient
        product.storage.withUnsafeMutableBufferPointer { p in
            normalized.storage.withUnsafeBufferPointer { n in
                for i in p.indices { p[i] *= n[i] }
            }
        }
        let dScale = columnSums(product), dShift = columnSums(gradient)
        for j in 0..<cols {
            scale.gradient.storage[j] += dScale[j]
            shift.gradient.storage[j] += dShift[j]
        }
        // dx = istd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)), with ĝ = dy ⊙ scale.
        scale.value.storage.withUnsafeBufferPointer { g in
            inverseStd.withUnsafeBufferPointer { inv in
                normalized.storage.withUnsafeBufferPointer { nz in
                    gradient.storage.withUnsafeMutableBufferPointer { gs in
                        let gb = g.baseAddress!, ib = inv.baseAddress!, nb = nz.baseAddress!, db = gs.baseAddress!
                        pool.forEachChunk(of: rows, grain: 64) { range in
                            for r in range {
                                let drow = db + r * cols, nrow = nb + r * cols
                                var meanG: Float = 0, meanGN: Float = 0
                                for j in 0..<cols {
                                    let gh = drow[j] * gb[j]
                                    meanG += gh
                                    meanGN += gh * nrow[j]
                                }
                                meanG /= Float(cols)
                                meanGN /= Float(cols)
                                for j in 0..<cols {
                                    drow[j] = ib[r] * (drow[j] * gb[j] - meanG - nrow[j] * meanGN)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension LayerNorm {
    /// What this layer keeps from forward for backward: the normalised rows and their inverse deviations.
    func tallyRetained(into tally: inout MemoryTally) {
        tally.add(normalized, as: .activations)
        tally.add(inverseStd, as: .activations)
    }
}
