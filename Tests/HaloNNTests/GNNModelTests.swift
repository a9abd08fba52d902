import HaloGraph
import HaloNN
import HaloTensor
import HaloTestSupport
import XCTest

final class GNNModelTests: XCTestCase {
    private let nodes = 9, inputWidth = 5, classes = 3

    private struct Setup {
        let model: GNNModel
        let op: PropagationOperator
        let features: LayerInput
        let nodeIDs: [Int32]
        let weights: Matrix
    }

    private func setup(
        _ kind: ModelConfiguration.Kind, layers: Int, hidden: Int, normalization: ModelConfiguration.Normalization,
        dropout: Float, sparse: Bool = false, indicator: Bool = false, inputDropout: Float? = nil, seed: UInt64
    ) -> Setup {
        var rng = TestRNG(seed: seed)
        let graph = randomGraph(nodes: nodes, edges: 22, &rng)
        // Codes are only chosen without input dropout (its new values each epoch would need new codes).
        let configuration = ModelConfiguration(kind: kind, layers: layers, hiddenWidth: hidden, dropout: dropout,
                                               inputDropout: inputDropout ?? (indicator ? 0 : dropout),
                                               normalization: normalization)
        let model = GNNModel(configuration: configuration, inputWidth: inputWidth, outputWidth: classes,
                             random: CounterRandom(seed: seed))
        // Non-trivial biases, scales and shifts, so that every parameter's gradient is exercised.
        for p in model.parameters where p.name.hasSuffix(".bias") || p.name.hasSuffix(".shift") {
            p.value = randomMatrix(p.value.rows, p.value.cols, &rng, range: -0.3...0.3)
        }
        for p in model.parameters where p.name.hasSuffix(".scale") {
            p.value = randomMatrix(p.value.rows, p.value.cols, &rng, range: 0.7...1.3)
        }
        var features: LayerInput = sparse
            ? .sparse(SparseFeatures(randomSparse(rows: nodes, cols: inputWidth, perRow: 3, &rng)))
            : .dense(randomMatrix(nodes, inputWidth, &rng))
        if indicator {
            // Every non-zero 1, multiplied by table lookup.
            var pattern = randomSparse(rows: nodes, cols: inputWidth, perRow: 3, &rng)
            pattern.values = pattern.values.map { _ in 1 }
            features = .sparse(SparseFeatures(pattern, binary: BinaryMatrix(pattern)))
        }
        return Setup(model: model, op: .wholeGraph(graph, kind.aggregation), features: features,
                     nodeIDs: (0..<nodes).map { Int32(50 + 3 * $0) }, weights: randomMatrix(nodes, classes, &rng))
    }

    private func context(training: Bool, epoch: Int = 2) -> StepContext {
        StepContext(epoch: epoch, training: training, random: CounterRandom(seed: 1), pool: .serial)
    }

    /// Checks sampled entries of every parameter of the model against central differences.
    private func checkModel(_ s: Setup, training: Bool, label: String) throws {
        let exchange = NoBoundaryExchange()
        let ctx = context(training: training)
        func loss() throws -> Double {
            weightedSum(try s.model.forward(s.features, nodeIDs: s.nodeIDs, operator: s.op, exchange: exchange, context: ctx),
                        s.weights)
        }
        s.model.zeroGradients()
        let logits = try s.model.forward(s.features, nodeIDs: s.nodeIDs, operator: s.op, exchange: exchange, context: ctx)
        XCTAssertEqual(logits.rows, nodes)
        XCTAssertEqual(logits.cols, classes)
        try s.model.backward(s.weights, operator: s.op, exchange: exchange, context: ctx)
        var rng = TestRNG(seed: 77)
        var allProbes: [Probe] = [], analytic: [Float] = []
        for p in s.model.parameters {
            let indices = sampledIndices(p.count, 6, &rng)
            allProbes += probes(p, indices: indices)
            analytic += indices.map { p.gradient.storage[$0] }
            XCTAssertTrue(p.gradient.storage.contains { $0 != 0 }, "\(label): \(p.name) has an all-zero gradient")
        }
        try checkGradientAvoidingKinks(label, probes: allProbes, analytic: analytic, step: 1e-3, relative: 1e-2,
                                       absolute: 2e-3, loss: loss)
    }

