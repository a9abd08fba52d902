import HaloGraph
import HaloNN
import HaloTensor
import HaloTestSupport
import XCTest

/// A mutable matrix shared between a gradient check's probes and its loss.
final class MatrixBox {
    var value: Matrix
    init(_ value: Matrix) { self.value = value }

    func probes() -> [Probe] {
        (0..<value.count).map { i in
            Probe(name: "input[\(i / value.cols), \(i % value.cols)]",
                  get: { self.value.storage[i] }, set: { self.value.storage[i] = $0 })
        }
    }
}

final class GraphConvolutionTests: XCTestCase {
    private let nodes = 8

    /// The normalised operator built by hand from the raw edge list: duplicates removed, self loops dropped, one
    /// self loop per node added; degrees count the self loop.
    private func referenceOperator(
        _ edges: (sources: [Int32], destinations: [Int32]), nodes n: Int, _ aggregation: Aggregation
    ) -> [[Double]] {
        var edgeSet = Set<[Int]>()
        for (s, d) in zip(edges.sources, edges.destinations) where s != d { edgeSet.insert([Int(s), Int(d)]) }
        var dIn = [Double](repeating: 1, count: n), dOut = [Double](repeating: 1, count: n)
        for e in edgeSet {
            dOut[e[0]] += 1
            dIn[e[1]] += 1
        }
        var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        func weight(_ u: Int, _ v: Int) -> Double {
            switch aggregation {
            case .gcn: return 1 / (dIn[v].squareRoot() * dOut[u].squareRoot())
            case .mean: return 1 / dIn[v]
            }
        }
        for v in 0..<n { a[v][v] = weight(v, v) }
        for e in edgeSet { a[e[1]][e[0]] = weight(e[0], e[1]) }
        return a
    }

    private func denseProduct(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        let k = b.count, n = b.first?.count ?? 0
        return a.map { row in (0..<n).map { j in (0..<k).reduce(0.0) { $0 + row[$1] * b[$1][j] } } }
    }

    private func doubles(_ m: Matrix) -> [[Double]] { (0..<m.rows).map { i in (0..<m.cols).map { Double(m[i, $0]) } } }

    private func makeLayer(_ aggregation: Aggregation, _ inputWidth: Int, _ outputWidth: Int, _ rng: inout TestRNG) -> GraphConvolution {
        let conv = GraphConvolution(layer: LayerIndex(0), aggregation: aggregation, inputWidth: inputWidth,
                                    outputWidth: outputWidth, random: CounterRandom(seed: 3))
        conv.bias.value = randomMatrix(1, outputWidth, &rng)  // non-zero bias, so it is tested too
        return conv
    }

    func testOperatorMatchesHandBuiltNormalisation() {
        var rng = TestRNG(seed: 101)
        let edges = randomEdgeList(nodes: nodes, edges: 20, &rng)
        let graph = Graph(nodeCount: nodes, sources: edges.sources, destinations: edges.destinations)
        for aggregation in Aggregation.allCases {
            let op = PropagationOperator.wholeGraph(graph, aggregation)
            let reference = referenceOperator(edges, nodes: nodes, aggregation)
            let dense = op.forward.dense()
            for v in 0..<nodes {
                for u in 0..<nodes {
                    XCTAssertEqual(Double(dense[v, u]), reference[v][u], accuracy: 1e-6, "\(aggregation) Â[\(v), \(u)]")
                }
            }
            XCTAssertNil(op.forward.firstStructuralProblem())
            XCTAssertEqual(op.backward.dense(), dense.transposed())
            if aggregation == .mean {
                for v in 0..<nodes {
                    XCTAssertEqual(reference[v].reduce(0, +), 1, accuracy: 1e-12, "mean rows sum to one")
                }
            }
        }
    }

