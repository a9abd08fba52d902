import Foundation
import HaloNN
import HaloTensor
import HaloTestSupport
import XCTest

final class LossTests: XCTestCase {
    private let rows = 8, classes = 4

    private func setting(_ rng: inout TestRNG) -> (logits: Matrix, labels: [Int32], multi: [UInt8], mask: [Bool]) {
        let logits = randomMatrix(rows, classes, &rng, range: -3...3)
        let mask = (0..<rows).map { $0 % 3 != 1 }
        let labels = (0..<rows).map { mask[$0] ? Int32(rng.int(0..<classes)) : -1 }
        let multi = (0..<(rows * classes)).map { _ in UInt8(rng.int(0..<2)) }
        return (logits, labels, multi, mask)
    }

    private func targets(_ loss: Loss, _ s: (logits: Matrix, labels: [Int32], multi: [UInt8], mask: [Bool])) -> LossTargets {
        loss == .softmaxCrossEntropy ? .classes(s.labels) : .multiLabel(s.multi)
    }

    /// The loss by the textbook formulas, in Double.
    private func naiveLoss(_ loss: Loss, logits: Matrix, labels: [Int32], multi: [UInt8], mask: [Bool], count: Int) -> Double {
        var total = 0.0
        for r in 0..<logits.rows where mask[r] {
            let z = logits.row(r).map(Double.init)
            switch loss {
            case .softmaxCrossEntropy:
                let p = exp(z[Int(labels[r])]) / z.reduce(0) { $0 + exp($1) }
                total -= log(p)
            case .sigmoidBinaryCrossEntropy:
                for c in 0..<z.count {
                    let p = 1 / (1 + exp(-z[c])), y = Double(multi[r * z.count + c])
                    total -= y * log(p) + (1 - y) * log(1 - p)
                }
            }
        }
        return total / (Double(count) * (loss == .sigmoidBinaryCrossEntropy ? Double(logits.cols) : 1))
    }

    func testLossValueMatchesFormula() {
        var rng = TestRNG(seed: 301)
        for loss in [Loss.softmaxCrossEntropy, .sigmoidBinaryCrossEntropy] {
            let s = setting(&rng)
            let count = s.mask.filter { $0 }.count
            let (value, _) = loss.evaluate(logits: s.logits, targets: targets(loss, s), mask: s.mask, globalTrainingCount: count)
            let expected = naiveLoss(loss, logits: s.logits, labels: s.labels, multi: s.multi, mask: s.mask, count: count)
            XCTAssertEqual(value, expected, accuracy: 1e-5 * max(1, abs(expected)), "\(loss)")
        }
        // Large logits stay finite (log-sum-exp and stable BCE).
        let big = Matrix([[80, -80, 0, 1], [-90, 95, 3, 0]])
        for loss in [Loss.softmaxCrossEntropy, .sigmoidBinaryCrossEntropy] {
            let (value, gradient) = loss.evaluate(
                logits: big, targets: loss == .softmaxCrossEntropy ? .classes([1, 1]) : .multiLabel([0, 1, 0, 1, 1, 0, 1, 0]),
                mask: [true, true], globalTrainingCount: 2)
            XCTAssertTrue(value.isFinite, "\(loss)")
            XCTAssertTrue(gradient.storage.allSatisfy(\.isFinite), "\(loss)")
            let expected = naiveLoss(loss, logits: big, labels: [1, 1], multi: [0, 1, 0, 1, 1, 0, 1, 0], mask: [true, true], count: 2)
            if expected.isFinite { XCTAssertEqual(value, expected, accuracy: 1e-3 * max(1, abs(expected)), "\(loss)") }
        }
    }

    func testGradientMatchesFiniteDifferences() {
        var rng = TestRNG(seed: 302)
        for loss in [Loss.softmaxCrossEntropy, .sigmoidBinaryCrossEntropy] {
            let s = setting(&rng)
            let count = s.mask.filter { $0 }.count
            let box = MatrixBox(s.logits)
            let (_, gradient) = loss.evaluate(logits: s.logits, targets: targets(loss, s), mask: s.mask, globalTrainingCount: count)
            func value() -> Double {
                loss.evaluate(logits: box.value, targets: targets(loss, s), mask: s.mask, globalTrainingCount: count).loss
            }
            checkGradient("\(loss) logits", probes: box.probes(), analytic: gradient.storage, step: 1e-2, absolute: 1e-4, loss: value)
            // Softmax gradient rows sum to zero.
            if loss == .softmaxCrossEntropy {
                for r in 0..<rows { XCTAssertEqual(gradient.row(r).reduce(0, +), 0, accuracy: 1e-6) }
            }
        }
    }

