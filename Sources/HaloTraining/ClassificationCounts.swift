import HaloGraph
import HaloTensor

/// Sufficient statistics of a classification metric on one node set, summable across ranks.
///
/// Single-label: accuracy = correct / total. Multi-label: micro-F1 = 2TP / (2TP + FP + FN), a logit > 0 being a
/// positive prediction.
public struct ClassificationCounts: Sendable, Equatable {
    public var correct: Double = 0
    public var total: Double = 0
    public var truePositives: Double = 0
    public var falsePositives: Double = 0
    public var falseNegatives: Double = 0
    public var multiLabel = false

    public init(multiLabel: Bool = false) { self.multiLabel = multiLabel }

    /// Accuracy (single-label) or micro-F1 (multi-label); nil when the set is empty.
    public var score: Double? {
        if multiLabel {
            let denominator = 2 * truePositives + falsePositives + falseNegatives
            return denominator > 0 ? 2 * truePositives / denominator : nil
        }
        return total > 0 ? correct / total : nil
    }

    static let fieldCount = 5
    var fields: [Double] { [correct, total, truePositives, falsePositives, falseNegatives] }

    init(fields: ArraySlice<Double>, multiLabel: Bool) {
        let f = Array(fields)
        (correct, total, truePositives, falsePositives, falseNegatives) = (f[0], f[1], f[2], f[3], f[4])
        self.multiLabel = multiLabel
    }

    /// Counts over the rows where `mask` is set.
    public static func count(logits: Matrix, labels: NodeLabels, mask: [Bool]) -> ClassificationCounts {
        var c = ClassificationCounts(multiLabel: labels.isMultiLabel)
        let k = logits.cols
        for r in 0..<logits.rows where mask[r] {
            switch labels {
            case .singleLabel(let classes, _):
                var best = 0
                for j in 1..<max(k, 1) where logits[r, j] > logits[r, best] { best = j }
                c.total += 1
                if best == Int(classes[r]) { c.correct += 1 }
            case .multiLabel(let targets, _):
                for j in 0..<k {
                    let predicted = logits[r, j] > 0, actual = targets[r * k + j] != 0
                    if predicted && actual { c.truePositives += 1 }
                    if predicted && !actual { c.falsePositives += 1 }
                    if !predicted && actual { c.falseNegatives += 1 }
                }
                c.total += 1
            }
        }
        return c
    }
}
