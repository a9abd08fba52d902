import HaloGraph
import HaloNN
import HaloTensor
import HaloTestSupport
import XCTest

/// An exchange for one rank that behaves as if rows crossed ranks (no halo rows, but the layer takes its
/// multi-rank paths: whole or column-blocked aggregated gradients, no row-block backward).
final class CrossRankExchange: BoundaryExchange {
    func exchangeForward(_ layer: LayerIndex, rows: inout Matrix, context: StepContext, overlapping: (Matrix) -> Void) throws {
        overlapping(rows)
    }

    func exchangeBackward(_ layer: LayerIndex, haloGradient: Matrix, innerGradient: inout Matrix, context: StepContext,
                          overlapping: (inout Matrix) -> Void) throws {
        overlapping(&innerGradient)
    }
}

/// Layers evaluated in column blocks (`GraphConvolution.columnBlockCount`), and on one rank by row blocks in
/// backward, compute what they compute whole: the same outputs, parameter gradients and input gradients, on every
/// code path (transform-first and aggregate-first, dense and sparse input, GCN and SAGE, narrowing with the fused
/// activation backward), and the blocked gradients pass a finite-difference check of their own.
final class ColumnBlockedLayerTests: XCTestCase {
    private let nodes = 11, classes = 3

    private struct Result {
        var logits: Matrix
        var gradients: [Matrix]
    }

    private func model(
        _ kind: ModelConfiguration.Kind, inputWidth: Int, hidden: Int, layers: Int, blocks: Int
    ) -> GNNModel {
        let configuration = ModelConfiguration(kind: kind, layers: layers, hiddenWidth: hidden, dropout: 0.3,
                                               inputDropout: 0.1, normalization: .layerNorm)
        let model = GNNModel(configuration: configuration, inputWidth: inputWidth, outputWidth: classes,
                             random: CounterRandom(seed: 5))
        var rng = TestRNG(seed: 6)
        for p in model.parameters where p.name.hasSuffix(".bias") || p.name.hasSuffix(".shift") {
            p.value = randomMatrix(p.value.rows, p.value.cols, &rng, range: -0.3...0.3)
        }
        model.columnBlockCount = blocks
        return model
    }

    private func step(_ model: GNNModel, _ features: LayerInput, _ op: PropagationOperator, _ weights: Matrix,
                      exchange: any BoundaryExchange, context: StepContext) throws -> Result {
        model.zeroGradients()
        let logits = try model.forward(features, nodeIDs: (0..<Int32(nodes)).map { 7 * $0 }, operator: op,
                                       exchange: exchange, context: context)
        try model.backward(weights, operator: op, exchange: exchange, context: context)
        return Result(logits: logits, gradients: model.parameters.map(\.gradient))
    }