    /// Forward against `Â·X·W + b` (GCN) and `X·W_self + Â·X·W_neigh + b` (SAGE-mean) on both code paths.
    func testForwardMatchesDenseReference() throws {
        var rng = TestRNG(seed: 102)
        let edges = randomEdgeList(nodes: nodes, edges: 20, &rng)
        let graph = Graph(nodeCount: nodes, sources: edges.sources, destinations: edges.destinations)
        for aggregation in Aggregation.allCases {
            let op = PropagationOperator.wholeGraph(graph, aggregation)
            let a = referenceOperator(edges, nodes: nodes, aggregation)
            for (inputWidth, outputWidth) in [(6, 3), (3, 5), (4, 4), (1, 1), (17, 2)] {
                let conv = makeLayer(aggregation, inputWidth, outputWidth, &rng)
                XCTAssertEqual(conv.transformsFirst(sparseInput: false), outputWidth <= inputWidth)
                XCTAssertTrue(conv.transformsFirst(sparseInput: true))
                XCTAssertEqual(conv.parameters.count, aggregation == .mean ? 3 : 2)
                XCTAssertEqual(conv.selfWeight == nil, aggregation == .gcn)
                let x = randomMatrix(nodes, inputWidth, &rng)
                var expected = denseProduct(denseProduct(a, doubles(x)), doubles(conv.neighborWeight.value))
                if let selfWeight = conv.selfWeight {
                    let own = denseProduct(doubles(x), doubles(selfWeight.value))
                    for i in 0..<nodes { for j in 0..<outputWidth { expected[i][j] += own[i][j] } }
                }
                for i in 0..<nodes { for j in 0..<outputWidth { expected[i][j] += Double(conv.bias.value[0, j]) } }

                let out = try conv.forward(.dense(x), operator: op, exchange: NoBoundaryExchange(), context: evalContext)
                XCTAssertEqual(out.rows, nodes)
                XCTAssertEqual(out.cols, outputWidth)
                for i in 0..<nodes {
                    for j in 0..<outputWidth {
                        XCTAssertEqual(Double(out[i, j]), expected[i][j], accuracy: 1e-5, "\(aggregation) \(inputWidth)→\(outputWidth) [\(i), \(j)]")
                    }
                }
                // The same features as a sparse matrix give the same output (transform-first always).
                let sparse = SparseMatrix(rows: nodes, cols: inputWidth, triplets: (0..<(nodes * inputWidth)).map {
                    (row: $0 / inputWidth, col: $0 % inputWidth, value: x.storage[$0])
                })
                let sparseOut = try conv.forward(.sparse(SparseFeatures(sparse)), operator: op,
                                                 exchange: NoBoundaryExchange(), context: evalContext)
                XCTAssertLessThanOrEqual(sparseOut.maxAbsDifference(out), 1e-5, "\(aggregation) sparse \(inputWidth)→\(outputWidth)")
                // More threads: the same numbers.
                var parallel = evalContext
                parallel.pool = ComputePool(threads: 3)
                let parallelOut = try conv.forward(.dense(x), operator: op, exchange: NoBoundaryExchange(), context: parallel)
                XCTAssertLessThanOrEqual(parallelOut.maxAbsDifference(out), 1e-6)
            }
        }
    }

