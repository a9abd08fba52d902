import HaloTensor

/// A hidden layer's activation, `dropout(relu(x))`, as one pass over the matrix.
///
/// Separately, ReLU, dropout and their two backward steps are four passes and a saved factor matrix as large as
/// the activations. Fused, the forward pass is `Dropout`'s rectifying pass and the backward pass needs only the
/// output: an element passed both the ReLU and the dropout mask exactly when its output is positive, and then its
/// derivative is the dropout scale `1/(1 − rate)`.
public struct ReLUDropout: Sendable {
    public let dropout: Dropout

    public init(dropout: Dropout) {
        self.dropout = dropout
    }

    /// `x ← dropout(relu(x))` in place; row `i` is global node `nodeIDs[i]`.
    public func forward(_ x: inout Matrix, nodeIDs: [Int32], context: StepContext) {
        dropout.apply(&x, nodeIDs: nodeIDs, context: context, rectifying: true)
    }

    /// `gradient ← gradient · ∂output/∂x`, given the forward pass's `output` in the same context.
    public func backward(_ gradient: inout Matrix, output: Matrix, context: StepContext) {
        precondition(gradient.rows == output.rows && gradient.cols == output.cols, "relu-dropout backward shape mismatch")
        let cols = gradient.cols, scale = dropout.survivorScale(context)
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
