import HaloTensor

/// A hidden layer's activation, `dropout(relu(x))`, as one pass over the matrix.
///
/// Separately, ReLU, dropout and their two backward steps are four passes and a saved factor matrix as large as
/// the activations. Fused, the forward pass draws the dropout numbers 16 at a time in registers (the same
/// `UniformRow` numbers `Dropout` uses, so masks are identical) and the backward pass needs only the output: an
/// element passed both the ReLU and the dropout mask exactly when its output is positive, and then its
/// derivative is the dropout scale `1/(1 − rate)`.
public struct ReLUDropout: Sendable {
    public let dropout: Dropout

    public init(dropout: Dropout) {
        self.dropout = dropout
    }

    /// The factor survivors are multiplied by in this context (1 when dropout is off or not training).
    func survivorScale(_ context: StepContext) -> Float {
        context.training && dropout.isActive ? 1 / (1 - dropout.rate) : 1
    }

    /// `x ← dropout(relu(x))` in place; row `i` is global node `nodeIDs[i]`.
    public func forward(_ x: inout Matrix, nodeIDs: [Int32], context: StepContext) {
        precondition(nodeIDs.count == x.rows, "dropout needs one node id per row")
        let dropping = context.training && dropout.isActive
        let cols = x.cols, rate = dropout.rate, scale = survivorScale(context)
        let random = context.random, epoch = UInt32(truncatingIfNeeded: context.epoch)
        let siteWord = dropout.site.counterWord
        let zero = SIMD16<Float>(), rateVector = SIMD16<Float>(repeating: rate), scaleVector = SIMD16<Float>(repeating: scale)
        nodeIDs.withUnsafeBufferPointer { ids in
            x.storage.withUnsafeMutableBufferPointer { xs in
                let base = xs.baseAddress!, idb = ids.baseAddress!
                context.pool.forEachChunk(of: nodeIDs.count, grain: 64) { rows in
                    for r in rows {
                        let row = base + r * cols
                        guard dropping else {
                            for j in 0..<cols where row[j] < 0 { row[j] = 0 }
                            continue
                        }
                        let numbers = UniformRow(random, .dropout, epoch, siteWord, UInt32(bitPattern: idb[r]))
                        var j = 0
                        while j + 16 <= cols {
                            let v = loadVector(row + j)
                            // `!(v <= 0)` rather than `v > 0`: a NaN survives (and keeps the loss NaN) instead
                            // of being silently zeroed.
                            let survives = (numbers.block(at: j) .>= rateVector) .& .!(v .<= zero)
                            storeVector(zero.replacing(with: v * scaleVector, where: survives), row + j)
                            j += 16
                        }
                        while j < cols {
                            row[j] = numbers.uniform(j) >= rate && !(row[j] <= 0) ? row[j] * scale : 0
                            j += 1
                        }
                    }
                }
            }
        }
    }

    /// `gradient ← gradient · ∂output/∂x`, given the forward pass's `output` in the same context.
    public func backward(_ gradient: inout Matrix, output: Matrix, context: StepContext) {
        precondition(gradient.rows == output.rows && gradient.cols == output.cols, "relu-dropout backward shape mismatch")
        let cols = gradient.cols, scale = survivorScale(context)
        let zero = SIMD16<Float>(), scaleVector = SIMD16<Float>(repeating: scale)
        output.storage.withUnsafeBufferPointer { o in
            gradient.storage.withUnsafeMutableBufferPointer { g in
                let ob = o.baseAddress!, gb = g.baseAddress!
                context.pool.forEachChunk(of: gradient.rows, grain: 64) { rows in
                    var i = rows.lowerBound * cols
                    let end = rows.upperBound * cols
                    while i + 16 <= end {
                        let survived = loadVector(ob + i) .> zero
                        storeVector(zero.replacing(with: loadVector(gb + i) * scaleVector, where: survived), gb + i)
                        i += 16
                    }
                    while i < end {
                        gb[i] = ob[i] > 0 ? gb[i] * scale : 0
                        i += 1
                    }
                }
            }
        }
    }
}
