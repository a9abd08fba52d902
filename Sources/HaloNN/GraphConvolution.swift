import Dispatch
import HaloGraph
import HaloTensor

/// A message-passing layer: GCN (`Â·H·W + b`) or GraphSAGE-mean (`H·W_self + mean(H)·W_neigh + b`).
///
/// Aggregation and the weight product commute, so the layer aggregates whichever side is narrower: it multiplies
/// by the weight first unless that widens the rows (always for sparse input features), otherwise it aggregates the
/// input first. The matrix that is aggregated is the one exchanged with other ranks, so the choice also picks the
/// smaller message. It depends only on the widths, so every rank makes the same one.
///
/// At equal widths both orders do the same products and send the same bytes, but only aggregate-first must keep
/// its aggregate (nodes × width) for the weight gradient: transforming first keeps nothing but the input, and its
/// backward pass can turn the aggregated gradient into the input gradient in place. At 1M nodes and width 256
/// that is 1 GB held and 1 GB less at the backward pass's peak per equal-width layer (docs/scale.md).
///
/// What forward keeps is released by backward as soon as it has been used: each forward pass serves one backward.
///
/// When memory is the limit, a layer can be evaluated in column blocks (`columnBlockCount`, `ColumnBlocks`):
/// multiply, exchange and aggregate one block of columns at a time, so the rows with their halo and the messages
/// hold a block's columns. On one rank with more rows than a row block, a transform-first layer above layer 0
/// forms its aggregated gradient a block of rows at a time and writes the input gradient over its input (the
/// activation's output; `backwardByRowBlocks`). Both compute the
/// same numbers as the whole layer, up to the order of floating-point sums.
public final class GraphConvolution {
    public let layer: LayerIndex
    public let aggregation: Aggregation
    public let inputWidth: Int
    public let outputWidth: Int
    /// Weight applied after (or before) aggregation.
    public let neighborWeight: Parameter
    /// SAGE's separate weight for the node's own row; nil for GCN.
    public let selfWeight: Parameter?
    public let bias: Parameter

    private var input: LayerInput?
    /// Aggregate-first only: `op · [H; H_halo]`, needed for the weight gradient.
    private var aggregated = Matrix(rows: 0, cols: 0)
    /// Whether the last forward pass used an aggregate computed before training (no exchange in this layer).
    private var usedPrecomputedAggregate = false
    /// An evaluation's output from a fixed input, activated, for the next pass with the same parameters.
    private var keptOutput: KeptLayerOutput?
    /// How the last forward pass formed its output, when that output may be kept (`keep(activatedOutput:)`): an
    /// evaluation pass from a fixed input.
    private var keepableRoute: KeptLayerOutput.Route?
    /// How many forward passes took a kept output instead of computing it (`keep(activatedOutput:)`).
    public private(set) var reusedOutputCount = 0
    /// The densest output gradient whose weight-gradient products go by its non-zeros' lists rather than GEMM
    /// (`BlockColumnLists`): the constant by default, the host's measured break-even at this layer's input width in
    /// a calibrated run (`GNNModel.listGradients(below:inputGradientsBelow:)`).
    public var gradientListingDensity = BlockColumnLists.worthwhileDensity
    /// The same for the input gradient `G·Wᵀ` (aggregate-first layers, SAGE's self term), whose listed product
    /// breaks even much earlier.
    public var inputGradientListingDensity = BlockColumnLists.worthwhileInputGradientDensity
    /// Rows per OpenBLAS call in the forward products with the weights (dense `X·W`, the aggregate's GEMM), or
    /// nil for one call per thread: set from the host's measured decision (`GEMMRowBlocking`) by a calibrated run.
    /// The same numbers either way (each row's product does not depend on how rows are grouped into calls).
    public var forwardRowsPerCall: Int?
    /// The pieces of rows in which backward forms the neighbour weight's gradient when its caller streams it
    /// (`backward(…, weightRowsFinished:)`): whole by default, reported as soon as it is formed (before the input
    /// gradient). Every rank must use the same pieces (each is one sum over ranks); a calibrated multi-rank run
    /// cuts the first layer's (`WeightGradientStreaming`, or `WeightGradientSchedule` from the measured sum).
    public var weightGradientPieces: WeightGradientPieces {
        didSet {
            precondition(weightGradientPieces.rows == inputWidth,
                         "\(layer): weight-gradient pieces cover \(weightGradientPieces.rows) rows, the weight has \(inputWidth)")
        }
    }
    /// Seconds the last backward pass spent forming the neighbour weight's gradient piece by piece (the products
    /// alone, not what the caller did with each piece); 0 until a backward pass has reported pieces. Training
    /// compares it with the calibrated estimate: on a loaded host the product can take longer than the
    /// calibration measured, and the cut should know that (`WeightGradientSchedule`).
    public private(set) var lastReportedWeightGradientSeconds = 0.0
    /// How many column blocks the layer's exchanged rows are evaluated in (`ColumnBlocks`): 1 evaluates the layer
    /// whole; more hold a block's columns of the halo rows and messages at a time, when memory is the limit.
    /// Every rank must use the same count (each block is one exchange).
    public var columnBlockCount = 1 {
        didSet { precondition(columnBlockCount >= 1, "\(layer): column block count must be at least 1, got \(columnBlockCount)") }
    }