    func testTwoLayerGCNWithLayerNorm() throws {
        let s = setup(.gcn, layers: 2, hidden: 6, normalization: .layerNorm, dropout: 0, seed: 401)
        XCTAssertEqual(s.model.parameters.map(\.name), ["conv0.weight", "conv0.bias", "conv1.weight", "conv1.bias",
                                                          "norm0.scale", "norm0.shift"])
        try checkModel(s, training: false, label: "gcn-2 eval")
    }

    /// The gradient all-reduce starts a layer's bucket at `layerFinished`: by then that layer's gradients must be
    /// final (the rest of backward never touches them), layers come last first, and the layers' parameters
    /// together are all of the model's, each once.
    func testLayerFinishedSeesEachLayersFinalGradientsLastLayerFirst() throws {
        for kind in [ModelConfiguration.Kind.gcn, .sage] {
            let s = setup(kind, layers: 3, hidden: 6, normalization: .layerNorm, dropout: 0.3, seed: 405)
            let exchange = NoBoundaryExchange()
            let ctx = context(training: true)
            s.model.zeroGradients()
            _ = try s.model.forward(s.features, nodeIDs: s.nodeIDs, operator: s.op, exchange: exchange, context: ctx)
            var order: [Int] = []
            var seen: [String: [Float]] = [:]
            try s.model.backward(s.weights, operator: s.op, exchange: exchange, context: ctx) { layer in
                order.append(layer)
                for p in s.model.parameters(ofLayer: layer) { seen[p.name] = p.gradient.storage }
            }
            XCTAssertEqual(order, [2, 1, 0], "\(kind)")
            XCTAssertEqual(Set(seen.keys), Set(s.model.parameters.map(\.name)), "\(kind): every parameter in one bucket")
            XCTAssertEqual((0..<3).map { s.model.parameters(ofLayer: $0).count }.reduce(0, +), s.model.parameters.count)
            for p in s.model.parameters {
                XCTAssertEqual(seen[p.name], p.gradient.storage, "\(kind): \(p.name) changed after its layer finished")
                XCTAssertTrue(p.gradient.storage.contains { $0 != 0 }, "\(kind): \(p.name)")
            }
        }
    }

    func testTwoLayerSAGEWithLayerNorm() throws {
        let s = setup(.sage, layers: 2, hidden: 4, normalization: .layerNorm, dropout: 0, seed: 402)
        try checkModel(s, training: false, label: "sage-2 eval")
    }

    func testThreeLayerGCNWithLayerNorm() throws {
        let s = setup(.gcn, layers: 3, hidden: 6, normalization: .layerNorm, dropout: 0, seed: 403)
        XCTAssertEqual(s.model.norms.count, 2)
        try checkModel(s, training: false, label: "gcn-3 eval")
    }

    func testThreeLayerSAGEWithLayerNorm() throws {
        let s = setup(.sage, layers: 3, hidden: 6, normalization: .layerNorm, dropout: 0, seed: 404)
        try checkModel(s, training: false, label: "sage-3 eval")
    }

    func testWithoutNormalization() throws {
        let s = setup(.sage, layers: 2, hidden: 4, normalization: .none, dropout: 0, seed: 415)
        XCTAssertTrue(s.model.norms.isEmpty)
        try checkModel(s, training: false, label: "sage-2 no norm")
    }

    /// Dropout masks depend only on (seed, epoch, site, node id), so finite differences still apply in training.
    func testGradientsWithDropout() throws {
        for (kind, layers) in [(ModelConfiguration.Kind.gcn, 2), (.sage, 3)] {
            let s = setup(kind, layers: layers, hidden: 6, normalization: .layerNorm, dropout: 0.3, seed: 406 + UInt64(layers))
            try checkModel(s, training: true, label: "\(kind)-\(layers) dropout")
        }
    }

