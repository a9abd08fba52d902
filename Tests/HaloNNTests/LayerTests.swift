import HaloGraph
@testable import HaloNN
import HaloTensor
import HaloTestSupport
import XCTest

final class LinearTests: XCTestCase {
    func testForwardMatchesReference() {
        var rng = TestRNG(seed: 201)
        let linear = Linear(inputWidth: 4, outputWidth: 3, name: "fc", random: CounterRandom(seed: 2), layer: LayerIndex(5))
        XCTAssertEqual(linear.parameters.map(\.name), ["fc.weight", "fc.bias"])
        linear.bias.value = randomMatrix(1, 3, &rng)
        let x = randomMatrix(6, 4, &rng)
        let out = linear.forward(.dense(x), pool: .serial)
        for i in 0..<6 {
            for j in 0..<3 {
                var e = Double(linear.bias.value[0, j])
                for k in 0..<4 { e += Double(x[i, k]) * Double(linear.weight.value[k, j]) }
                XCTAssertEqual(Double(out[i, j]), e, accuracy: 1e-5)
            }
        }
        // Xavier bound √(6 / (4 + 3)).
        let bound = (6.0 / 7.0).squareRoot()
        XCTAssertTrue(linear.weight.value.storage.allSatisfy { abs(Double($0)) <= bound })
    }

    func testGradientsDenseInput() {
        var rng = TestRNG(seed: 202)
        let linear = Linear(inputWidth: 5, outputWidth: 3, name: "fc", random: CounterRandom(seed: 2), layer: LayerIndex(0))
        linear.bias.value = randomMatrix(1, 3, &rng)
        let x = MatrixBox(randomMatrix(7, 5, &rng))
        let r = randomMatrix(7, 3, &rng)
        func loss() -> Double { weightedSum(linear.forward(.dense(x.value), pool: .serial), r) }
        _ = linear.forward(.dense(x.value), pool: .serial)
        let inputGradient = linear.backward(r, needInputGradient: true, pool: .serial)!
        for p in linear.parameters {
            checkGradient("linear \(p.name)", probes: probes(p), analytic: p.gradient.storage, loss: loss)
        }
        checkGradient("linear input", probes: x.probes(), analytic: inputGradient.storage, loss: loss)
        XCTAssertNil(linear.backward(r, needInputGradient: false, pool: .serial))
    }

    func testGradientsSparseInput() {
        var rng = TestRNG(seed: 203)
        let linear = Linear(inputWidth: 6, outputWidth: 4, name: "fc", random: CounterRandom(seed: 2), layer: LayerIndex(0))
        let features = SparseFeatures(randomSparse(rows: 9, cols: 6, perRow: 3, &rng))
        let r = randomMatrix(9, 4, &rng)
        func loss() -> Double { weightedSum(linear.forward(.sparse(features), pool: .serial), r) }
        let out = linear.forward(.sparse(features), pool: ComputePool(threads: 2))
        XCTAssertLessThanOrEqual(out.maxAbsDifference(linear.forward(.dense(features.matrix.dense()), pool: .serial)), 1e-6)
        _ = linear.forward(.sparse(features), pool: .serial)
        _ = linear.backward(r, needInputGradient: false, pool: .serial)
        for p in linear.parameters {
            checkGradient("linear sparse \(p.name)", probes: probes(p), analytic: p.gradient.storage, loss: loss)
        }
    }
}