    public init(
        layer: LayerIndex, aggregation: Aggregation, inputWidth: Int, outputWidth: Int, random: CounterRandom
    ) {
        self.layer = layer
        self.aggregation = aggregation
        self.inputWidth = inputWidth
        self.outputWidth = outputWidth
        let name = "conv\(layer.rawValue)"
        neighborWeight = Parameter(
            name: name + (aggregation == .mean ? ".weight_neighbor" : ".weight"),
            value: xavierUniform(rows: inputWidth, cols: outputWidth, random: random, layer: layer, slot: 0))
        selfWeight = aggregation == .mean
            ? Parameter(name: name + ".weight_self",
                        value: xavierUniform(rows: inputWidth, cols: outputWidth, random: random, layer: layer, slot: 1))
            : nil
        bias = Parameter(name: name + ".bias", value: Matrix(rows: 1, cols: outputWidth))
        weightGradientPieces = .whole(rows: inputWidth)
    }

    public var parameters: [Parameter] { [neighborWeight] + (selfWeight.map { [$0] } ?? []) + [bias] }

    /// Whether this layer multiplies by the weight before aggregating for an input of this kind.
    public func transformsFirst(sparseInput: Bool) -> Bool { sparseInput || outputWidth <= inputWidth }

    /// The width of the rows this layer exchanges.
    public func messageWidth(sparseInput: Bool) -> Int { transformsFirst(sparseInput: sparseInput) ? outputWidth : inputWidth }

    /// The layer's output for the rank's inner rows: the exchange brings the halo rows of whichever side it
    /// aggregates (see the type's comment), central rows aggregated while the messages travel.
    ///
    /// With `inputIsFixed` (the caller passes the same input on every pass: the features, no input dropout), no
    /// rank to exchange with, and a layer that transforms first (so backward needs nothing but the input), an
    /// evaluation's kept output serves the next pass with the same parameters, as in `forward(precomputedAggregate:…)`.
    public func forward(
        _ x: LayerInput, operator op: PropagationOperator, exchange: any BoundaryExchange, inputIsFixed: Bool = false,
        context: StepContext
    ) throws -> Matrix {
        precondition(op.aggregation == aggregation, "\(layer) aggregates with \(aggregation), operator is \(op.aggregation)")
        precondition(x.rows == op.innerCount && x.width == inputWidth, "\(layer): input \(x.rows)×\(x.width), expected \(op.innerCount)×\(inputWidth)")
        releaseRetained()
        input = x
        usedPrecomputedAggregate = false
        let reusable = inputIsFixed && !exchange.crossesRanks && transformsFirst(sparseInput: x.isSparse)
        return try reusingKeptOutput(if: reusable, route: .wholeGraph(columnBlocks: columnBlockCount), context: context) {
            try computeForward(x, operator: op, exchange: exchange, context: context)
        }
    }

