import HaloGraph
import HaloTensor

/// The architecture of a graph neural network.
public struct ModelConfiguration: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case gcn
        case sage

        public var aggregation: Aggregation { self == .gcn ? .gcn : .mean }
    }

    public enum Normalization: String, Sendable, Codable, CaseIterable {
        case layerNorm = "layernorm"
        case none
    }

    public var kind: Kind
    /// Graph layers; at least 1.
    public var layers: Int
    public var hiddenWidth: Int
    /// Dropout after each hidden layer.
    public var dropout: Float
    /// Dropout on the input features (Kipf & Welling use the same rate as `dropout`).
    public var inputDropout: Float
    /// Normalisation after each hidden layer's convolution.
    public var normalization: Normalization

    public init(kind: Kind, layers: Int, hiddenWidth: Int, dropout: Float, inputDropout: Float = 0,
                normalization: Normalization = .none) {
        self.kind = kind
        self.layers = layers
        self.hiddenWidth = hiddenWidth
        self.dropout = dropout
        self.inputDropout = inputDropout
        self.normalization = normalization
    }
}

/// A stack of graph convolutions: hidden layers `conv → [LayerNorm] → ReLU → dropout`, the last one plain.
///
/// The model sees only its rank's inner rows; everything that crosses ranks goes through the `BoundaryExchange`
/// passed in, so the same model object serves single-process, synchronous, overlapped and pipelined training.
public final class GNNModel {
    public let configuration: ModelConfiguration
    public let convolutions: [GraphConvolution]
    public let norms: [LayerNorm]
    private let inputDropout: Dropout
    private let hiddenActivations: [ReLUDropout]

    /// Saved for backward, per hidden layer: the activation's output (also the next layer's input).
    private var activations: [Matrix] = []
    /// `op · [X; X_halo]` of the input features, when the first layer's aggregation is precomputed.
    public private(set) var precomputedFirstAggregate: Matrix?
    /// With a precomputed first aggregate and one process: the first layer's forward product goes through the
    /// features as held, `Â·(X·W)`, and the aggregate serves only its weight gradient (the first-layer plan's
    /// `hybrid` path, chosen when X is sparse enough for that to be cheaper than the aggregate's GEMM). Without
    /// input dropout only, as the aggregate itself (it is of undropped features); with an operator that has halo
    /// rows (ranks) the aggregate's GEMM runs instead, since `X·W` of the halo rows is not at hand.
    public var firstLayerForwardThroughFeatures = false {
        didSet {
            precondition(!firstLayerForwardThroughFeatures || configuration.inputDropout == 0,
                         "the first layer's forward goes through the features only without input dropout")
        }
    }

    /// Whether every pass gives the first layer the same input (no input dropout) and nothing stands between its
    /// output and the ReLU (no normalisation, more than one layer): then an evaluation's activated first layer is
    /// what the next training step's first layer would compute and activate again, bit for bit, if the parameters
    /// are the same (`GraphConvolution.keep(activatedOutput:)`; ReLU applied twice is ReLU applied once). Training
    /// evaluates after each optimiser step, with the parameters the next step starts from, so each epoch then forms
    /// the first layer once instead of twice, with no copy and no memory beyond the evaluation's own.
    private var firstLayerIsReusable: Bool {
        configuration.inputDropout == 0 && norms.isEmpty && convolutions.count > 1
    }

    /// How many column blocks each layer's exchanged rows are evaluated in (`ColumnBlocks`, set on every
    /// convolution): 1, the default, evaluates layers whole; more hold less at once when memory is the limit, at
    /// one exchange and one pass over the graph per block. The same on every rank.
    public var columnBlockCount = 1 {
        didSet { for conv in convolutions { conv.columnBlockCount = columnBlockCount } }
    }

