import HaloTensor

/// Adam (Kingma & Ba) with L2 weight decay added to the gradient, as `torch.optim.Adam(weight_decay=…)` does.
///
/// Every rank applies the same update to the same all-reduced gradient, so replicas stay identical without
/// broadcasting weights.
public final class Adam {
    public struct Hyperparameters: Sendable, Codable, Equatable {
        public var learningRate: Float
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var epsilon: Float = 1e-8
        public var weightDecay: Float = 0

        public init(learningRate: Float, weightDecay: Float = 0) {
            self.learningRate = learningRate
            self.weightDecay = weightDecay
        }
    }

    public let hyperparameters: Hyperparameters
    public let parameters: [Parameter]
    private var firstMoments: [[Float]]
    private var secondMoments: [[Float]]
    public private(set) var stepCount = 0

    public init(parameters: [Parameter], hyperparameters: Hyperparameters) {
        self.parameters = parameters
        self.hyperparameters = hyperparameters
        firstMoments = parameters.map { [Float](repeating: 0, count: $0.count) }
        secondMoments = firstMoments
    }

    /// One update from the parameters' current gradients, split over `pool` (each element's update is
    /// independent, so the result does not depend on the thread count).
    public func step(pool: ComputePool = .serial) {
        stepCount += 1
        let h = hyperparameters
        let t = Float(stepCount)
        let correction1 = 1 - powf(h.beta1, t), correction2 = 1 - powf(h.beta2, t)
        let stepSize = h.learningRate / correction1
        for (k, p) in parameters.enumerated() {
            // Read before the closures below: inside them `p.value` is exclusively borrowed.
            let count = p.count
            p.value.storage.withUnsafeMutableBufferPointer { w in
                p.gradient.storage.withUnsafeBufferPointer { g in
                    firstMoments[k].withUnsafeMutableBufferPointer { m in
                        secondMoments[k].withUnsafeMutableBufferPointer { v in
                            let w = w.baseAddress!, g = g.baseAddress!, m = m.baseAddress!, v = v.baseAddress!
                            pool.forEachChunk(of: count, grain: 16_384) { range in
                                for i in range {
                                    let grad = g[i] + h.weightDecay * w[i]
                                    m[i] = h.beta1 * m[i] + (1 - h.beta1) * grad
                                    v[i] = h.beta2 * v[i] + (1 - h.beta2) * grad * grad
                                    w[i] -= stepSize * m[i] / ((v[i] / correction2).squareRoot() + h.epsilon)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