    private func computeForward(
        _ x: LayerInput, operator op: PropagationOperator, exchange: any BoundaryExchange, context: StepContext
    ) throws -> Matrix {
        let pool = context.pool
        let inner = op.innerCount, central = op.centralCount
        // Both products below write every inner row, so the outputs start uninitialized.
        var out = Matrix.uninitialized(rows: inner, cols: outputWidth)
        let blocks = columnBlocks(sparseInput: x.isSparse)
        // `rows` (inner rows filled) gets its halo rows from the exchange and is aggregated into columns
        // `column…` of `target`: central rows while the messages travel (when the exchange overlaps), then the rest.
        func aggregate(_ rows: inout Matrix, into target: inout Matrix, column: Int) throws {
            rows.appendZeroRows(op.haloCount)
            try exchange.exchangeForward(layer, rows: &rows, context: context) { ready in
                op.forward.multiply(ready, into: &target, rows: 0..<central, outputColumn: column, pool: pool)
            }
            op.forward.multiply(rows, into: &target, rows: central..<inner, outputColumn: column, pool: pool)
        }
        if transformsFirst(sparseInput: x.isSparse) {
            for block in blocks.ranges {
                let weight = blocks.isSplit ? neighborWeight.value.columns(block) : neighborWeight.value
                var rows = Matrix.uninitialized(rows: inner, cols: block.count, reservingRows: inner + op.haloCount)
                x.multiply(weight, into: &rows, accumulate: false, pool: pool, rowsPerCall: forwardRowsPerCall)
                try aggregate(&rows, into: &out, column: block.lowerBound)
            }
        } else {
            guard case .dense(let dense) = x else { preconditionFailure("aggregate-first needs dense input") }
            // Every inner row is written by the products below.
            aggregated = Matrix.uninitialized(rows: inner, cols: inputWidth)
            for block in blocks.ranges {
                var rows = blocks.isSplit ? dense.columns(block, reservingRows: inner + op.haloCount) : dense
                try aggregate(&rows, into: &aggregated, column: block.lowerBound)
            }
            gemm(aggregated, neighborWeight.value, into: &out, pool: pool, rowsPerCall: forwardRowsPerCall)
        }
        if let selfWeight {
            x.multiply(selfWeight.value, into: &out, accumulate: true, pool: pool, rowsPerCall: forwardRowsPerCall)
        }
        addRowVector(bias.value.storage, to: &out, pool: pool)
        return out
    }

    /// `op · [X; X_halo]` for a dense input that never changes (the input features): one full-precision exchange.
    /// A first layer given this aggregate by `forward(precomputedAggregate:…)` then needs no communication at all.
    public func aggregateOnce(
        _ x: Matrix, operator op: PropagationOperator, exchange: any BoundaryExchange, context: StepContext
    ) throws -> Matrix {
        precondition(!context.training, "the one-off aggregation exchanges at full precision (an evaluation context)")
        var rows = x
        rows.appendZeroRows(op.haloCount)
        var result = Matrix(rows: op.innerCount, cols: x.cols)
        try exchange.exchangeForward(layer, rows: &rows, context: context) { _ in }
        op.forward.multiply(rows, into: &result, pool: context.pool)
        return result
    }

    /// The layer's output from a precomputed `aggregate = op · [X; X_halo]` (see `aggregateOnce`); `x` is the
    /// layer's own input, used by SAGE's self term. No exchange happens, forward or backward.
    ///
    /// With `throughFeatures`, an operator without halo rows (one process holding the whole graph), the product is
    /// formed as `op · (x · W)` instead of `aggregate · W`: the same value up to rounding order, and cheaper when x
    /// is sparse (lookup or CSR: the `hybrid` path of the first-layer plan). The aggregate still serves the weight
    /// gradient.
    ///
    /// With `aggregateIsFixed` (the caller passes the same aggregate and input on every pass: no input dropout), the
    /// output an evaluation pass keeps (`keep(activatedOutput:)`) is returned instead of computed by the next pass
    /// whose parameters are the same bits: training's next step, after the evaluation that followed the optimiser
    /// step.
    public func forward(precomputedAggregate aggregate: Matrix, input x: LayerInput,
                        throughFeatures op: PropagationOperator? = nil, aggregateIsFixed: Bool = false,
                        context: StepContext) -> Matrix {
        precondition(aggregate.cols == inputWidth && aggregate.rows == x.rows, "\(layer): precomputed aggregate has the wrong shape")
        releaseRetained()
        input = x
        aggregated = aggregate
        usedPrecomputedAggregate = true
        return reusingKeptOutput(if: aggregateIsFixed, route: op == nil ? .aggregateProduct : .throughFeatures,
                                 context: context) {
            computeFromAggregate(aggregate, input: x, throughFeatures: op, context: context)
        }
    }