    /// Finite-difference check of every parameter and of the input, for both aggregations and both code paths.
    func testGradientsDenseInput() throws {
        var rng = TestRNG(seed: 103)
        let graph = randomGraph(nodes: nodes, edges: 18, &rng)
        for aggregation in Aggregation.allCases {
            let op = PropagationOperator.wholeGraph(graph, aggregation)
            for (inputWidth, outputWidth) in [(5, 3), (3, 4), (4, 4)] {
                let conv = makeLayer(aggregation, inputWidth, outputWidth, &rng)
                let path = conv.transformsFirst(sparseInput: false) ? "transform-first" : "aggregate-first"
                let label = "\(aggregation) \(inputWidth)→\(outputWidth) \(path)"
                let x = MatrixBox(randomMatrix(nodes, inputWidth, &rng))
                let r = randomMatrix(nodes, outputWidth, &rng)
                let exchange = NoBoundaryExchange()
                func loss() throws -> Double {
                    weightedSum(try conv.forward(.dense(x.value), operator: op, exchange: exchange, context: evalContext), r)
                }

                for p in conv.parameters { p.zeroGradient() }
                _ = try conv.forward(.dense(x.value), operator: op, exchange: exchange, context: evalContext)
                let inputGradient = try XCTUnwrap(
                    conv.backward(r, operator: op, exchange: exchange, context: evalContext, needInputGradient: true))
                XCTAssertEqual(inputGradient.rows, nodes)
                XCTAssertEqual(inputGradient.cols, inputWidth)
                let analyticParameters = conv.parameters.map(\.gradient)
                for (p, g) in zip(conv.parameters, analyticParameters) {
                    try checkGradient("\(label) \(p.name)", probes: probes(p), analytic: g.storage, loss: loss)
                }
                try checkGradient("\(label) input", probes: x.probes(), analytic: inputGradient.storage, loss: loss)

                // Without the input gradient: nil, and the same parameter gradients.
                for p in conv.parameters { p.zeroGradient() }
                _ = try conv.forward(.dense(x.value), operator: op, exchange: exchange, context: evalContext)
                XCTAssertNil(try conv.backward(r, operator: op, exchange: exchange, context: evalContext, needInputGradient: false))
                XCTAssertEqual(conv.parameters.map(\.gradient), analyticParameters, label)
                // Backward accumulates into the gradients.
                _ = try conv.forward(.dense(x.value), operator: op, exchange: exchange, context: evalContext)
                _ = try conv.backward(r, operator: op, exchange: exchange, context: evalContext, needInputGradient: false)
                for (p, g) in zip(conv.parameters, analyticParameters) {
                    var twice = g
                    scale(&twice, by: 2)
                    XCTAssertLessThanOrEqual(p.gradient.maxAbsDifference(twice), 1e-5, "\(label) \(p.name) accumulates")
                }
            }
        }
    }

    /// Sparse input features: parameter gradients by finite differences, and equal to the dense-input gradients.
    func testGradientsSparseInput() throws {
        var rng = TestRNG(seed: 104)
        let graph = randomGraph(nodes: nodes, edges: 18, &rng)
        for aggregation in Aggregation.allCases {
            let op = PropagationOperator.wholeGraph(graph, aggregation)
            for (inputWidth, outputWidth) in [(6, 3), (3, 4)] {
                let conv = makeLayer(aggregation, inputWidth, outputWidth, &rng)
                let features = SparseFeatures(randomSparse(rows: nodes, cols: inputWidth, perRow: 3, &rng))
                let r = randomMatrix(nodes, outputWidth, &rng)
                let exchange = NoBoundaryExchange()
                let label = "\(aggregation) sparse \(inputWidth)→\(outputWidth)"
                func loss() throws -> Double {
                    weightedSum(try conv.forward(.sparse(features), operator: op, exchange: exchange, context: evalContext), r)
                }
                for p in conv.parameters { p.zeroGradient() }
                _ = try conv.forward(.sparse(features), operator: op, exchange: exchange, context: evalContext)
                _ = try conv.backward(r, operator: op, exchange: exchange, context: evalContext, needInputGradient: false)
                let sparseGradients = conv.parameters.map(\.gradient)
                for (p, g) in zip(conv.parameters, sparseGradients) {
                    try checkGradient("\(label) \(p.name)", probes: probes(p), analytic: g.storage, loss: loss)
                }
                // Dense input with the same values: the same gradients (the dense path may aggregate first).
                for p in conv.parameters { p.zeroGradient() }
                _ = try conv.forward(.dense(features.matrix.dense()), operator: op, exchange: exchange, context: evalContext)
                _ = try conv.backward(r, operator: op, exchange: exchange, context: evalContext, needInputGradient: false)
                for (p, g) in zip(conv.parameters, sparseGradients) {
                    XCTAssertLessThanOrEqual(p.gradient.maxAbsDifference(g), 1e-5, "\(label) \(p.name) sparse vs dense")
                }
            }
        }
    }