    func testGradientsWithIndicatorFeatures() throws {
        let s = setup(.sage, layers: 2, hidden: 16, normalization: .none, dropout: 0.2, indicator: true, seed: 410)
        guard case .sparse(let features) = s.features else { return XCTFail("indicator features are sparse") }
        XCTAssertNotNil(features.binary)
        try checkModel(s, training: true, label: "sage-2 indicator, hidden dropout")
        try checkModel(s, training: false, label: "sage-2 indicator eval")
    }

    func testGradientsWithSparseFeatures() throws {
        let s = setup(.gcn, layers: 2, hidden: 6, normalization: .layerNorm, dropout: 0.2, sparse: true, seed: 409)
        try checkModel(s, training: true, label: "gcn-2 sparse dropout")
        try checkModel(s, training: false, label: "gcn-2 sparse eval")
    }

    /// The first layer's forward through the features (`Â·(X·W)`, lookup or CSR) beside its precomputed aggregate
    /// is the aggregate's product `(ÂX)·W` up to rounding, and backward is the same: equal logits and gradients,
    /// for indicator (lookup) and general sparse (CSR) features, and its gradients pass the finite-difference check.
    func testForwardThroughTheFeaturesEqualsTheAggregatesProduct() throws {
        for (indicator, sparse, seed) in [(true, false, UInt64(412)), (false, true, UInt64(413))] {
            let label = indicator ? "lookup" : "csr"
            // No input dropout: the aggregate is only precomputed without it.
            let s = setup(.gcn, layers: 2, hidden: 16, normalization: .none, dropout: 0.3, sparse: sparse,
                          indicator: indicator, inputDropout: 0, seed: seed)
            let exchange = NoBoundaryExchange(), ctx = context(training: true)
            try s.model.precomputeFirstAggregation(s.features, operator: s.op, exchange: exchange, context: context(training: false))
            func pass(throughFeatures: Bool) throws -> (logits: Matrix, gradients: [[Float]]) {
                s.model.firstLayerForwardThroughFeatures = throughFeatures
                s.model.zeroGradients()
                let logits = try s.model.forward(s.features, nodeIDs: s.nodeIDs, operator: s.op, exchange: exchange, context: ctx)
                try s.model.backward(s.weights, operator: s.op, exchange: exchange, context: ctx)
                return (logits, s.model.parameters.map(\.gradient.storage))
            }
            let aggregate = try pass(throughFeatures: false), through = try pass(throughFeatures: true)
            for (a, b) in zip(aggregate.logits.storage, through.logits.storage) {
                XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a)), "\(label): logits")
            }
            for (a, b) in zip(aggregate.gradients.joined(), through.gradients.joined()) {
                XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(a)), "\(label): gradients")
            }
            XCTAssertNotEqual(aggregate.logits.storage, through.logits.storage,
                              "\(label): the two products round differently, so the test sees which one ran")
            s.model.firstLayerForwardThroughFeatures = true
            try checkModel(s, training: true, label: "gcn-2 \(label) through the features")
        }
    }

    /// Without input dropout or normalisation an evaluation's activated first layer (from the precomputed
    /// aggregate, or from the features in one process) serves the next training pass when the parameters are the
    /// same bits, and only then: the step's logits and gradients are the ones a model that never evaluated
    /// computes, a changed parameter (even 0 → −0) is recomputed, and a training pass keeps nothing.
    func testAnEvaluationsFirstLayerOutputServesTheNextStepOnlyWithTheSameParameters() throws {
        for (label, precompute, throughFeatures) in [("aggregate's GEMM", true, false), ("through the features", true, true),
                                                     ("the features' own pass", false, false)] {
            func made() throws -> Setup {
                let s = setup(.gcn, layers: 2, hidden: 16, normalization: .none, dropout: 0.3, indicator: true,
                              inputDropout: 0, seed: 414)
                if precompute {
                    try s.model.precomputeFirstAggregation(s.features, operator: s.op, exchange: NoBoundaryExchange(),
                                                           context: context(training: false))
                }
                s.model.firstLayerForwardThroughFeatures = throughFeatures
                return s
            }
            let s = try made(), fresh = try made()
            let exchange = NoBoundaryExchange()
            func step(_ s: Setup) throws -> (logits: Matrix, gradients: [[Float]]) {
                s.model.zeroGradients()
                let logits = try s.model.forward(s.features, nodeIDs: s.nodeIDs, operator: s.op, exchange: exchange,
                                                 context: context(training: true))
                try s.model.backward(s.weights, operator: s.op, exchange: exchange, context: context(training: true))
                return (logits, s.model.parameters.map(\.gradient.storage))
            }
            func evaluate(_ s: Setup) throws -> Matrix {
                try s.model.forward(s.features, nodeIDs: s.nodeIDs, operator: s.op, exchange: exchange, context: context(training: false))
            }
            let first = s.model.convolutions[0]
            XCTAssertEqual(try evaluate(s), try evaluate(fresh), label)
            XCTAssertEqual(first.reusedOutputCount, 0, label)
            let reused = try step(s), computed = try step(fresh)
            XCTAssertEqual(first.reusedOutputCount, 1, "\(label): the step took the evaluation's output")
            XCTAssertEqual(reused.logits, computed.logits, label)
            XCTAssertEqual(reused.gradients, computed.gradients, label)
            _ = try step(s)
            XCTAssertEqual(first.reusedOutputCount, 1, "\(label): a training pass keeps nothing")

            // A changed parameter between the evaluation and the step: computed again, down to the sign of a zero.
            for (index, value) in [(3, Float(0.25)), (5, Float(0)), (5, -Float(0))] {
                for model in [s, fresh] { model.model.convolutions[0].neighborWeight.value.storage[index] = index == 5 ? 0 : 0.5 }
                _ = try evaluate(s)
                for model in [s, fresh] { model.model.convolutions[0].neighborWeight.value.storage[index] = value }
                let count = first.reusedOutputCount
                let after = try step(s), expected = try step(fresh)
                let bitsChanged = index == 3 || value.sign == .minus
                XCTAssertEqual(first.reusedOutputCount, count + (bitsChanged ? 0 : 1), "\(label): weight \(index) set to \(value)")
                XCTAssertEqual(after.logits.storage.map(\.bitPattern), expected.logits.storage.map(\.bitPattern), label)
                XCTAssertEqual(after.gradients, expected.gradients, label)
            }
        }
    }

    /// With input dropout the first layer's input changes from pass to pass, over ranks its exchange must happen
    /// on every pass, and a normalisation between the layer and its ReLU needs the layer's own output (its backward
    /// pass reads it): no output is kept in any of these cases.
    func testNoOutputIsReusedWithInputDropoutNormalisationOrAcrossRanks() throws {
        let dropped = setup(.gcn, layers: 2, hidden: 16, normalization: .none, dropout: 0.3, indicator: false,
                            inputDropout: 0.2, seed: 415)
        let undropped = setup(.gcn, layers: 2, hidden: 16, normalization: .none, dropout: 0.3, sparse: true,
                              inputDropout: 0, seed: 416)
        let normalised = setup(.gcn, layers: 2, hidden: 16, normalization: .layerNorm, dropout: 0.3, sparse: true,
                               inputDropout: 0, seed: 417)
        for (s, exchange) in [(dropped, NoBoundaryExchange() as any BoundaryExchange), (undropped, RanksCrossingExchange()),
                              (normalised, NoBoundaryExchange())] {
            for training in [false, true, false, true] {
                _ = try s.model.forward(s.features, nodeIDs: s.nodeIDs, operator: s.op, exchange: exchange,
                                        context: context(training: training))
            }
            XCTAssertEqual(s.model.convolutions[0].reusedOutputCount, 0)
        }
    }

    func testDropoutIsDeterministicPerEpoch() throws {
        let s = setup(.gcn, layers: 3, hidden: 6, normalization: .layerNorm, dropout: 0.5, seed: 410)
        let exchange = NoBoundaryExchange()
        func run(training: Bool, epoch: Int) throws -> Matrix {
            try s.model.forward(s.features, nodeIDs: s.nodeIDs, operator: s.op, exchange: exchange,
                                context: context(training: training, epoch: epoch))
        }
        let eval = try run(training: false, epoch: 0)
        XCTAssertEqual(try run(training: false, epoch: 5), eval, "evaluation ignores the epoch")
        let train = try run(training: true, epoch: 3)
        XCTAssertEqual(try run(training: true, epoch: 3), train, "same epoch, same masks")
        XCTAssertNotEqual(train, eval, "dropout active in training")
        XCTAssertNotEqual(try run(training: true, epoch: 4), train, "new epoch, new masks")
        // Serial and multi-threaded runs agree.
        var parallel = context(training: true, epoch: 3)
        parallel.pool = ComputePool(threads: 3)
        let p = try s.model.forward(s.features, nodeIDs: s.nodeIDs, operator: s.op, exchange: exchange, context: parallel)
        XCTAssertLessThanOrEqual(p.maxAbsDifference(train), 1e-5)
    }

    func testSingleLayerModelIsOneConvolution() throws {
        let s = setup(.gcn, layers: 1, hidden: 6, normalization: .layerNorm, dropout: 0, seed: 411)
        XCTAssertEqual(s.model.convolutions.count, 1)
        XCTAssertTrue(s.model.norms.isEmpty)
        try checkModel(s, training: false, label: "gcn-1")
    }
}

