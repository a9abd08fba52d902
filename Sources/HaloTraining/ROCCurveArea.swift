/// The area under the ROC curve from scores and binary truths: the probability that a positive scores above a
/// negative, ties counted half (the Mann–Whitney U statistic over P·N). Exact: one sort, ranks averaged over ties.
public enum ROCCurveArea {
    /// nil when there is no positive or no negative (the area is undefined).
    public static func area(scores: [Float], positive: [Bool]) -> Double? {
        precondition(scores.count == positive.count, "one truth per score")
        let positives = positive.lazy.filter { $0 }.count
        let negatives = positive.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        // A NaN score (never from a finite model) ranks lowest rather than breaking the sort's ordering.
        let scores = scores.map { $0.isNaN ? -Float.infinity : $0 }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        // Sum of the positives' ranks (1-based), each tie group taking its average rank.
        var rankSum = 0.0
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count && scores[order[end]] == scores[order[start]] { end += 1 }
            let averageRank = Double(start + 1 + end) / 2
            for i in start..<end where positive[order[i]] { rankSum += averageRank }
            start = end
        }
        let p = Double(positives), n = Double(negatives)
        return (rankSum - p * (p + 1) / 2) / (p * n)
    }
}