    /// The kept output (handed over: the caller owns it) if `fixedInput` and it was formed on `route` from the
    /// parameters' current bits, else `compute()`'s. Any kept output is dropped either way.
    private func reusingKeptOutput(if fixedInput: Bool, route: KeptLayerOutput.Route, context: StepContext,
                                   compute: () throws -> Matrix) rethrows -> Matrix {
        keepableRoute = fixedInput && !context.training ? route : nil
        defer { keptOutput = nil }
        if fixedInput, let kept = keptOutput, kept.matches(parameters, route: route) {
            reusedOutputCount += 1
            return kept.output
        }
        return try compute()
    }

    /// Keeps the last forward pass's output, as the caller left it after an activation it applies again to what
    /// the next pass returns (ReLU: applied twice is applied once), for the next pass with the same parameters, if
    /// that pass was an evaluation from a fixed input (else nothing is kept). The caller may go on reading
    /// `output`; it shares the buffer, so writing it would copy it.
    public func keep(activatedOutput output: Matrix) {
        guard let route = keepableRoute else { return }
        precondition(output.rows == (input?.rows ?? -1) && output.cols == outputWidth, "\(layer): kept output of the wrong shape")
        keptOutput = KeptLayerOutput(output: output, parameters: parameters, route: route)
    }

    /// Forgets a kept output: the input it was computed from is replaced.
    func forgetKeptOutput() { keptOutput = nil }

    private func computeFromAggregate(_ aggregate: Matrix, input x: LayerInput, throughFeatures op: PropagationOperator?,
                                      context: StepContext) -> Matrix {
        var out: Matrix
        if let op {
            precondition(op.haloCount == 0 && op.innerCount == x.rows, "\(layer): a forward through the features needs the whole graph's operator")
            var rows = Matrix.uninitialized(rows: x.rows, cols: outputWidth)
            x.multiply(neighborWeight.value, into: &rows, accumulate: false, pool: context.pool,
                       rowsPerCall: forwardRowsPerCall)
            out = Matrix.uninitialized(rows: x.rows, cols: outputWidth)
            op.forward.multiply(rows, into: &out, pool: context.pool)
        } else {
            // β = 0 overwrites every element.
            out = Matrix.uninitialized(rows: aggregate.rows, cols: outputWidth)
            gemm(aggregate, neighborWeight.value, into: &out, pool: context.pool, rowsPerCall: forwardRowsPerCall)
        }
        if let selfWeight {
            x.multiply(selfWeight.value, into: &out, accumulate: true, pool: context.pool, rowsPerCall: forwardRowsPerCall)
        }
        addRowVector(bias.value.storage, to: &out, pool: context.pool)
        return out
    }

