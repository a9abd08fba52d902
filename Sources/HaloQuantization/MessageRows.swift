// What a message holds: which matrix rows, in what order, at which bit widths.

/// The bit widths of the rows of one message: one width for every row, or one per row.
///
/// Not part of the row format: a message's header carries it (`MessageHeader` in HaloTraining).
public enum BitAssignment: Sendable, Equatable {
    case uniform(BitWidth)
    case perRow([BitWidth])

    /// The width of row `i` of the message.
    @inlinable
    public subscript(i: Int) -> BitWidth {
        switch self {
        case .uniform(let b): b
        case .perRow(let widths): widths[i]
        }
    }
}

/// Which rows of a matrix a message holds, in message order.
public enum RowSelection: Sendable, Equatable {
    /// Rows listed by index (a send list gathering inner rows, or a receive list scattering into a halo block).
    case indices([Int32])
    /// A contiguous range of rows (a halo block, or the halo part of a gradient sent back to the owners).
    case range(Range<Int>)

    /// Rows in the message.
    public var count: Int {
        switch self {
        case .indices(let list): list.count
        case .range(let r): r.count
        }
    }

    /// The matrix row of message row `i`.
    @inlinable
    public subscript(i: Int) -> Int {
        switch self {
        case .indices(let list): Int(list[i])
        case .range(let r): r.lowerBound + i
        }
    }
}
