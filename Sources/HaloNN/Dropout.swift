import HaloTensor

/// Inverted dropout: zero each element with probability `rate`, scale survivors by `1/(1 − rate)`.
///
/// The keep/drop decision for element (node, column) is number `column` of the `UniformRow` addressed by
/// (epoch, site, global node id), so a node gets the same mask whichever rank holds it.
public struct Dropout: Sendable {
    public let rate: Float
    public let site: DropoutSite

    public init(rate: Float, site: DropoutSite) {
        precondition(rate >= 0 && rate < 1, "dropout rate must be in [0, 1), got \(rate)")
        self.rate = rate
        self.site = site
    }

    public var isActive: Bool { rate > 0 }

    /// Applies dropout in place to a dense matrix whose row `i` is global node `nodeIDs[i]`; returns the
    /// per-element factors (0 or `1/(1−rate)`) for the backward pass. Inactive (eval or rate 0): returns nil.
    public func apply(_ x: inout Matrix, nodeIDs: [Int32], context: StepContext) -> Matrix? {
        guard context.training, isActive else { return nil }
        precondition(nodeIDs.count == x.rows, "dropout needs one node id per row")
        var factors = Matrix(rows: x.rows, cols: x.cols)
        let cols = x.cols, keep = 1 / (1 - rate), rate = self.rate
        let random = context.random, epoch = UInt32(truncatingIfNeeded: context.epoch), siteWord = site.counterWord
        nodeIDs.withUnsafeBufferPointer { ids in
            factors.storage.withUnsafeMutableBufferPointer { f in
                x.storage.withUnsafeMutableBufferPointer { xs in
                    let fb = f.baseAddress!, xb = xs.baseAddress!, idb = ids.baseAddress!
                    context.pool.forEachChunk(of: nodeIDs.count, grain: 64) { rows in
                        for r in rows {
                            let row = fb + r * cols
                            UniformRow(random, .dropout, epoch, siteWord, UInt32(bitPattern: idb[r])).fill(row, count: cols)
                            for j in 0..<cols {
                                let factor: Float = row[j] < rate ? 0 : keep
                                row[j] = factor
                                xb[r * cols + j] *= factor
                            }
                        }
                    }
                }
            }
        }
        return factors
    }

    /// Backward of `apply`: multiplies the gradient by the saved factors.
    public static func backward(_ gradient: inout Matrix, factors: Matrix?) {
        guard let factors else { return }
        precondition(gradient.count == factors.count, "dropout backward shape mismatch")
        factors.storage.withUnsafeBufferPointer { f in
            gradient.storage.withUnsafeMutableBufferPointer { g in
                for i in g.indices { g[i] *= f[i] }
            }
        }
    }

    /// Dropout on sparse input features: element (row, column index) of the stored non-zeros.
    /// Zeroed entries stay in the pattern.
    public func apply(_ x: SparseFeatures, nodeIDs: [Int32], context: StepContext) -> SparseFeatures {
        guard context.training, isActive else { return x }
        let m = x.matrix
        var values = m.values
        let keep = 1 / (1 - rate), random = context.random
        let epoch = UInt32(truncatingIfNeeded: context.epoch), siteWord = site.counterWord
        for r in 0..<m.rows {
            let row = UniformRow(random, .dropout, epoch, siteWord, UInt32(bitPattern: nodeIDs[r]))
            for e in m.rowPointers[r]..<m.rowPointers[r + 1] {
                let u = row.uniform(Int(m.columnIndices[e]))
                values[e] *= u < rate ? 0 : keep
            }
        }
        return x.replacingValues(values)
    }
}