    /// Accumulates the parameter gradients from `dL/d(output)`; returns `dL/d(input)` if `needInputGradient`.
    ///
    /// `gradient` is consumed: its buffer is freed as soon as it is no longer needed (pass it with `consume` for
    /// that to happen), and what forward kept is released on the way, so the pass holds as little as it can.
    ///
    /// `activationBelow`, when given, is the ReLU/dropout whose output is this layer's input: its backward step is
    /// then applied here, and the input gradient is written over the input itself, a block of rows at a time, where
    /// the two would otherwise coexist (`fusesActivationBackward`). The caller must not hold the input then.
    ///
    /// `weightRowsFinished`, when given, is called with the neighbour weight and each piece of rows of its gradient
    /// as soon as that piece is complete (`WeightGradientPieces`, before the input gradient is formed), so the
    /// caller can start summing it over ranks. A layer evaluated in column blocks forms whole rows only at its end
    /// and reports nothing; the caller then treats the weight with the layer's other parameters.
    public func backward(
        _ gradient: consuming Matrix, operator op: PropagationOperator, exchange: any BoundaryExchange,
        context: StepContext, needInputGradient: Bool, activationBelow: ReLUDropout? = nil,
        weightRowsFinished: WeightRowsFinished? = nil
    ) throws -> Matrix? {
        guard let x = input else { preconditionFailure("\(layer): backward without a forward pass before it") }
        defer { releaseRetained() }
        let pool = context.pool
        let inner = op.innerCount, halo = op.haloCount
        let db = columnSums(gradient)
        for j in 0..<db.count { bias.gradient.storage[j] += db[j] }

        // The gradient with respect to the aggregated rows [inner; halo] is opᵀ·(upstream). Its halo part goes to
        // the owners first, so their messages travel while the inner part is computed.
        // Of `upstream`'s `columns` only (a column block), when the layer is evaluated in blocks.
        func propagateBack(_ upstream: Matrix, columns: Range<Int>) throws -> Matrix {
            // Both are overwritten whole: by the halo rows' product, and by the local product before received
            // contributions are added.
            var haloGradient = Matrix.uninitialized(rows: halo, cols: columns.count)
            op.backward.multiply(upstream, columns: columns, into: &haloGradient, rows: inner..<(inner + halo),
                                 outputRow: 0, pool: pool)
            var innerGradient = Matrix.uninitialized(rows: inner, cols: columns.count)
            try exchange.exchangeBackward(layer, haloGradient: haloGradient, innerGradient: &innerGradient, context: context) { local in
                op.backward.multiply(upstream, columns: columns, into: &local, rows: 0..<inner, pool: pool)
            }
            return innerGradient
        }
        let blocks = columnBlocks(sparseInput: x.isSparse)

        // The products that multiply `gradient` itself by a dense matrix (weight gradients, and the input gradient
        // of an aggregate-first layer and of SAGE's self term): skipping its zeros pays when a ReLU and dropout left
        // most of them (`BlockColumnLists`). Listed once for all of them, up to the densest any of them takes; each
        // product uses the lists only below its own threshold (weight gradients `gradientListingDensity`, the input
        // gradient `inputGradientListingDensity`).
        let aggregatesFirst = usedPrecomputedAggregate || !transformsFirst(sparseInput: x.isSparse)
        let listsServeInputGradient = needInputGradient && (aggregatesFirst || selfWeight != nil)
        let listingLimit = listsServeInputGradient
            ? max(gradientListingDensity, inputGradientListingDensity) : gradientListingDensity
        let listed = inputWidth >= BlockColumnLists.tileWidth && (aggregatesFirst || (selfWeight != nil && !x.isSparse))
            ? BlockColumnLists.ifWorthwhile(gradient, maximumDensity: listingLimit, pool: pool) : nil
        let weightLists = listed.flatMap { $0.density <= gradientListingDensity ? $0 : nil }

        // SAGE's self weight: its gradient needs only the layer's input and the upstream gradient, on every path.
        if let selfWeight { x.accumulateTransposedProduct(gradient, listed: weightLists, into: &selfWeight.gradient, pool: pool) }

        var inputGradient: Matrix?
        if usedPrecomputedAggregate {
            precondition(!needInputGradient, "\(layer): a precomputed aggregate only serves the first layer")
            try formNeighborWeightGradient(reporting: weightRowsFinished) { rows in
                addTransposedProduct(aggregated, gradient, listed: weightLists, into: &neighborWeight.gradient, pool: pool,
                                     rows: rows)
            }
        } else if needInputGradient, let activationBelow, backsByRowBlocks(rows: inner, exchange: exchange),
                  transformsFirst(sparseInput: false) {
            // One rank: the aggregated gradient is formed a block of rows at a time and never whole, and the input
            // gradient is written over the input (the model has let go of it: `fusesActivationBackward`).
            input = nil
            guard case .dense(var output) = consume x else { preconditionFailure("a fused backward needs a dense input") }
            backwardByRowBlocks(gradient, over: &output, operator: op, activation: activationBelow, context: context)
            return output
        } else if transformsFirst(sparseInput: x.isSparse) && blocks.isSplit {
            // One block of the aggregated gradient at a time: its columns of the weight gradient, and its share of
            // the input gradient, which needs a matrix of its own, except for GCN at equal widths: there each
            // block's aggregated gradient replaces the upstream gradient's columns (read by that block's products
            // only, and nothing else needs them), and the input gradient is formed in place over the whole.
            let inPlace = needInputGradient && selfWeight == nil && inputWidth == outputWidth
            if needInputGradient && !inPlace { inputGradient = Matrix.uninitialized(rows: inner, cols: inputWidth) }
            for (i, block) in blocks.ranges.enumerated() {
                let transformedGradient = try propagateBack(gradient, columns: block)
                var weightGradient = Matrix(rows: inputWidth, cols: block.count)
                x.accumulateTransposedProduct(transformedGradient, listed: nil, into: &weightGradient, pool: pool)
                neighborWeight.gradient.setColumns(block, from: weightGradient, accumulate: true)
                if inPlace {
                    gradient.setColumns(block, from: transformedGradient)
                } else if needInputGradient {
                    gemm(transformedGradient, neighborWeight.value.columns(block), into: &inputGradient!, transposeB: true,
                         beta: i == 0 ? 0 : 1, pool: pool)
                }
            }
            if inPlace {
                multiplyRowsInPlace(&gradient, by: neighborWeight.value, transposeB: true, pool: pool)
                inputGradient = gradient
                gradient = Matrix(rows: 0, cols: 0)
            }
        } else if transformsFirst(sparseInput: x.isSparse) {
            // The gradient is aggregated before it meets the input, which makes it dense: no listing.
            var transformedGradient = try propagateBack(gradient, columns: 0..<outputWidth)
            // GCN is done with the upstream gradient here; SAGE's self term still needs it below.
            if selfWeight == nil { gradient = Matrix(rows: 0, cols: 0) }
            try formNeighborWeightGradient(reporting: weightRowsFinished) { rows in
                x.accumulateTransposedProduct(transformedGradient, listed: nil, into: &neighborWeight.gradient, pool: pool,
                                              rows: rows)
            }
            if needInputGradient, let activationBelow {
                precondition(inputWidth != outputWidth, "\(layer): across ranks only a narrowing layer fuses its activation's backward")
                input = nil
                guard case .dense(var output) = consume x else { preconditionFailure("a fused backward needs a dense input") }
                formInputGradient(over: &output, transformedGradient: transformedGradient,
                                  upstream: selfWeight == nil ? nil : gradient, activation: activationBelow, context: context)
                return output
            }
            if needInputGradient {
                if inputWidth == outputWidth {
                    multiplyRowsInPlace(&transformedGradient, by: neighborWeight.value, transposeB: true, pool: pool)
                    inputGradient = consume transformedGradient
                } else {
                    inputGradient = matmul(transformedGradient, neighborWeight.value, transposeB: true, pool: pool)
                }
            }
        } else {
            try formNeighborWeightGradient(reporting: weightRowsFinished) { rows in
                addTransposedProduct(aggregated, gradient, listed: weightLists, into: &neighborWeight.gradient, pool: pool,
                                     rows: rows)
            }
            aggregated = Matrix(rows: 0, cols: 0)
            // The weight gradient needs only local rows here: without an input gradient to return (the first
            // layer), nothing has to travel back.
            if needInputGradient {
                var aggregatedGradient = Matrix.uninitialized(rows: gradient.rows, cols: inputWidth)
                multiplyTransposedWeight(gradient, neighborWeight.value, listed: listed, into: &aggregatedGradient,
                                         listedBelow: inputGradientListingDensity, pool: pool)
                if blocks.isSplit {
                    // A block's columns are read by its own products only, so its result can replace them.
                    for block in blocks.ranges {
                        let blockGradient = try propagateBack(aggregatedGradient, columns: block)
                        aggregatedGradient.setColumns(block, from: blockGradient)
                    }
                    inputGradient = consume aggregatedGradient
                } else {
                    inputGradient = try propagateBack(aggregatedGradient, columns: 0..<inputWidth)
                }
            }
        }
        if let selfWeight, needInputGradient {
            multiplyTransposedWeight(gradient, selfWeight.value, listed: listed, into: &inputGradient!, accumulate: true,
                                     listedBelow: inputGradientListingDensity, pool: pool)
        }
        return inputGradient
    }