final class LayerNormTests: XCTestCase {
    func testForwardNormalisesRows() {
        var rng = TestRNG(seed: 211)
        let norm = LayerNorm(width: 6, name: "norm0")
        XCTAssertEqual(norm.parameters.map(\.name), ["norm0.scale", "norm0.shift"])
        var x = randomMatrix(5, 6, &rng, range: -3...3)
        let original = x
        norm.forward(&x, pool: .serial)
        for i in 0..<5 {
            let row = x.row(i).map(Double.init)
            let mean = row.reduce(0, +) / 6
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 6
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            let o = original.row(i).map(Double.init)
            let om = o.reduce(0, +) / 6
            let ov = o.reduce(0) { $0 + ($1 - om) * ($1 - om) } / 6
            XCTAssertEqual(variance, ov / (ov + 1e-5), accuracy: 1e-4)
            for j in 0..<6 { XCTAssertEqual(Double(x[i, j]), (o[j] - om) / (ov + 1e-5).squareRoot(), accuracy: 1e-4) }
        }
        // Scale and shift apply per column.
        norm.scale.value = Matrix([[1, 2, 3, 4, 5, 6]])
        norm.shift.value = Matrix([[0, 1, 0, 1, 0, 1]])
        var y = original
        norm.forward(&y, pool: ComputePool(threads: 2))
        for i in 0..<5 {
            for j in 0..<6 { XCTAssertEqual(y[i, j], x[i, j] * Float(j + 1) + Float(j % 2), accuracy: 1e-5) }
        }
    }

    func testGradients() {
        var rng = TestRNG(seed: 212)
        for width in [1, 2, 7] {
            let norm = LayerNorm(width: width, name: "norm")
            norm.scale.value = randomMatrix(1, width, &rng, range: 0.5...1.5)
            norm.shift.value = randomMatrix(1, width, &rng)
            let x = MatrixBox(randomMatrix(6, width, &rng, range: -2...2))
            let r = randomMatrix(6, width, &rng)
            func loss() -> Double {
                var y = x.value
                norm.forward(&y, pool: .serial)
                return weightedSum(y, r)
            }
            var y = x.value
            norm.forward(&y, pool: .serial)
            var gradient = r
            norm.backward(&gradient, pool: .serial)
            for p in norm.parameters {
                checkGradient("layernorm(\(width)) \(p.name)", probes: probes(p), analytic: p.gradient.storage, loss: loss)
            }
            checkGradient("layernorm(\(width)) input", probes: x.probes(), analytic: gradient.storage, step: 3e-3,
                          loss: loss)
            // Multi-threaded backward gives the same input gradient.
            norm.forward(&y, pool: .serial)
            var y2 = x.value
            norm.forward(&y2, pool: ComputePool(threads: 3))
            var g2 = r
            norm.backward(&g2, pool: ComputePool(threads: 3))
            XCTAssertEqual(g2, gradient)
        }
    }

    func testEmptyInput() {
        let norm = LayerNorm(width: 4, name: "norm")
        var x = Matrix(rows: 0, cols: 4)
        norm.forward(&x, pool: .serial)
        XCTAssertEqual(x.rows, 0)
        var g = Matrix(rows: 0, cols: 4)
        norm.backward(&g, pool: .serial)
        XCTAssertEqual(norm.scale.gradient, Matrix(rows: 1, cols: 4))
    }
}

final class ReLUTests: XCTestCase {
    func testGradient() {
        var rng = TestRNG(seed: 221)
        // Keep every input at least 0.1 from the kink at zero; the step is 0.01.
        let x = MatrixBox(Matrix(rows: 6, cols: 5, storage: (0..<30).map { _ in
            let v = rng.float(in: 0.1...2)
            return rng.int(0..<2) == 0 ? v : -v
        }))
        let r = randomMatrix(6, 5, &rng)
        func loss() -> Double {
            var y = x.value
            reluInPlace(&y)
            return weightedSum(y, r)
        }
        var y = x.value
        reluInPlace(&y)
        var gradient = r
        reluBackwardInPlace(&gradient, output: y)
        checkGradient("relu input", probes: x.probes(), analytic: gradient.storage, loss: loss)
        XCTAssertTrue(gradient.storage.contains(0) && gradient.storage.contains { $0 != 0 })
    }
}

