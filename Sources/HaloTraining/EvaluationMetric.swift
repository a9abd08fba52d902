import HaloGraph

/// The score a run is judged and its model selected by: accuracy for multi-class tasks, ROC-AUC for binary ones
/// (where accuracy says little when one class dominates: on Tolokers always answering the majority class scores
/// 0.78), micro-F1 for multi-label ones, as the benchmarks these tasks come from report them.
public enum EvaluationMetric: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case accuracy
    /// Area under the ROC curve of the positive class (class 1), ties counted half.
    case rocAUC = "roc-auc"
    /// 2·TP / (2·TP + FP + FN) over every (node, label) pair, a logit > 0 being a positive prediction.
    case microF1 = "micro-f1"

    public var description: String { rawValue }

    /// The metric a task of these labels is judged by.
    public static func standard(for labels: NodeLabels) -> EvaluationMetric {
        if labels.isMultiLabel { return .microF1 }
        return labels.classCount == 2 ? .rocAUC : .accuracy
    }

    /// Why this metric cannot judge a task with these labels, or nil when it can.
    public func unsuitability(for labels: NodeLabels) -> String? {
        switch (self, labels.isMultiLabel) {
        case (.accuracy, true):
            return "accuracy is not defined here for multi-label targets; use micro-f1"
        case (.rocAUC, true):
            return "roc-auc of multi-label targets is not offered yet; use micro-f1"
        case (.rocAUC, false) where labels.classCount != 2:
            return "roc-auc needs a binary task; this one has \(labels.classCount) classes (use accuracy)"
        default:
            return nil
        }
    }
}