    func testBlockedModelMatchesWholeModel() throws {
        var rng = TestRNG(seed: 501)
        let graph = randomGraph(nodes: nodes, edges: 40, &rng)
        let context = StepContext(epoch: 3, training: true, random: CounterRandom(seed: 2), pool: ComputePool(threads: 2))
        // (features, hidden): 100 → 96 transforms first in three blocks of 32; 64 → 96 aggregates first in two;
        // the hidden layers are equal-width (transform first), the last narrows to the classes (fused backward).
        for (inputWidth, hidden) in [(100, 96), (64, 96), (70, 64)] {
            for sparse in [false, true] {
                let dense = randomMatrix(nodes, inputWidth, &rng)
                let features: LayerInput = sparse
                    ? .sparse(SparseFeatures(randomSparse(rows: nodes, cols: inputWidth, perRow: 9, &rng)))
                    : .dense(dense)
                let weights = randomMatrix(nodes, classes, &rng)
                for kind in ModelConfiguration.Kind.allCases {
                    let op = PropagationOperator.wholeGraph(graph, kind.aggregation)
                    // The reference: whole layers, as across ranks (whole aggregated gradients, in place).
                    let whole = try step(model(kind, inputWidth: inputWidth, hidden: hidden, layers: 3, blocks: 1),
                                         features, op, weights, exchange: CrossRankExchange(), context: context)
                    for (blocks, exchange) in [(1, NoBoundaryExchange()), (2, CrossRankExchange()), (3, CrossRankExchange()),
                                               (8, CrossRankExchange()), (3, NoBoundaryExchange())] as [(Int, any BoundaryExchange)] {
                        let m = model(kind, inputWidth: inputWidth, hidden: hidden, layers: 3, blocks: blocks)
                        XCTAssertEqual(m.convolutions[1].columnBlocks(sparseInput: false).isSplit, blocks > 1)
                        let label = "\(kind) \(sparse ? "sparse" : "dense") \(inputWidth)→\(hidden), \(blocks) blocks, "
                            + (exchange.crossesRanks ? "across ranks" : "one rank")
                        let blocked = try step(m, features, op, weights, exchange: exchange, context: context)
                        XCTAssertLessThanOrEqual(blocked.logits.maxAbsDifference(whole.logits), 1e-5, label)
                        for (p, (a, b)) in zip(m.parameters, zip(blocked.gradients, whole.gradients)) {
                            let scale = max(1, b.storage.map(abs).max() ?? 0)
                            XCTAssertLessThanOrEqual(a.maxAbsDifference(b), 1e-5 * scale, "\(label): \(p.name)")
                        }
                    }
                }
            }
        }
    }

    /// One rank with more rows than a row block: backward by row blocks (three of them, the last partial) gives the
    /// gradients of the whole path, with and without column blocks, for both models.
    func testRowBlockBackwardMatchesWholeBackward() throws {
        var rng = TestRNG(seed: 504)
        let rows = 2 * GraphConvolution.backwardBlockRows + 1000
        let graph = randomGraph(nodes: rows, edges: 8 * rows, &rng)
        let features = LayerInput.dense(randomMatrix(rows, 40, &rng))
        let weights = randomMatrix(rows, classes, &rng)
        let context = StepContext(epoch: 1, training: true, random: CounterRandom(seed: 3), pool: ComputePool(threads: 2))
        for kind in ModelConfiguration.Kind.allCases {
            let op = PropagationOperator.wholeGraph(graph, kind.aggregation)
            func run(blocks: Int, _ exchange: any BoundaryExchange) throws -> Result {
                let m = GNNModel(configuration: ModelConfiguration(kind: kind, layers: 3, hiddenWidth: 64, dropout: 0.3),
                                 inputWidth: 40, outputWidth: classes, random: CounterRandom(seed: 9))
                m.columnBlockCount = blocks
                m.zeroGradients()
                let logits = try m.forward(features, nodeIDs: (0..<Int32(rows)).map { $0 }, operator: op, exchange: exchange,
                                           context: context)
                if exchange.crossesRanks == false {
                    XCTAssertTrue(m.convolutions[1].fusesActivationBackward(exchange: exchange))
                    XCTAssertTrue(m.convolutions[2].fusesActivationBackward(exchange: exchange))
                }
                try m.backward(weights, operator: op, exchange: exchange, context: context)
                return Result(logits: logits, gradients: m.parameters.map(\.gradient))
            }
            let whole = try run(blocks: 1, CrossRankExchange())
            for blocks in [1, 2] {
                let rowBlocks = try run(blocks: blocks, NoBoundaryExchange())
                XCTAssertLessThanOrEqual(rowBlocks.logits.maxAbsDifference(whole.logits), 1e-5, "\(kind) \(blocks)")
                for (i, (a, b)) in zip(rowBlocks.gradients, whole.gradients).enumerated() {
                    let scale = max(1, b.storage.map(abs).max() ?? 0)
                    XCTAssertLessThanOrEqual(a.maxAbsDifference(b), 1e-4 * scale, "\(kind), \(blocks) column blocks: parameter \(i)")
                }
            }
        }
    }