    /// Aggregates the (static) input features once, so the first layer never communicates again. Collective: all
    /// ranks call it before training. Input dropout then applies to the aggregate rather than to the features.
    public func precomputeFirstAggregation(
        _ features: LayerInput, operator op: PropagationOperator, exchange: any BoundaryExchange, context: StepContext
    ) throws {
        let dense: Matrix = switch features {
        case .dense(let m): m
        case .sparse(let s): s.matrix.dense()
        }
        var evaluation = context
        evaluation.training = false
        precomputedFirstAggregate = try convolutions[0].aggregateOnce(dense, operator: op, exchange: exchange, context: evaluation)
        convolutions[0].forgetKeptOutput()
    }

    public init(configuration c: ModelConfiguration, inputWidth: Int, outputWidth: Int, random: CounterRandom) {
        precondition(c.layers >= 1, "a model needs at least one layer")
        configuration = c
        var convs: [GraphConvolution] = []
        for l in 0..<c.layers {
            convs.append(GraphConvolution(
                layer: LayerIndex(l), aggregation: c.kind.aggregation,
                inputWidth: l == 0 ? inputWidth : c.hiddenWidth,
                outputWidth: l == c.layers - 1 ? outputWidth : c.hiddenWidth, random: random))
        }
        convolutions = convs
        norms = c.normalization == .layerNorm
            ? (0..<(c.layers - 1)).map { LayerNorm(width: c.hiddenWidth, name: "norm\($0)") } : []
        inputDropout = Dropout(rate: c.inputDropout, site: .input)
        hiddenActivations = (0..<(c.layers - 1)).map {
            ReLUDropout(dropout: Dropout(rate: c.dropout, site: .hidden(LayerIndex($0))))
        }
    }

    /// Sets each layer's `gradientListingDensity`, by layer index, and every layer's `inputGradientListingDensity`.
    public func listGradients(below density: (_ layer: Int) -> Double,
                              inputGradientsBelow inputDensity: Double = BlockColumnLists.worthwhileInputGradientDensity) {
        for (l, conv) in convolutions.enumerated() {
            conv.gradientListingDensity = density(l)
            conv.inputGradientListingDensity = inputDensity
        }
    }

    /// Sets each layer's `forwardRowsPerCall` from its index, input width and output width (nil: one call per
    /// thread).
    public func blockForwardRows(_ rowsPerCall: (_ layer: Int, _ inputWidth: Int, _ outputWidth: Int) -> Int?) {
        for (l, conv) in convolutions.enumerated() {
            conv.forwardRowsPerCall = rowsPerCall(l, conv.inputWidth, conv.outputWidth)
        }
    }

    public var parameters: [Parameter] {
        convolutions.flatMap(\.parameters) + norms.flatMap(\.parameters)
    }

    /// Layer `l`'s parameters: its convolution's and, for a hidden layer, its normalisation's. Together over all
    /// layers they are `parameters`; `backward` finishes them layer by layer, last layer first.
    public func parameters(ofLayer l: Int) -> [Parameter] {
        convolutions[l].parameters + (l < norms.count ? norms[l].parameters : [])
    }

    /// Logits for the rank's inner nodes. `nodeIDs[i]` is the global id of inner row `i` (dropout addressing).
    public func forward(
        _ features: LayerInput, nodeIDs: [Int32], operator op: PropagationOperator,
        exchange: any BoundaryExchange, context: StepContext
    ) throws -> Matrix {
        var h: LayerInput
        var firstAggregate = precomputedFirstAggregate
        if var aggregate = firstAggregate {
            inputDropout.apply(&aggregate, nodeIDs: nodeIDs, context: context)
            firstAggregate = aggregate
            h = features
        } else {
            switch features {
            case .dense(var x):
                inputDropout.apply(&x, nodeIDs: nodeIDs, context: context)
                h = .dense(x)
            case .sparse(let s):
                h = .sparse(inputDropout.apply(s, nodeIDs: nodeIDs, context: context))
            }
        }
        // The last pass's activations go before this pass allocates its own (an evaluation pass keeps them too).
        releaseRetained()
        for (l, conv) in convolutions.enumerated() {
            var out = if l == 0, let firstAggregate {
                conv.forward(precomputedAggregate: firstAggregate, input: h,
                             throughFeatures: firstLayerForwardThroughFeatures && op.haloCount == 0 ? op : nil,
                             aggregateIsFixed: firstLayerIsReusable, context: context)
            } else {
                try conv.forward(h, operator: op, exchange: exchange, inputIsFixed: l == 0 && firstLayerIsReusable,
                                 context: context)
            }
            if l == convolutions.count - 1 { return out }
            if !norms.isEmpty { norms[l].forward(&out, pool: context.pool) }
            hiddenActivations[l].forward(&out, nodeIDs: nodeIDs, context: context)
            // The evaluation's ReLU output, shared with `activations` (no copy), is what the next step's first layer
            // returns if the parameters have not changed; the step's ReLU and dropout then apply to it unchanged.
            if l == 0 && !context.training { conv.keep(activatedOutput: out) }
            activations.append(out)
            h = .dense(out)
        }
        preconditionFailure("unreachable: the last layer returns")
    }

