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

    /// The factor survivors are multiplied by in this context (1 when dropout is off or not training).
    public func survivorScale(_ context: StepContext) -> Float {
        context.training && isActive ? 1 / (1 - rate) : 1
    }

    /// `x ← dropout(x)` in place — or `dropout(relu(x))` when `rectifying` — where row `i` is global node
    /// `nodeIDs[i]`. Outside training (or at rate 0) only the ReLU, if asked, applies.
    ///
    /// One pass: the numbers are drawn 16 at a time in registers, so no mask is stored. A backward pass needs none
    /// either: after a rectifying pass an element survived exactly when its output is positive (`ReLUDropout`),
    /// and input dropout has no backward pass.
    public func apply(_ x: inout Matrix, nodeIDs: [Int32], context: StepContext, rectifying: Bool = false) {
        precondition(nodeIDs.count == x.rows, "dropout needs one node id per row")
        let dropping = context.training && isActive
        guard dropping || rectifying else { return }
        let cols = x.cols, rate = self.rate, scale = survivorScale(context)
        let random = context.random, epoch = UInt32(truncatingIfNeeded: context.epoch), siteWord = site.counterWord
        let zero = SIMD16<Float>(), rateVector = SIMD16<Float>(repeating: rate), scaleVector = SIMD16<Float>(repeating: scale)
        // An element passes when `!(v <= floor)`: the ReLU's test with floor 0, every finite value with floor −∞
        // (inputs are validated finite). Written as `!(v <= …)` so that a NaN passes and keeps the loss NaN rather
        // than being silently zeroed.
        let floor: Float = rectifying ? 0 : -.infinity
        let floorVector = SIMD16<Float>(repeating: floor)
        nodeIDs.withUnsafeBufferPointer { ids in
            x.storage.withUnsafeMutableBufferPointer { xs in
                let base = xs.baseAddress!, idb = ids.baseAddress!
                context.pool.forEachChunk(of: nodeIDs.count, grain: 64) { rows in
                    for r in rows {
                        let row = base + r * cols
                        guard dropping else {
                            rectify(row, count: cols)
                            continue
                        }
                        let numbers = UniformRow(random, .dropout, epoch, siteWord, UInt32(bitPattern: idb[r]))
                        var j = 0
                        while j + 16 <= cols {
                            let v = loadVector(row + j)
                            let survives = (numbers.block(at: j) .>= rateVector) .& .!(v .<= floorVector)
                            storeVector(zero.replacing(with: v * scaleVector, where: survives), row + j)
                            j += 16
                        }
                        while j < cols {
                            let v = row[j]
                            row[j] = numbers.uniform(j) >= rate && !(v <= floor) ? v * scale : 0
                            j += 1
                        }
                    }
                }
            }
        }
    }

    /// Dropout on sparse input features: element (row, column index) of the stored non-zeros.
    /// Zeroed entries stay in the pattern. Rows are split over `context.pool` (in ranges of equal non-zero
    /// counts); each element's decision is its own, so the result does not depend on the split.
    public func apply(_ x: SparseFeatures, nodeIDs: [Int32], context: StepContext) -> SparseFeatures {
        precondition(nodeIDs.count == x.matrix.rows, "dropout needs one node id per row")
        guard context.training, isActive else { return x }
        let m = x.matrix
        var values = m.values
        let rate = self.rate, keep = 1 / (1 - rate), random = context.random
        let epoch = UInt32(truncatingIfNeeded: context.epoch), siteWord = site.counterWord
        m.rowPointers.withUnsafeBufferPointer { pointers in
            m.columnIndices.withUnsafeBufferPointer { columns in
                values.withUnsafeMutableBufferPointer { values in
                    context.pool.forEachBalancedChunk(of: m.rows, prefixCost: { pointers[$0] }) { rows in
                        for r in rows {
                            let row = UniformRow(random, .dropout, epoch, siteWord, UInt32(bitPattern: nodeIDs[r]))
                            for e in pointers[r]..<pointers[r + 1] {
                                values[e] *= row.uniform(Int(columns[e])) < rate ? 0 : keep
                            }
                        }
                    }
                }
            }
        }
        return x.replacingValues(values)
    }
}