    /// Called by `backward` with the neighbour weight and a piece of rows of its gradient that is complete.
    public typealias WeightRowsFinished = (_ weight: Parameter, _ rows: Range<Int>) throws -> Void

    /// Adds the neighbour weight's gradient through `product`, which adds the rows it is given (nil: all): whole
    /// when no one listens, otherwise a piece at a time (`WeightGradientPieces`), reporting each piece.
    private func formNeighborWeightGradient(
        reporting finished: WeightRowsFinished?, _ product: (Range<Int>?) -> Void
    ) throws {
        guard let finished else { return product(nil) }
        var nanoseconds: UInt64 = 0
        for rows in weightGradientPieces.ranges {
            let start = DispatchTime.now().uptimeNanoseconds
            product(rows)
            nanoseconds += DispatchTime.now().uptimeNanoseconds - start
            try finished(neighborWeight, rows)
        }
        lastReportedWeightGradientSeconds = Double(nanoseconds) / 1e9
    }

    /// Whether `backward(…, activationBelow:)` writes the input gradient over the input: a dense input, transformed
    /// first into a narrower output and evaluated whole (at equal widths the gradient is formed in place over its
    /// own buffer instead, which already keeps one matrix less), or on one rank with more rows than a row block,
    /// at any widths (`backwardByRowBlocks`). The model passes the activation only to hidden layers above layer 0.
    public func fusesActivationBackward(exchange: any BoundaryExchange) -> Bool {
        guard case .dense(let x) = input, !usedPrecomputedAggregate, transformsFirst(sparseInput: false) else { return false }
        return backsByRowBlocks(rows: x.rows, exchange: exchange)
            || (inputWidth != outputWidth && !columnBlocks(sparseInput: false).isSplit)
    }