    /// Accumulates every parameter's gradient from `dL/d(logits)` (parameters' gradients are not zeroed here).
    /// `layerFinished(l)` is called as soon as `parameters(ofLayer: l)` have their gradients, last layer first, so
    /// the caller can start reducing them while the layers below still compute. With `weightRowsFinished`, each
    /// layer also reports its neighbour weight's gradient in pieces of rows as it forms them, before its
    /// `layerFinished` (`GraphConvolution.backward`): the first layer's large weight need not wait for its end.
    ///
    /// Each activation is released as soon as the layers below no longer need it, and each gradient as soon as
    /// the next one exists (or is written over the activation it replaces), so backward holds no more than what
    /// forward kept plus the working layer's own matrices.
    public func backward(
        _ logitsGradient: consuming Matrix, operator op: PropagationOperator, exchange: any BoundaryExchange,
        context: StepContext, layerFinished: (Int) throws -> Void = { _ in },
        weightRowsFinished: GraphConvolution.WeightRowsFinished? = nil
    ) throws {
        var gradient = logitsGradient
        for l in stride(from: convolutions.count - 1, through: 0, by: -1) {
            // A hidden layer's normalisation finished its gradient in the previous iteration.
            let below = l - 1
            // Where the layer can write its input gradient over its input (the activation's output), the model lets
            // go of that output first and the layer applies the activation's backward step itself.
            let fused = l > 0 && convolutions[l].fusesActivationBackward(exchange: exchange)
            if fused { activations[below] = Matrix(rows: 0, cols: 0) }
            let g = try convolutions[l].backward(
                consume gradient, operator: op, exchange: exchange, context: context, needInputGradient: l > 0,
                activationBelow: fused ? hiddenActivations[below] : nil, weightRowsFinished: weightRowsFinished)
            try layerFinished(l)
            guard let g else { return }
            gradient = g
            if !fused {
                hiddenActivations[below].backward(&gradient, output: activations[below], context: context)
                // Layer l's input, and the activation's output: nothing below needs it.
                activations[below] = Matrix(rows: 0, cols: 0)
            }
            if !norms.isEmpty { norms[below].backward(&gradient, pool: context.pool) }
        }
    }

    /// Drops what forward kept for backward: the activations and every layer's saved input and aggregate.
    private func releaseRetained() {
        activations.removeAll(keepingCapacity: true)
        for conv in convolutions { conv.releaseRetained() }
    }

    public func zeroGradients() { for p in parameters { p.zeroGradient() } }

    /// Counts the parameters, their gradients, a precomputed first aggregate (as input features) and what forward
    /// keeps for backward. Count the input features first: a layer's saved input may be the features themselves.
    public func tally(into tally: inout MemoryTally) {
        for p in parameters {
            tally.add(p.value, as: .parameters)
            tally.add(p.gradient, as: .gradients)
        }
        if let precomputedFirstAggregate { tally.add(precomputedFirstAggregate, as: .inputFeatures) }
        for activation in activations { tally.add(activation, as: .activations) }
        for conv in convolutions { conv.tallyRetained(into: &tally) }
        for norm in norms { norm.tallyRetained(into: &tally) }
    }
}
