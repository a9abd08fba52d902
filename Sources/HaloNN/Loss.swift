import Foundation
import HaloTensor

/// The training objective on a rank's inner nodes.
///
/// Losses are summed over the rank's training nodes and divided by the GLOBAL normaliser, so that summing the
/// ranks' losses and gradients gives exactly the full-graph mean (and the all-reduced weight gradient is the
/// full-graph gradient).
public enum Loss: String, Sendable, Codable {
    /// Single-label classification: softmax cross-entropy, normaliser = number of training nodes.
    case softmaxCrossEntropy = "softmax_cross_entropy"
    /// Multi-label classification: sigmoid binary cross-entropy, normaliser = training nodes × classes.
    case sigmoidBinaryCrossEntropy = "sigmoid_bce"

    /// This rank's share of the loss and the gradient with respect to the logits (zero outside `mask`).
    ///
    /// - Parameters:
    ///   - targets: single-label: class per row (`-1` unlabelled); multi-label: row-major 0/1 matrix.
    ///   - globalTrainingCount: training nodes over all ranks.
    public func evaluate(
        logits: Matrix, targets: LossTargets, mask: [Bool], globalTrainingCount: Int, pool: ComputePool = .serial
    ) -> (loss: Double, gradient: Matrix) {
        precondition(mask.count == logits.rows, "loss mask has \(mask.count) rows, logits \(logits.rows)")
        let classes = logits.cols
        var gradient = Matrix(rows: logits.rows, cols: classes)
        guard globalTrainingCount > 0 else { return (0, gradient) }
        let normalizer = Double(globalTrainingCount) * (self == .sigmoidBinaryCrossEntropy ? Double(classes) : 1)
        let scale = Float(1 / normalizer)
        var rowLoss = [Double](repeating: 0, count: logits.rows)
        logits.storage.withUnsafeBufferPointer { ls in
            gradient.storage.withUnsafeMutableBufferPointer { gs in
                rowLoss.withUnsafeMutableBufferPointer { rl in
                    let lb = ls.baseAddress!, gb = gs.baseAddress!, rlb = rl.baseAddress!
                    pool.forEachChunk(of: logits.rows, grain: 128) { rows in
                        for r in rows where mask[r] {
                            let z = lb + r * classes, g = gb + r * classes
                            switch targets {
                            case .classes(let labels):
                                let y = Int(labels[r])
                                precondition(y >= 0 && y < classes, "training node row \(r) has label \(y)")
                                var m = -Float.infinity
                                for c in 0..<classes where z[c] > m { m = z[c] }
                                var sum: Float = 0
                                for c in 0..<classes { sum += expf(z[c] - m) }
                                let logSum = logf(sum) + m
                                rlb[r] = Double(logSum - z[y])
                                for c in 0..<classes { g[c] = expf(z[c] - logSum) * scale }
                                g[y] -= scale
                            case .multiLabel(let t):
                                var l: Double = 0
                                for c in 0..<classes {
                                    let x = z[c], y = Float(t[r * classes + c])
                                    // Stable BCE with logits: max(x,0) − x·y + log(1 + e^{−|x|}).
                                    l += Double(max(x, 0) - x * y + log1pf(expf(-abs(x))))
                                    g[c] = (1 / (1 + expf(-x)) - y) * scale
                                }
                                rlb[r] = l
                            }
                        }
                    }
                }
            }
        }
        return (rowLoss.reduce(0, +) / normalizer, gradient)
    }
}

/// Targets for `Loss.evaluate`, in the rank's row order.
public enum LossTargets: Sendable {
    case classes([Int32])
    case multiLabel([UInt8])
}