/// The factor of each element under `dropout` in a training context: 0 or `1/(1 − rate)`, computed one number at a
/// time with `UniformRow.uniform` (the kernels draw 16 at a time with `block(at:)`).
func referenceFactors(_ dropout: Dropout, nodeIDs: [Int32], cols: Int, context: StepContext) -> Matrix {
    let keep = 1 / (1 - dropout.rate)
    return Matrix(rows: nodeIDs.count, cols: cols) { i, j in
        let row = UniformRow(context.random, .dropout, UInt32(truncatingIfNeeded: context.epoch), dropout.site.counterWord,
                             UInt32(bitPattern: nodeIDs[i]))
        return row.uniform(j) < dropout.rate ? 0 : keep
    }
}

final class DropoutTests: XCTestCase {
    private func context(epoch: Int = 3, training: Bool = true, seed: UInt64 = 9, threads: Int = 1) -> StepContext {
        StepContext(epoch: epoch, training: training, random: CounterRandom(seed: seed), pool: ComputePool(threads: threads))
    }

    /// Each element is multiplied by its reference factor, bit for bit, with and without a partial 16-lane tail.
    func testMatchesReferenceMask() {
        var rng = TestRNG(seed: 231)
        let dropout = Dropout(rate: 0.4, site: .hidden(LayerIndex(0)))
        XCTAssertTrue(dropout.isActive)
        for cols in [9, 32, 37] {
            let x = randomMatrix(20, cols, &rng)
            let ids = (0..<20).map { Int32($0 * 3 + 1) }
            let factors = referenceFactors(dropout, nodeIDs: ids, cols: cols, context: context())
            XCTAssertTrue(factors.storage.contains(0) && factors.storage.contains(1 / (1 - 0.4)))
            for threads in [1, 3] {
                var y = x
                dropout.apply(&y, nodeIDs: ids, context: context(threads: threads))
                for i in 0..<x.count { XCTAssertEqual(y.storage[i], x.storage[i] * factors.storage[i], "width \(cols) element \(i)") }
            }
        }
    }

    func testIdentityWhenInactive() {
        var rng = TestRNG(seed: 232)
        let x = randomMatrix(5, 4, &rng)
        let ids = (0..<5).map(Int32.init)
        let off = Dropout(rate: 0, site: .input)
        XCTAssertFalse(off.isActive)
        var a = x
        off.apply(&a, nodeIDs: ids, context: context())
        XCTAssertEqual(a, x)
        let on = Dropout(rate: 0.5, site: .input)
        var b = x
        on.apply(&b, nodeIDs: ids, context: context(training: false))
        XCTAssertEqual(b, x)
        let features = SparseFeatures(randomSparse(rows: 5, cols: 4, perRow: 2, &rng))
        XCTAssertEqual(off.apply(features, nodeIDs: ids, context: context()).matrix, features.matrix)
        XCTAssertEqual(on.apply(features, nodeIDs: ids, context: context(training: false)).matrix, features.matrix)
    }

    func testKeepFraction() {
        for rate: Float in [0.1, 0.5, 0.8] {
            let dropout = Dropout(rate: rate, site: .hidden(LayerIndex(2)))
            var x = Matrix(rows: 200, cols: 64, repeating: 1)
            dropout.apply(&x, nodeIDs: (0..<200).map(Int32.init), context: context(threads: 2))
            let n = Double(x.count)
            let dropped = Double(x.storage.filter { $0 == 0 }.count) / n
            let sigma = (Double(rate) * (1 - Double(rate)) / n).squareRoot()
            XCTAssertEqual(dropped, Double(rate), accuracy: 5 * sigma, "rate \(rate)")
            // Inverted dropout keeps the expectation: the mean stays near one.
            let mean = x.storage.reduce(0.0) { $0 + Double($1) } / n
            XCTAssertEqual(mean, 1, accuracy: 5 * sigma / (1 - Double(rate)), "rate \(rate)")
        }
    }

