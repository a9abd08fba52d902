import Glibc
import HaloTensor

/// A layer's output from inputs that stay the same from pass to pass, kept with the exact parameter values it was
/// computed from, so that a later pass with the same parameters can take it instead of computing it again.
///
/// Training evaluates the model after each optimiser step, with the parameters the next step then starts from.
/// A first layer with no input dropout, multiplying a precomputed aggregate or, in one process, the features
/// themselves, has the same inputs in both passes, so the next step's first-layer forward would repeat the
/// evaluation's bit for bit (`GNNModel`). The parameters are compared by their bits, not by `==` (which would
/// take −0 for 0), so a kept output is only ever the output the layer would have computed.
///
/// Measured on 2026-12-07 (Zen 4, 2 threads): keeping a copy of the raw output instead cost more than it saved on
/// a 1M-node graph (a 1 GB copy per evaluation; evaluation 6.5 → 9.6–10.2 s), so what is kept is the evaluation's
/// activated output itself, shared with the model's activations.
struct KeptLayerOutput {
    /// The layer's output as the model left it after its activation (see `GraphConvolution.keep(activatedOutput:)`).
    let output: Matrix
    /// How the output was formed: the routes round differently, so an output serves only its own route.
    let route: Route
    private let parameterValues: [[Float]]

    enum Route: Equatable {
        /// The precomputed aggregate times the weight.
        case aggregateProduct
        /// The aggregate of the features times the weight (`Â·(X·W)`), beside a precomputed aggregate.
        case throughFeatures
        /// The layer's own pass over its input, with no rank to exchange with, in this many column blocks.
        case wholeGraph(columnBlocks: Int)
    }

    init(output: Matrix, parameters: [Parameter], route: Route) {
        self.output = output
        self.route = route
        parameterValues = parameters.map(\.value.storage)
    }

    /// Whether `parameters` hold, bit for bit, the values this output was computed from, on the same route.
    func matches(_ parameters: [Parameter], route: Route) -> Bool {
        guard route == self.route, parameters.count == parameterValues.count else { return false }
        for (parameter, kept) in zip(parameters, parameterValues) {
            let same = parameter.value.storage.withUnsafeBytes { now in
                kept.withUnsafeBytes { then in
                    now.count == then.count && (now.isEmpty || memcmp(now.baseAddress!, then.baseAddress!, now.count) == 0)
                }
            }
            if !same { return false }
        }
        return true
    }

    /// The output's bytes. The parameter values share the parameters' storage (the kept output is dropped by the
    /// next forward pass, before the optimiser can write them), so they are the parameters' to count.
    func tally(into tally: inout MemoryTally) {
        tally.add(output, as: .activations)
    }
}