    /// Rows per block of the one-rank backward pass (`backwardByRowBlocks`).
    public static let backwardBlockRows = 8192

    /// Whether a backward pass over `rows` rows goes by row blocks: on one rank, when there is more than one block
    /// (below that, the whole matrices are no larger than the blocks' buffers).
    func backsByRowBlocks(rows: Int, exchange: any BoundaryExchange) -> Bool {
        !exchange.crossesRanks && rows > Self.backwardBlockRows
    }

    /// The column blocks this layer's exchanged rows are evaluated in for an input of this kind: `columnBlockCount`
    /// blocks of its message width, or fewer where that width is narrow (`ColumnBlocks`).
    public func columnBlocks(sparseInput: Bool) -> ColumnBlocks {
        ColumnBlocks(width: messageWidth(sparseInput: sparseInput), count: columnBlockCount)
    }

    /// `output ← activation′ ⊙ (TG·W_neighᵀ [+ G·W_selfᵀ])`, where `output` holds the activation's forward output
    /// (its mask), a block of `backwardBlockRows` rows at a time.
    private func formInputGradient(
        over output: inout Matrix, transformedGradient: Matrix, upstream: Matrix?, activation: ReLUDropout,
        context: StepContext
    ) {
        var buffers = RowBlockBuffers(), transformedRows = Matrix(rows: 0, cols: 0)
        for range in Self.rowBlocks(output.rows) {
            transformedGradient.copyRows(range, into: &transformedRows)
            writeInputGradient(rows: range, transformed: transformedRows, upstream: upstream, buffers: &buffers,
                               over: &output, activation: activation, context: context)
        }
    }