    /// The mask of a node depends on its id, not on its row: permuting rows with their ids permutes the output.
    func testMaskFollowsNodeIDs() {
        var rng = TestRNG(seed: 233)
        let dropout = Dropout(rate: 0.5, site: .hidden(LayerIndex(1)))
        // All ones: the output is the factor matrix, so equal outputs are equal masks.
        let x = Matrix(rows: 12, cols: 7, repeating: 1)
        let ids = (0..<12).map { Int32(100 + $0 * 7) }
        func dropped(_ d: Dropout = Dropout(rate: 0.5, site: .hidden(LayerIndex(1))), rows: Range<Int> = 0..<12,
                     ids: [Int32], _ c: StepContext) -> Matrix {
            var m = x.rows(rows)
            d.apply(&m, nodeIDs: ids, context: c)
            return m
        }
        let y = dropped(ids: ids, context())
        let permutation = Array((0..<12).shuffled(using: &rng))
        let py = dropped(ids: permutation.map { ids[$0] }, context(threads: 3))
        for i in 0..<12 { XCTAssertEqual(py.row(i), y.row(permutation[i])) }
        // A subset of the rows (another rank's view) gets the same masks.
        XCTAssertEqual(dropped(rows: 4..<9, ids: Array(ids[4..<9]), context()), y.rows(4..<9))
        // Same address → same mask; other epoch, site or seed → another mask.
        XCTAssertEqual(dropped(dropout, ids: ids, context()), y)
        XCTAssertNotEqual(dropped(ids: ids, context(epoch: 4)), y)
        XCTAssertNotEqual(dropped(Dropout(rate: 0.5, site: .hidden(LayerIndex(2))), ids: ids, context()), y)
        XCTAssertNotEqual(dropped(Dropout(rate: 0.5, site: .input), ids: ids, context()), y)
        XCTAssertNotEqual(dropped(ids: ids, context(seed: 10)), y)
    }

    /// Sparse-feature dropout drops exactly the elements dense dropout drops on the same matrix.
    func testSparseDropoutMatchesDense() {
        var rng = TestRNG(seed: 234)
        let dropout = Dropout(rate: 0.3, site: .input)
        let sparse = randomSparse(rows: 30, cols: 20, perRow: 8, &rng)
        let features = SparseFeatures(sparse)
        let ids = (0..<30).map { Int32(1000 - $0) }
        let dropped = dropout.apply(features, nodeIDs: ids, context: context())
        var dense = sparse.dense()
        dropout.apply(&dense, nodeIDs: ids, context: context())
        XCTAssertEqual(dropped.matrix.dense(), dense)
        // The pattern stays; only values change.
        XCTAssertEqual(dropped.matrix.rowPointers, sparse.rowPointers)
        XCTAssertEqual(dropped.matrix.columnIndices, sparse.columnIndices)
        XCTAssertTrue(dropped.matrix.values.contains(0))
        // Rows split over threads: the same values.
        for threads in [2, 3, 7] {
            XCTAssertEqual(dropout.apply(features, nodeIDs: ids, context: context(threads: threads)).matrix, dropped.matrix)
        }
    }
}

final class ReLUDropoutTests: XCTestCase {
    private func context(training: Bool = true, threads: Int = 1) -> StepContext {
        StepContext(epoch: 5, training: training, random: CounterRandom(seed: 21), pool: ComputePool(threads: threads))
    }