final class AdamTests: XCTestCase {
    /// A saved state is taken back only with moments an update can have produced: finite first moments, second
    /// moments not NaN and not negative (+∞ is what a finite gradient above ~5.8e20 squares to), a step count ≥ 0.
    func testRefusesStatesNoUpdateProduces() {
        let adam = Adam(parameters: [Parameter(name: "w", value: Matrix(rows: 1, cols: 2))], hyperparameters: .init(learningRate: 0.01))
        func state(first: [Float] = [0, 0], second: [Float] = [0, 0], steps: Int = 3) -> Adam.State {
            Adam.State(stepCount: steps, firstMoments: [first], secondMoments: [second])
        }
        XCTAssertNil(adam.refusal(of: state()))
        XCTAssertNil(adam.refusal(of: state(second: [.infinity, 1])))
        XCTAssertEqual(adam.refusal(of: state(second: [.nan, 1])), "second moment nan of w")
        XCTAssertEqual(adam.refusal(of: state(second: [0, -1])), "second moment -1.0 of w")
        XCTAssertEqual(adam.refusal(of: state(first: [.infinity, 0])), "first moment inf of w")
        XCTAssertEqual(adam.refusal(of: state(steps: -1)), "step count -1")
        XCTAssertNotNil(adam.refusal(of: state(first: [0])))
        XCTAssertFalse(adam.fits(state(first: [0])))
    }

