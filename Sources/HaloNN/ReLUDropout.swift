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

    /// The same step written over the forward pass's output: rows `start ..< start + gradient.rows` of `output`
    /// become `gradient · ∂output/∂x`. A layer uses it to form its input gradient where its input was, one block of
    /// rows at a time, rather than beside it.
    public func backward(_ gradient: Matrix, overwritingOutput output: inout Matrix, fromRow start: Int, context: StepContext) {
        precondition(gradient.cols == output.cols && start >= 0 && start + gradient.rows <= output.rows,
                     "relu-dropout backward: rows \(start)..<\(start + gradient.rows) of a \(output.rows)-row output")
        let scale = dropout.survivorScale(context)
        gradient.storage.withUnsafeBufferPointer { g in
            output.storage.withUnsafeMutableBufferPointer { o in
                let rows = o.baseAddress! + start * gradient.cols
                Self.passSurvivors(g.baseAddress!, mask: rows, into: rows, rows: gradient.rows, cols: gradient.cols,
                                   scale: scale, pool: context.pool)
            }
        }
    }

    /// `gradient ← gradient · ∂output/∂x`, given the forward pass's `output` in the same context.
    public func backward(_ gradient: inout Matrix, output: Matrix, context: StepContext) {
        precondition(gradient.rows == output.rows && gradient.cols == output.cols, "relu-dropout backward shape mismatch")
        let scale = dropout.survivorScale(context)
        output.storage.withUnsafeBufferPointer { o in
            gradient.storage.withUnsafeMutableBufferPointer { g in
                Self.passSurvivors(g.baseAddress!, mask: o.baseAddress!, into: g.baseAddress!, rows: gradient.rows,
                                   cols: gradient.cols, scale: scale, pool: context.pool)
            }
        }
    }

    /// `destination[i] = mask[i] > 0 ? gradient[i] · scale : 0` over `rows × cols` elements, rows split over `pool`.
    /// `destination` may be `gradient` or `mask` itself: each element is read before it is written.
    private static func passSurvivors(
        _ gradient: UnsafePointer<Float>, mask: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>,
        rows: Int, cols: Int, scale: Float, pool: ComputePool
    ) {
        let zero = SIMD16<Float>(), scaleVector = SIMD16<Float>(repeating: scale)
        pool.forEachChunk(of: rows, grain: 64) { range in
            var i = range.lowerBound * cols
            let end = range.upperBound * cols
            while i + 16 <= end {
                let survived = loadVector(mask + i) .> zero
                storeVector(zero.replacing(with: loadVector(gradient + i) * scaleVector, where: survived), destination + i)
                i += 16
            }
            while i < end {
                destination[i] = mask[i] > 0 ? gradient[i] * scale : 0
                i += 1
            }
        }
    }
}