    /// Backward of a transform-first layer on one rank (no halo), a block of rows `R` at a time through buffers of
    /// `backwardBlockRows` rows: `TG_R = (opᵀ·G)_R`, `W_neigh′ += H_Rᵀ·TG_R`, and the input gradient
    /// `activation′ ⊙ (TG_R·W_neighᵀ [+ G_R·W_selfᵀ])` written over `H_R`, the activation's output, once its rows
    /// have served the weight gradient and the mask. The aggregated gradient (nodes × width) never exists whole:
    /// the pass holds the upstream gradient and the input, which forward kept anyway.
    private func backwardByRowBlocks(
        _ gradient: Matrix, over output: inout Matrix, operator op: PropagationOperator, activation: ReLUDropout,
        context: StepContext
    ) {
        precondition(op.haloCount == 0, "\(layer): row-block backward is for a rank without halo rows")
        var buffers = RowBlockBuffers(), transformed = Matrix(rows: 0, cols: 0), inputRows = Matrix(rows: 0, cols: 0)
        for range in Self.rowBlocks(output.rows) {
            if transformed.rows != range.count { transformed = Matrix.uninitialized(rows: range.count, cols: outputWidth) }
            op.backward.multiply(gradient, into: &transformed, rows: range, outputRow: 0, pool: context.pool)
            output.copyRows(range, into: &inputRows)
            // The aggregated gradient is dense: GEMM.
            addTransposedProduct(inputRows, transformed, listed: nil, into: &neighborWeight.gradient, pool: context.pool)
            writeInputGradient(rows: range, transformed: transformed, upstream: selfWeight == nil ? nil : gradient,
                               buffers: &buffers, over: &output, activation: activation, context: context)
        }
    }

    /// The blocks of `backwardBlockRows` rows of `rows` rows.
    private static func rowBlocks(_ rows: Int) -> [Range<Int>] {
        stride(from: 0, to: rows, by: backwardBlockRows).map { $0..<min($0 + backwardBlockRows, rows) }
    }

    /// What the row-block loops reuse from one block to the next (GEMM takes whole matrices, so a block's rows are
    /// copied into a buffer of their own).
    private struct RowBlockBuffers {
        var inputGradient = Matrix(rows: 0, cols: 0)
        var upstreamRows = Matrix(rows: 0, cols: 0)
    }

    /// Rows `range` of `activation′ ⊙ (TG·W_neighᵀ [+ G·W_selfᵀ])`, from `transformed` (those rows of TG) and
    /// `upstream` (all of G, for SAGE's self term), written over the same rows of `output`.
    private func writeInputGradient(
        rows range: Range<Int>, transformed: Matrix, upstream: Matrix?, buffers: inout RowBlockBuffers,
        over output: inout Matrix, activation: ReLUDropout, context: StepContext
    ) {
        if buffers.inputGradient.rows != range.count {
            buffers.inputGradient = Matrix.uninitialized(rows: range.count, cols: inputWidth)
        }
        gemm(transformed, neighborWeight.value, into: &buffers.inputGradient, transposeB: true, pool: context.pool)
        if let upstream, let selfWeight {
            upstream.copyRows(range, into: &buffers.upstreamRows)
            gemm(buffers.upstreamRows, selfWeight.value, into: &buffers.inputGradient, transposeB: true, beta: 1,
                 pool: context.pool)
        }
        activation.backward(buffers.inputGradient, overwritingOutput: &output, fromRow: range.lowerBound, context: context)
    }

    /// Drops what forward kept for backward.
    func releaseRetained() {
        input = nil
        aggregated = Matrix(rows: 0, cols: 0)
    }
}

extension GraphConvolution {
    /// What this layer keeps from forward for backward (its input and its aggregate) and a kept output.
    func tallyRetained(into tally: inout MemoryTally) {
        input?.tally(into: &tally, as: .activations)
        tally.add(aggregated, as: .activations)
        keptOutput?.tally(into: &tally)
    }
}