    /// Adam with L2 weight decay, in Double, written from the paper / PyTorch's documentation.
    private struct Reference {
        var w: [Double], m: [Double], v: [Double], t = 0
        let lr, beta1, beta2, eps, decay: Double

        mutating func step(_ g: [Double]) {
            t += 1
            for i in w.indices {
                let grad = g[i] + decay * w[i]
                m[i] = beta1 * m[i] + (1 - beta1) * grad
                v[i] = beta2 * v[i] + (1 - beta2) * grad * grad
                let mHat = m[i] / (1 - pow(beta1, Double(t)))
                let vHat = v[i] / (1 - pow(beta2, Double(t)))
                w[i] -= lr * mHat / (vHat.squareRoot() + eps)
            }
        }
    }

    func testFirstStepMovesByLearningRateTimesSign() {
        let p = Parameter(name: "w", value: Matrix([[1, -2, 0.5]]))
        p.gradient = Matrix([[0.3, -0.001, 40]])
        let adam = Adam(parameters: [p], hyperparameters: .init(learningRate: 0.01))
        adam.step()
        XCTAssertEqual(adam.stepCount, 1)
        // m̂ = g and v̂ = g², so the first update is lr · g / (|g| + ε) ≈ lr · sign(g).
        XCTAssertEqual(p.value[0, 0], 0.99, accuracy: 1e-6)
        XCTAssertEqual(p.value[0, 1], -1.99, accuracy: 1e-5)
        XCTAssertEqual(p.value[0, 2], 0.49, accuracy: 1e-6)
    }

