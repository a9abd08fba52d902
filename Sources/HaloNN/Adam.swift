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

    /// What Adam carries from one step to the next, for checkpoints: the step count (bias correction) and both
    /// moment estimates, one array per parameter in `parameters` order.
    public struct State: Equatable, Sendable {
        public var stepCount: Int
        public var firstMoments: [[Float]]
        public var secondMoments: [[Float]]

        public init(stepCount: Int, firstMoments: [[Float]], secondMoments: [[Float]]) {
            self.stepCount = stepCount
            self.firstMoments = firstMoments
            self.secondMoments = secondMoments
        }
    }

    public var state: State { State(stepCount: stepCount, firstMoments: firstMoments, secondMoments: secondMoments) }

    /// Whether `state` can be continued from (`restore` requires it): see `refusal(of:)`.
    public func fits(_ state: State) -> Bool { refusal(of: state) == nil }

    /// Why `state` cannot be continued from, or nil: it needs a step count ≥ 0, a moment array of the right length
    /// for every parameter, and moments an update can produce: finite first moments, second moments that are not
    /// NaN and not negative (the update's square root would make the weights NaN). A second moment may be +∞: a
    /// finite gradient above about 5.8·10²⁰ squares to it, and the update then leaves that weight alone.
    public func refusal(of state: State) -> String? {
        guard state.stepCount >= 0 else { return "step count \(state.stepCount)" }
        guard state.firstMoments.map(\.count) == parameters.map(\.count),
              state.secondMoments.map(\.count) == parameters.map(\.count) else {
            return "moments of \(state.firstMoments.map(\.count)) and \(state.secondMoments.map(\.count)) values for parameters of \(parameters.map(\.count))"
        }
        for (k, parameter) in parameters.enumerated() {
            if let bad = state.firstMoments[k].first(where: { !$0.isFinite }) {
                return "first moment \(bad) of \(parameter.name)"
            }
            if let bad = state.secondMoments[k].first(where: { $0.isNaN || $0 < 0 }) {
                return "second moment \(bad) of \(parameter.name)"
            }
        }
        return nil
    }

    /// Counts both moment estimates.
    public func tally(into tally: inout MemoryTally) {
        for m in firstMoments { tally.add(m, as: .optimizerState) }
        for v in secondMoments { tally.add(v, as: .optimizerState) }
    }

    /// Continues from a saved state; the caller checks `fits` first.
    public func restore(_ state: State) {
        precondition(fits(state), "Adam state does not fit the parameters")
        stepCount = state.stepCount
        firstMoments = state.firstMoments
        secondMoments = state.secondMoments
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
                                // Sixteen lanes at a time, then the rest one by one: the same operations in the
                                // same order either way (no fused multiply-add), so the bits do not depend on where
                                // a chunk boundary falls.
                                var i = range.lowerBound
                                while i + 16 <= range.upperBound {
                                    Self.update(w + i, g + i, m + i, v + i, h, stepSize: stepSize, correction2: correction2)
                                    i += 16
                                }
                                while i < range.upperBound {
                                    let grad = g[i] + h.weightDecay * w[i]
                                    m[i] = h.beta1 * m[i] + (1 - h.beta1) * grad
                                    v[i] = h.beta2 * v[i] + (1 - h.beta2) * grad * grad
                                    w[i] -= stepSize * m[i] / ((v[i] / correction2).squareRoot() + h.epsilon)
                                    i += 1
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adam's update of the 16 elements at `w`, `g`, `m`, `v` (the scalar loop's operations, lane by lane).
    @inline(__always)
    private static func update(
        _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
        _ v: UnsafeMutablePointer<Float>, _ h: Hyperparameters, stepSize: Float, correction2: Float
    ) {
        let weight = loadVector(w)
        let grad = loadVector(g) + h.weightDecay * weight
        let first = h.beta1 * loadVector(m) + (1 - h.beta1) * grad
        let second = h.beta2 * loadVector(v) + (1 - h.beta2) * grad * grad
        storeVector(first, m)
        storeVector(second, v)
        storeVector(weight - stepSize * first / ((second / correction2).squareRoot() + h.epsilon), w)
    }
}

#if canImport(Glibc)
import Glibc
#endif