    /// Indicator features (one value in every non-zero) multiplied by table lookup: the outputs and parameter
    /// gradients of the CSR path, and finite differences agree.
    func testIndicatorFeaturesByTableLookupMatchCSR() throws {
        var rng = TestRNG(seed: 105)
        let graph = randomGraph(nodes: nodes, edges: 18, &rng)
        for aggregation in Aggregation.allCases {
            let op = PropagationOperator.wholeGraph(graph, aggregation)
            // Output widths on the padded path (3, 20) and on the 64-column registers (64).
            for (inputWidth, outputWidth) in [(6, 3), (9, 20), (7, 64)] {
                let conv = makeLayer(aggregation, inputWidth, outputWidth, &rng)
                var pattern = randomSparse(rows: nodes, cols: inputWidth, perRow: 4, &rng)
                pattern.values = pattern.values.map { _ in 0.5 }
                let csr = LayerInput.sparse(SparseFeatures(pattern))
                let lookup = LayerInput.sparse(SparseFeatures(pattern, binary: try XCTUnwrap(BinaryMatrix(pattern))))
                let r = randomMatrix(nodes, outputWidth, &rng)
                let exchange = NoBoundaryExchange()
                let label = "\(aggregation) indicator \(inputWidth)→\(outputWidth)"
                func gradients(_ x: LayerInput) throws -> (Matrix, [Matrix]) {
                    for p in conv.parameters { p.zeroGradient() }
                    let out = try conv.forward(x, operator: op, exchange: exchange, context: evalContext)
                    _ = try conv.backward(r, operator: op, exchange: exchange, context: evalContext, needInputGradient: false)
                    return (out, conv.parameters.map(\.gradient))
                }
                let (csrOut, csrGradients) = try gradients(csr)
                let (lookupOut, lookupGradients) = try gradients(lookup)
                XCTAssertLessThanOrEqual(lookupOut.maxAbsDifference(csrOut), 1e-5, "\(label) output")
                for (p, (a, b)) in zip(conv.parameters, zip(lookupGradients, csrGradients)) {
                    XCTAssertLessThanOrEqual(a.maxAbsDifference(b), 1e-5, "\(label) \(p.name) lookup vs CSR")
                    try checkGradient("\(label) \(p.name)", probes: probes(p), analytic: a.storage) {
                        weightedSum(try conv.forward(lookup, operator: op, exchange: exchange, context: evalContext), r)
                    }
                }
            }
        }
    }

    /// Forward products in row blocks (`forwardRowsPerCall`, a calibrated run's choice) give the same output as one
    /// call per thread, bit for bit: every row's product is one BLAS call's either way. Both code paths, SAGE's self
    /// term, the precomputed aggregate and the product through the features, on one and two threads.
    func testRowBlockedForwardGivesTheSameOutput() throws {
        var rng = TestRNG(seed: 109)
        let n = 203
        let graph = randomGraph(nodes: n, edges: 900, &rng)
        for aggregation in Aggregation.allCases {
            let op = PropagationOperator.wholeGraph(graph, aggregation)
            for (inputWidth, outputWidth) in [(40, 16), (16, 48)] {
                let conv = makeLayer(aggregation, inputWidth, outputWidth, &rng)
                let features = randomMatrix(n, inputWidth, &rng)
                let x = LayerInput.dense(features)
                for threads in [1, 2] {
                    var context = evalContext
                    context.pool = ComputePool(threads: threads)
                    let label = "\(aggregation) \(inputWidth)→\(outputWidth), \(threads) threads"
                    func outputs() throws -> [Matrix] {
                        let aggregate = try conv.aggregateOnce(features, operator: op, exchange: NoBoundaryExchange(),
                                                               context: context)
                        return [
                            try conv.forward(x, operator: op, exchange: NoBoundaryExchange(), context: context),
                            conv.forward(precomputedAggregate: aggregate, input: x, context: context),
                            conv.forward(precomputedAggregate: aggregate, input: x, throughFeatures: op, context: context),
                        ]
                    }
                    conv.forwardRowsPerCall = nil
                    let whole = try outputs()
                    conv.forwardRowsPerCall = 24
                    let blocked = try outputs()
                    conv.forwardRowsPerCall = nil
                    for (path, (a, b)) in zip(["exchange", "precomputed", "through features"], zip(whole, blocked)) {
                        XCTAssertEqual(a.storage, b.storage, "\(label), \(path)")
                    }
                }
            }
        }
    }