    /// Split over threads, every element still gets exactly the serial update.
    func testThreadedStepEqualsSerialStep() {
        var rng = TestRNG(seed: 502)
        let initial = randomMatrix(70, 1000, &rng)  // 70 000 elements: several chunks of the pool's grain
        let serial = Parameter(name: "w", value: initial), threaded = Parameter(name: "w", value: initial)
        let hyper = Adam.Hyperparameters(learningRate: 0.01, weightDecay: 0.001)
        let a = Adam(parameters: [serial], hyperparameters: hyper), b = Adam(parameters: [threaded], hyperparameters: hyper)
        for _ in 0..<3 {
            let g = randomMatrix(70, 1000, &rng)
            serial.gradient = g
            threaded.gradient = g
            a.step()
            b.step(pool: ComputePool(threads: 3))
        }
        XCTAssertEqual(serial.value, threaded.value)
    }

    func testStepsMatchReference() {
        var rng = TestRNG(seed: 501)
        for decay: Float in [0, 0.05] {
            let a = Parameter(name: "a", value: randomMatrix(3, 4, &rng))
            let b = Parameter(name: "b", value: randomMatrix(1, 5, &rng))
            var hyper = Adam.Hyperparameters(learningRate: 0.02, weightDecay: decay)
            hyper.beta1 = 0.8
            hyper.beta2 = 0.99
            hyper.epsilon = 1e-6
            let adam = Adam(parameters: [a, b], hyperparameters: hyper)
            func reference(_ p: Parameter) -> Reference {
                Reference(w: p.value.storage.map(Double.init), m: .init(repeating: 0, count: p.count),
                          v: .init(repeating: 0, count: p.count), lr: 0.02, beta1: 0.8, beta2: 0.99, eps: 1e-6,
                          decay: Double(decay))
            }
            var refs = [reference(a), reference(b)]
            for step in 1...6 {
                for (k, p) in [a, b].enumerated() {
                    p.gradient = randomMatrix(p.value.rows, p.value.cols, &rng)
                    if step == 3 { p.gradient.zero() }  // a zero gradient still moves the weights (momentum, decay)
                    refs[k].step(p.gradient.storage.map(Double.init))
                }
                adam.step()
                XCTAssertEqual(adam.stepCount, step)
                for (k, p) in [a, b].enumerated() {
                    for i in 0..<p.count {
                        XCTAssertEqual(Double(p.value.storage[i]), refs[k].w[i], accuracy: 2e-5,
                                       "decay \(decay) step \(step) \(p.name)[\(i)]")
                    }
                }
            }
        }
    }

    func testWeightDecayPullsTowardsZeroWithoutGradient() {
        let p = Parameter(name: "w", value: Matrix([[2, -3]]))
        let adam = Adam(parameters: [p], hyperparameters: .init(learningRate: 0.1, weightDecay: 0.5))
        adam.step()
        // grad = 0.5·w, so the first step is −lr·sign(w).
        XCTAssertEqual(p.value[0, 0], 1.9, accuracy: 1e-5)
        XCTAssertEqual(p.value[0, 1], -2.9, accuracy: 1e-5)
        let still = Parameter(name: "z", value: Matrix([[0, 0]]))
        let plain = Adam(parameters: [still], hyperparameters: .init(learningRate: 0.1))
        plain.step()
        XCTAssertEqual(still.value, Matrix([[0, 0]]), "zero gradient, no decay: no movement")
    }
}

/// A single process's exchange that says it crosses ranks, as a rank with no halo rows of its own would (its
/// exchange still sends to the others).
private final class RanksCrossingExchange: BoundaryExchange {
    private let local = NoBoundaryExchange()
    var crossesRanks: Bool { true }

    func exchangeForward(_ layer: LayerIndex, rows: inout Matrix, context: StepContext, overlapping: (Matrix) -> Void) throws {
        try local.exchangeForward(layer, rows: &rows, context: context, overlapping: overlapping)
    }

    func exchangeBackward(_ layer: LayerIndex, haloGradient: Matrix, innerGradient: inout Matrix, context: StepContext,
                          overlapping: (inout Matrix) -> Void) throws {
        try local.exchangeBackward(layer, haloGradient: haloGradient, innerGradient: &innerGradient, context: context,
                                   overlapping: overlapping)
    }
}
