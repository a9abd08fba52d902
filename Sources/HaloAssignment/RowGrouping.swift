import HaloQuantization

/// The rows of one channel cut into groups by weight, AdaQP-style: rows sorted by weight `w_u = α_u² T_u`
/// descending (ties: lower row first), then cut into consecutive groups of `groupSize` rows (the last one
/// smaller). Keeps the row → group mapping so a per-group solution can be expanded to per-row widths.
public struct RowGrouping: Sendable, Equatable {
    /// Rows per group (the last group may hold fewer).
    public let groupSize: Int
    /// Message rows in descending weight order: group g holds `order[g·groupSize ..< min((g + 1)·groupSize, n)]`.
    public let order: [Int32]
    /// The group of every message row.
    public let rowGroup: [Int32]
    /// The groups, heaviest first: weight = Σ of its rows' weights, rows = its row count.
    public let groups: [AssignmentGroup]

    /// Groups the rows whose weights are `weights` (one per message row, finite, ≥ 0).
    public init(weights: [Double], groupSize: Int) {
        precondition(groupSize >= 1, "group size must be ≥ 1, got \(groupSize)")
        precondition(weights.count <= Int(Int32.max), "too many rows: \(weights.count)")
        for w in weights {
            precondition(w.isFinite && w >= 0, "row weights must be finite and ≥ 0, got \(w)")
        }
        let n = weights.count
        let order = (0..<Int32(n)).sorted { i, j in
            let wi = weights[Int(i)], wj = weights[Int(j)]
            return wi != wj ? wi > wj : i < j
        }
        var rowGroup = [Int32](repeating: 0, count: n)
        var groups: [AssignmentGroup] = []
        groups.reserveCapacity((n + groupSize - 1) / groupSize)
        var start = 0
        while start < n {
            let end = min(start + groupSize, n)
            var weight = 0.0
            for k in start..<end {
                let row = Int(order[k])
                weight += weights[row]
                rowGroup[row] = Int32(groups.count)
            }
            groups.append(AssignmentGroup(weight: weight, rows: end - start))
            start = end
        }
        self.groupSize = groupSize
        self.order = order
        self.rowGroup = rowGroup
        self.groups = groups
    }

    /// Number of message rows.
    public var rowCount: Int { rowGroup.count }

    /// The message rows of group `g`, heaviest first.
    public func rows(ofGroup g: Int) -> ArraySlice<Int32> {
        precondition(g >= 0 && g < groups.count, "group \(g) outside 0 ..< \(groups.count)")
        let start = g * groupSize
        return order[start..<min(start + groupSize, order.count)]
    }

    /// The width of every message row when group g gets `groupBits[g]`.
    public func rowBits(_ groupBits: [BitWidth]) -> [BitWidth] {
        precondition(groupBits.count == groups.count, "need \(groups.count) group widths, got \(groupBits.count)")
        return rowGroup.map { groupBits[Int($0)] }
    }

    /// `rowBits` as a `BitAssignment`: `.uniform` when every group has the same width, `.perRow` otherwise.
    public func rowAssignment(_ groupBits: [BitWidth]) -> BitAssignment {
        precondition(groupBits.count == groups.count, "need \(groups.count) group widths, got \(groupBits.count)")
        if let first = groupBits.first, groupBits.allSatisfy({ $0 == first }) { return .uniform(first) }
        if groupBits.isEmpty { return .uniform(.eight) }
        return .perRow(rowBits(groupBits))
    }
}