    /// A weight gradient streamed in pieces (`weightRowsFinished`) is the whole one, bit for bit, on every path that
    /// forms one: precomputed aggregate (GEMM and listed), aggregate-first, transform-first from dense input, CSR and
    /// table-lookup features, on one and two threads. The pieces arrive in order, cover every row once, and each is
    /// final when reported.
    func testWeightGradientInPiecesIsTheWholeOneAndEachPieceIsFinalWhenReported() throws {
        var rng = TestRNG(seed: 111)
        let n = 260
        let graph = randomGraph(nodes: n, edges: 1100, &rng)
        for aggregation in Aggregation.allCases {
            let op = PropagationOperator.wholeGraph(graph, aggregation)
            // Aggregate-first (400 → 450) and transform-first (400 → 16); sparse features go transform-first too.
            // Three pieces, the last short.
            for (inputWidth, outputWidth) in [(400, 450), (400, 16)] {
                let conv = makeLayer(aggregation, inputWidth, outputWidth, &rng)
                conv.weightGradientPieces = WeightGradientPieces(rows: inputWidth, rowsPerPiece: WeightGradientPieces.rowTile)
                let dense = randomMatrix(n, inputWidth, &rng)
                var pattern = randomSparse(rows: n, cols: inputWidth, perRow: 9, &rng)
                pattern.values = pattern.values.map { _ in 1 }
                let csr = LayerInput.sparse(SparseFeatures(pattern))
                let lookup = LayerInput.sparse(SparseFeatures(pattern, binary: try XCTUnwrap(BinaryMatrix(pattern))))
                let exchange = NoBoundaryExchange()
                let aggregate = try conv.aggregateOnce(dense, operator: op, exchange: exchange, context: evalContext)
                // A dense upstream gradient (GEMM) and one with a tenth non-zero (listed, where the path lists).
                let full = randomMatrix(n, outputWidth, &rng)
                let sparse = Matrix(rows: n, cols: outputWidth) { _, _ in rng.int(0..<10) == 0 ? rng.float() : 0 }
                let cases: [(String, () throws -> Matrix, Matrix)] = [
                    ("precomputed", { conv.forward(precomputedAggregate: aggregate, input: .dense(dense), context: evalContext) }, full),
                    ("precomputed, listed", { conv.forward(precomputedAggregate: aggregate, input: .dense(dense), context: evalContext) }, sparse),
                    ("dense", { try conv.forward(.dense(dense), operator: op, exchange: exchange, context: evalContext) }, full),
                    ("dense, mostly zero", { try conv.forward(.dense(dense), operator: op, exchange: exchange, context: evalContext) }, sparse),
                    ("CSR", { try conv.forward(csr, operator: op, exchange: exchange, context: evalContext) }, full),
                    ("lookup", { try conv.forward(lookup, operator: op, exchange: exchange, context: evalContext) }, full),
                ]
                for (path, forward, upstream) in cases {
                    let label = "\(aggregation) \(inputWidth)→\(outputWidth) \(path)"
                    for threads in [1, 2] {
                        var context = evalContext
                        context.pool = ComputePool(threads: threads)
                        func gradients(streamed: Bool) throws -> ([Matrix], Matrix?, [Range<Int>: [Float]]) {
                            for p in conv.parameters { p.zeroGradient() }
                            _ = try forward()
                            var reported: [Range<Int>: [Float]] = [:]
                            var order: [Range<Int>] = []
                            let inputGradient = try conv.backward(
                                upstream, operator: op, exchange: exchange, context: context,
                                needInputGradient: !path.hasPrefix("precomputed"),
                                weightRowsFinished: streamed ? { weight, rows in
                                    XCTAssertTrue(weight === conv.neighborWeight, label)
                                    order.append(rows)
                                    reported[rows] = Array(weight.gradient.storage[(rows.lowerBound * outputWidth)..<(rows.upperBound * outputWidth)])
                                } : nil)
                            if streamed { XCTAssertEqual(order, conv.weightGradientPieces.ranges, label) }
                            return (conv.parameters.map(\.gradient), inputGradient, reported)
                        }
                        let (whole, wholeInput, none) = try gradients(streamed: false)
                        XCTAssertTrue(none.isEmpty, label)
                        let (pieced, piecedInput, reported) = try gradients(streamed: true)
                        for (p, (a, b)) in zip(conv.parameters, zip(whole, pieced)) {
                            XCTAssertTrue(a.storage == b.storage,
                                          "\(label), \(threads) threads: \(p.name) differs by \(a.maxAbsDifference(b))")
                        }
                        XCTAssertTrue(wholeInput?.storage == piecedInput?.storage, "\(label), \(threads) threads: input gradient")
                        let weightGradient = pieced[0].storage
                        for (rows, values) in reported {
                            XCTAssertTrue(values == Array(weightGradient[(rows.lowerBound * outputWidth)..<(rows.upperBound * outputWidth)]),
                                          "\(label), \(threads) threads: rows \(rows) changed after they were reported")
                        }
                    }
                }
            }
        }
    }