    /// A single blocked layer: input gradient and parameter gradients against central differences, on both paths.
    func testBlockedLayerGradientsMatchFiniteDifferences() throws {
        var rng = TestRNG(seed: 502)
        let graph = randomGraph(nodes: nodes, edges: 30, &rng)
        for aggregation in Aggregation.allCases {
            let op = PropagationOperator.wholeGraph(graph, aggregation)
            for (inputWidth, outputWidth) in [(64, 64), (64, 70), (70, 64)] {
                let conv = GraphConvolution(layer: LayerIndex(1), aggregation: aggregation, inputWidth: inputWidth,
                                            outputWidth: outputWidth, random: CounterRandom(seed: 8))
                conv.columnBlockCount = 2
                let path = conv.transformsFirst(sparseInput: false) ? "transform-first" : "aggregate-first"
                XCTAssertTrue(conv.columnBlocks(sparseInput: false).isSplit, path)
                let label = "\(aggregation) \(inputWidth)→\(outputWidth) \(path) in 2 blocks"
                let x = MatrixBox(randomMatrix(nodes, inputWidth, &rng))
                let r = randomMatrix(nodes, outputWidth, &rng)
                let exchange = CrossRankExchange()
                func loss() throws -> Double {
                    weightedSum(try conv.forward(.dense(x.value), operator: op, exchange: exchange, context: evalContext), r)
                }
                for p in conv.parameters { p.zeroGradient() }
                _ = try conv.forward(.dense(x.value), operator: op, exchange: exchange, context: evalContext)
                let inputGradient = try XCTUnwrap(
                    conv.backward(r, operator: op, exchange: exchange, context: evalContext, needInputGradient: true))
                for p in conv.parameters {
                    let indices = sampledIndices(p.count, 12, &rng)
                    try checkGradient("\(label) \(p.name)", probes: probes(p, indices: indices),
                                      analytic: indices.map { p.gradient.storage[$0] }, loss: loss)
                }
                let indices = sampledIndices(x.value.count, 24, &rng)
                try checkGradient("\(label) input", probes: indices.map { x.probes()[$0] },
                                  analytic: indices.map { inputGradient.storage[$0] }, loss: loss)
            }
        }
    }

    /// A layer too narrow to cut stays whole however many blocks are asked for, and keeps the fused activation
    /// backward; a cut layer does not fuse (it forms its input gradient block by block in a matrix of its own).
    func testNarrowLayersStayWhole() throws {
        let conv = GraphConvolution(layer: LayerIndex(2), aggregation: .gcn, inputWidth: 256, outputWidth: 47,
                                    random: CounterRandom(seed: 1))
        conv.columnBlockCount = 8
        XCTAssertFalse(conv.columnBlocks(sparseInput: false).isSplit)
        let wide = GraphConvolution(layer: LayerIndex(1), aggregation: .gcn, inputWidth: 256, outputWidth: 128,
                                    random: CounterRandom(seed: 1))
        wide.columnBlockCount = 4
        XCTAssertEqual(wide.columnBlocks(sparseInput: false).ranges, [0..<32, 32..<64, 64..<96, 96..<128])

        var rng = TestRNG(seed: 503)
        let op = PropagationOperator.wholeGraph(randomGraph(nodes: nodes, edges: 20, &rng), .gcn)
        let x = LayerInput.dense(randomMatrix(nodes, 256, &rng))
        let across = CrossRankExchange(), alone = NoBoundaryExchange()
        for layer in [conv, wide] { _ = try layer.forward(x, operator: op, exchange: across, context: evalContext) }
        XCTAssertTrue(conv.fusesActivationBackward(exchange: across))
        XCTAssertFalse(wide.fusesActivationBackward(exchange: across))
        XCTAssertFalse(wide.fusesActivationBackward(exchange: alone), "\(nodes) rows make one row block: whole matrices")
        wide.columnBlockCount = 1
        XCTAssertTrue(wide.fusesActivationBackward(exchange: across))
    }
}