    func testMaskedRowsGetZeroGradient() {
        var rng = TestRNG(seed: 303)
        for loss in [Loss.softmaxCrossEntropy, .sigmoidBinaryCrossEntropy] {
            let s = setting(&rng)
            let (_, gradient) = loss.evaluate(logits: s.logits, targets: targets(loss, s), mask: s.mask, globalTrainingCount: 5)
            for r in 0..<rows {
                if s.mask[r] {
                    XCTAssertTrue(gradient.row(r).contains { $0 != 0 }, "\(loss) row \(r)")
                } else {
                    XCTAssertEqual(gradient.row(r), [Float](repeating: 0, count: classes), "\(loss) row \(r)")
                }
            }
            // Changing a masked row's logits changes nothing.
            var changed = s.logits
            changed[1, 2] += 5
            let a = loss.evaluate(logits: s.logits, targets: targets(loss, s), mask: s.mask, globalTrainingCount: 5)
            let b = loss.evaluate(logits: changed, targets: targets(loss, s), mask: s.mask, globalTrainingCount: 5)
            XCTAssertEqual(a.loss, b.loss)
            XCTAssertEqual(a.gradient, b.gradient)
            // No training nodes anywhere: zero loss and gradient.
            let none = loss.evaluate(logits: s.logits, targets: targets(loss, s), mask: s.mask, globalTrainingCount: 0)
            XCTAssertEqual(none.loss, 0)
            XCTAssertEqual(none.gradient, Matrix(rows: rows, cols: classes))
        }
    }

    /// Two ranks with half the rows each, normalising by the global count, add up to the whole.
    func testGlobalNormalisationAcrossRanks() {
        var rng = TestRNG(seed: 304)
        for loss in [Loss.softmaxCrossEntropy, .sigmoidBinaryCrossEntropy] {
            let s = setting(&rng)
            let count = s.mask.filter { $0 }.count
            let whole = loss.evaluate(logits: s.logits, targets: targets(loss, s), mask: s.mask, globalTrainingCount: count)
            let half = rows / 2
            var parts: [(loss: Double, gradient: Matrix)] = []
            for range in [0..<half, half..<rows] {
                let t: LossTargets = loss == .softmaxCrossEntropy
                    ? .classes(Array(s.labels[range]))
                    : .multiLabel(Array(s.multi[(range.lowerBound * classes)..<(range.upperBound * classes)]))
                parts.append(loss.evaluate(logits: s.logits.rows(range), targets: t, mask: Array(s.mask[range]),
                                           globalTrainingCount: count, pool: ComputePool(threads: 2)))
            }
            XCTAssertEqual(parts[0].loss + parts[1].loss, whole.loss, accuracy: 1e-6 * max(1, whole.loss), "\(loss)")
            XCTAssertEqual(Matrix.vstack(parts.map(\.gradient)), whole.gradient, "\(loss)")
            // A rank-local normaliser would be wrong: the halves are not the mean of the whole.
            let local = loss.evaluate(logits: s.logits.rows(0..<half),
                                      targets: loss == .softmaxCrossEntropy ? .classes(Array(s.labels[0..<half]))
                                          : .multiLabel(Array(s.multi[0..<(half * classes)])),
                                      mask: Array(s.mask[0..<half]), globalTrainingCount: count / 2)
            XCTAssertNotEqual(local.loss, parts[0].loss)
        }
    }

    func testThreadCountDoesNotChangeResult() {
        var rng = TestRNG(seed: 305)
        for loss in [Loss.softmaxCrossEntropy, .sigmoidBinaryCrossEntropy] {
            let logits = randomMatrix(300, 5, &rng, range: -4...4)
            let mask = (0..<300).map { $0 % 2 == 0 }
            let t: LossTargets = loss == .softmaxCrossEntropy
                ? .classes((0..<300).map { _ in Int32(rng.int(0..<5)) })
                : .multiLabel((0..<1500).map { _ in UInt8(rng.int(0..<2)) })
            let a = loss.evaluate(logits: logits, targets: t, mask: mask, globalTrainingCount: 150)
            let b = loss.evaluate(logits: logits, targets: t, mask: mask, globalTrainingCount: 150, pool: ComputePool(threads: 3))
            XCTAssertEqual(a.loss, b.loss)
            XCTAssertEqual(a.gradient, b.gradient)
        }
    }

    func testRawValues() {
        XCTAssertEqual(Loss(rawValue: "softmax_cross_entropy"), .softmaxCrossEntropy)
        XCTAssertEqual(Loss(rawValue: "sigmoid_bce"), .sigmoidBinaryCrossEntropy)
    }
}