    func testPiecesAreWholeTilesAtMostEightAndAtLeastAnEighthOfAMebibyte() {
        // Amazon-Photo's first layer (745 × 256) asked for 8: 128 rows (32 768 values) a piece at least, rounded up
        // to the 192-row tile, so four.
        XCTAssertEqual(WeightGradientPieces.rowTile, 192)
        let photo = WeightGradientPieces(rows: 745, columns: 256, pieces: 8)
        XCTAssertEqual(photo.ranges, [0..<192, 192..<384, 384..<576, 576..<745])
        // Coauthor-Physics's (8415 × 256): pieces of a multiple of 192 rows, the last shorter; never more than 8.
        XCTAssertEqual(WeightGradientPieces(rows: 8415, columns: 256, pieces: 2).ranges, [0..<4224, 4224..<8415])
        let physics = WeightGradientPieces(rows: 8415, columns: 256, pieces: 50)
        XCTAssertEqual(physics.ranges.count, 8)
        XCTAssertEqual(physics.ranges.first, 0..<1152)
        XCTAssertEqual(physics.ranges.last, 8064..<8415)
        // One piece, an output layer too small to cut, and an empty weight.
        XCTAssertEqual(WeightGradientPieces(rows: 256, columns: 256, pieces: 1).ranges, [0..<256])
        XCTAssertEqual(WeightGradientPieces(rows: 256, columns: 8, pieces: 4).ranges, [0..<256])
        XCTAssertEqual(WeightGradientPieces(rows: 0, columns: 8, pieces: 3).ranges, [])
        XCTAssertEqual(WeightGradientPieces.whole(rows: 745).ranges, [0..<745])
        XCTAssertEqual(WeightGradientPieces.whole(rows: 0).ranges, [])
        for (rows, columns) in [(1, 1), (63, 300), (1000, 1), (100_000, 47), (8415, 256)] {
            for asked in [1, 3, 8, 100] {
                let pieces = WeightGradientPieces(rows: rows, columns: columns, pieces: asked)
                XCTAssertLessThanOrEqual(pieces.ranges.count, min(asked, WeightGradientPieces.maximumPieces))
                XCTAssertEqual(pieces.rows, rows)
                if rows > 0 { XCTAssertEqual(pieces.ranges.first?.lowerBound, 0) }
                for (a, b) in zip(pieces.ranges, pieces.ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                for r in pieces.ranges { XCTAssertEqual(r.lowerBound % WeightGradientPieces.rowTile, 0) }
                for r in pieces.ranges.dropLast() { XCTAssertGreaterThanOrEqual(r.count * columns, WeightGradientPieces.minimumValues) }
            }
        }
    }

    /// Pieces whose sizes change by a ratio: shrinking (0.5) or growing (2) in whole tiles, each with at least the
    /// minimum values, covering the rows once; ratio 1 is the equal cut.
    func testPiecesWithARatioShrinkOrGrowInWholeTiles() {
        // Coauthor-Physics's 8415 × 256 in 4 halving pieces: 44 tiles of 192 rows at 8/15, 4/15, 2/15, 1/15
        // (boundaries at 23.5, 35.2 and 41.1 tiles, rounded).
        let halving = WeightGradientPieces(rows: 8415, columns: 256, pieces: 4, ratio: 0.5)
        XCTAssertEqual(halving.ranges, [0..<4416, 4416..<6720, 6720..<7872, 7872..<8415])
        let doubling = WeightGradientPieces(rows: 8415, columns: 256, pieces: 4, ratio: 2)
        XCTAssertEqual(doubling.ranges.map(\.count), [576, 1152, 2304, 4383])
        XCTAssertEqual(WeightGradientPieces(rows: 8415, columns: 256, pieces: 3, ratio: 1),
                       WeightGradientPieces(rows: 8415, columns: 256, pieces: 3))
        // Amazon-Photo's 745 rows hold four pieces of the minimum (one 192-row tile) at most: asked for eight, every
        // boundary is held at the minimum, which is the equal cut.
        XCTAssertEqual(WeightGradientPieces(rows: 745, columns: 256, pieces: 8, ratio: 0.5),
                       WeightGradientPieces(rows: 745, columns: 256, pieces: 8))
        XCTAssertEqual(WeightGradientPieces(rows: 0, columns: 8, pieces: 3, ratio: 0.5).ranges, [])
        for (rows, columns) in [(1, 1), (63, 300), (1000, 1), (100_000, 47), (8415, 256), (745, 256)] {
            for asked in [1, 2, 5, 8, 100] {
                for ratio in [1.0 / 16, 0.25, 0.5, 0.8, 1.5, 4, 16] {
                    let pieces = WeightGradientPieces(rows: rows, columns: columns, pieces: asked, ratio: ratio)
                    let label = "\(rows) × \(columns), \(asked) at \(ratio)"
                    XCTAssertLessThanOrEqual(pieces.ranges.count, min(asked, WeightGradientPieces.maximumPieces), label)
                    XCTAssertEqual(pieces.rows, rows, label)
                    XCTAssertEqual(pieces.ranges.first?.lowerBound ?? 0, 0, label)
                    for (a, b) in zip(pieces.ranges, pieces.ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound, label) }
                    for r in pieces.ranges { XCTAssertEqual(r.lowerBound % WeightGradientPieces.rowTile, 0, label) }
                    // Every piece holds the minimum, unless it is the only one (or the last, cut short by the rows).
                    for r in pieces.ranges.dropLast() {
                        XCTAssertGreaterThanOrEqual(r.count * columns, WeightGradientPieces.minimumValues, label)
                    }
                    // A shrinking cut's first piece is its largest; a growing one's is no larger than any later one but
                    // the last (which the rows may cut short).
                    if let first = pieces.ranges.first {
                        if ratio < 1 {
                            XCTAssertEqual(first.count, pieces.ranges.map(\.count).max(), label)
                        } else {
                            XCTAssertLessThanOrEqual(first.count, pieces.ranges.dropLast().map(\.count).min() ?? first.count, label)
                        }
                    }
                }
            }
        }
    }