    /// The fused pass equals ReLU followed by the reference dropout mask (same values, bit for bit), forward and
    /// backward, for widths with and without a partial 16-lane tail and on several threads.
    func testMatchesReLUThenDropout() {
        var rng = TestRNG(seed: 241)
        for (rows, cols) in [(40, 37), (33, 32), (7, 5), (1, 1), (0, 16)] {
            for rate: Float in [0, 0.3] {
                let dropout = Dropout(rate: rate, site: .hidden(LayerIndex(1)))
                let fused = ReLUDropout(dropout: dropout)
                let x = randomMatrix(rows, cols, &rng)
                let ids = (0..<rows).map { Int32(3 * $0 + 2) }
                var relu = x
                reluInPlace(&relu)
                let factors = rate > 0 ? referenceFactors(dropout, nodeIDs: ids, cols: cols, context: context())
                                       : Matrix(rows: rows, cols: cols, repeating: 1)
                let separate = Matrix(rows: rows, cols: cols) { i, j in relu[i, j] * factors[i, j] }
                for threads in [1, 3] {
                    var y = x
                    fused.forward(&y, nodeIDs: ids, context: context(threads: threads))
                    XCTAssertEqual(y, separate, "forward \(rows)×\(cols) rate \(rate) threads \(threads)")
                    let upstream = randomMatrix(rows, cols, &rng)
                    var expected = Matrix(rows: rows, cols: cols) { i, j in upstream[i, j] * factors[i, j] }
                    reluBackwardInPlace(&expected, output: relu)
                    var g = upstream
                    fused.backward(&g, output: y, context: context(threads: threads))
                    XCTAssertEqual(g, expected, "backward \(rows)×\(cols) rate \(rate) threads \(threads)")
                    // Written over the output instead, in blocks of rows that need not divide the matrix.
                    var overwritten = y
                    var start = 0
                    while start < rows {
                        let block = start..<min(start + 3, rows)
                        fused.backward(upstream.rows(block), overwritingOutput: &overwritten, fromRow: start,
                                       context: context(threads: threads))
                        start = block.upperBound
                    }
                    XCTAssertEqual(overwritten, expected, "over the output \(rows)×\(cols) rate \(rate) threads \(threads)")
                }
            }
        }
    }

    /// A non-finite activation must not be hidden: NaN rows stay NaN wherever dropout keeps them.
    func testNaNIsNotZeroed() {
        let fused = ReLUDropout(dropout: Dropout(rate: 0.3, site: .hidden(LayerIndex(0))))
        var y = Matrix(rows: 2, cols: 40, repeating: .nan)
        fused.forward(&y, nodeIDs: [4, 9], context: context())
        XCTAssertTrue(y.storage.contains { $0.isNaN })
        XCTAssertTrue(y.storage.contains(0), "dropped elements are zero")
    }

    func testEvaluationIsPlainReLU() {
        var rng = TestRNG(seed: 242)
        let fused = ReLUDropout(dropout: Dropout(rate: 0.5, site: .hidden(LayerIndex(0))))
        let x = randomMatrix(9, 20, &rng)
        var y = x, relu = x
        fused.forward(&y, nodeIDs: (0..<9).map(Int32.init), context: context(training: false))
        reluInPlace(&relu)
        XCTAssertEqual(y, relu)
        // NaN passes the ReLU in an evaluation too, in the 16-lane part of a row and in its tail.
        var withNaN = x
        withNaN[2, 3] = .nan
        withNaN[4, 18] = .nan
        fused.forward(&withNaN, nodeIDs: (0..<9).map(Int32.init), context: context(training: false))
        XCTAssertTrue(withNaN[2, 3].isNaN && withNaN[4, 18].isNaN)
        XCTAssertEqual(withNaN.storage.filter(\.isNaN).count, 2)
        XCTAssertFalse(withNaN.storage.contains { $0 < 0 })
    }

    func testGradientMatchesFiniteDifferences() {
        var rng = TestRNG(seed: 243)
        let fused = ReLUDropout(dropout: Dropout(rate: 0.4, site: .hidden(LayerIndex(0))))
        let box = MatrixBox(randomMatrix(6, 19, &rng))
        let ids = (0..<6).map { Int32(10 + $0) }
        let upstream = randomMatrix(6, 19, &rng)
        func loss() -> Double {
            var y = box.value
            fused.forward(&y, nodeIDs: ids, context: context())
            return weightedSum(y, upstream)
        }
        var y = box.value
        fused.forward(&y, nodeIDs: ids, context: context())
        var g = upstream
        fused.backward(&g, output: y, context: context())
        checkGradientAvoidingKinks("relu-dropout", probes: box.probes(), analytic: g.storage, step: 1e-3, loss: loss)
        XCTAssertTrue(g.storage.contains(0) && g.storage.contains { $0 != 0 })
    }
}