    func testMessageWidthFollowsCodePath() {
        let narrowing = GraphConvolution(layer: LayerIndex(1), aggregation: .gcn, inputWidth: 8, outputWidth: 2,
                                         random: CounterRandom(seed: 1))
        XCTAssertEqual(narrowing.messageWidth(sparseInput: false), 2)
        let widening = GraphConvolution(layer: LayerIndex(1), aggregation: .mean, inputWidth: 2, outputWidth: 8,
                                        random: CounterRandom(seed: 1))
        XCTAssertEqual(widening.messageWidth(sparseInput: false), 2)
        XCTAssertEqual(widening.messageWidth(sparseInput: true), 8)
        XCTAssertEqual(widening.parameters.map(\.name), ["conv1.weight_neighbor", "conv1.weight_self", "conv1.bias"])
        XCTAssertEqual(narrowing.parameters.map(\.name), ["conv1.weight", "conv1.bias"])
    }

    /// A hidden layer's upstream gradient is mostly zeros (ReLU, dropout), and the products with it then skip them
    /// (`BlockColumnLists`): the weight gradients of aggregate-first, a precomputed aggregate and SAGE's self term,
    /// and the aggregate-first input gradient, checked by finite differences. Rows span several 128-row blocks and
    /// the input more than one 64-column tile.
    func testGradientsFromAMostlyZeroUpstreamGradient() throws {
        var rng = TestRNG(seed: 105)
        let nodes = 300
        let graph = randomGraph(nodes: nodes, edges: 900, &rng)
        for aggregation in Aggregation.allCases {
            let op = PropagationOperator.wholeGraph(graph, aggregation)
            // Aggregate-first twice; transform-first (80 → 70), where SAGE's self term multiplies the gradient, and
            // at equal widths, where the input gradient is formed in place.
            for (inputWidth, outputWidth) in [(64, 70), (65, 80), (80, 70), (70, 70)] {
                let conv = makeLayer(aggregation, inputWidth, outputWidth, &rng)
                XCTAssertEqual(conv.transformsFirst(sparseInput: false), outputWidth <= inputWidth)
                let x = MatrixBox(randomMatrix(nodes, inputWidth, &rng))
                // About one element in ten non-zero, scattered: the layer lists them, for the input gradient too.
                let r = Matrix(rows: nodes, cols: outputWidth) { _, _ in rng.int(0..<10) == 0 ? rng.float() : 0 }
                let lists = try XCTUnwrap(BlockColumnLists.ifWorthwhile(r))
                XCTAssertLessThanOrEqual(lists.density, BlockColumnLists.worthwhileInputGradientDensity)
                let exchange = NoBoundaryExchange()
                let aggregate = try conv.aggregateOnce(x.value, operator: op, exchange: exchange, context: evalContext)
                for precomputed in [false, true] {
                    let path = precomputed ? "precomputed" : conv.transformsFirst(sparseInput: false) ? "transform-first" : "aggregate-first"
                    let label = "\(aggregation) \(inputWidth)→\(outputWidth) \(path)"
                    func forward() throws -> Matrix {
                        precomputed
                            ? conv.forward(precomputedAggregate: aggregate, input: .dense(x.value), context: evalContext)
                            : try conv.forward(.dense(x.value), operator: op, exchange: exchange, context: evalContext)
                    }
                    for p in conv.parameters { p.zeroGradient() }
                    _ = try forward()
                    let inputGradient = try conv.backward(r, operator: op, exchange: exchange, context: evalContext,
                                                          needInputGradient: !precomputed)
                    if !precomputed {
                        let inputGradient = try XCTUnwrap(inputGradient, label)
                        var pick = TestRNG(seed: 6)
                        let indices = sampledIndices(x.value.count, 24, &pick)
                        let probes = x.probes()
                        try checkGradient("\(label) input", probes: indices.map { probes[$0] },
                                          analytic: indices.map { inputGradient.storage[$0] }, loss: { weightedSum(try forward(), r) })
                    }
                    for p in conv.parameters {
                        var pick = TestRNG(seed: 5)
                        let indices = sampledIndices(p.count, 12, &pick)
                        try checkGradient("\(label) \(p.name)", probes: probes(p, indices: indices),
                                          analytic: indices.map { p.gradient.storage[$0] }, loss: { weightedSum(try forward(), r) })
                    }
                }
            }
        }
    }
}
