/// The column ranges a layer is evaluated in when memory is the limit.
///
/// A graph layer's largest transient matrices are the rows it aggregates (its inner rows with room for every halo
/// row) and the messages that fill them. Each output column of an aggregation depends only on the same column of
/// its input, so the layer can be evaluated one block of columns at a time: multiply, exchange and aggregate the
/// first block, then the next. Those matrices then hold a block's columns instead of all of them, at the price of
/// one exchange and one pass over the sparse structure per block. Results are the same up to the order of
/// floating-point sums in the weight products.
///
/// Blocks are near-equal, all but the last a multiple of 4 columns wide (whole SIMD lanes in the aggregation
/// kernel), none narrower than `minimumWidth`, so a narrow layer (class logits) stays whole however many blocks are
/// asked for.
public struct ColumnBlocks: Sendable, Equatable, CustomStringConvertible {
    /// The narrowest block a layer is cut into: below it the extra passes and exchanges cost more than the rows
    /// they save.
    public static let minimumWidth = 32

    public let width: Int
    public let ranges: [Range<Int>]

    /// At most `count` blocks of `width` columns (one block, the whole width, when `count` is 1 or the width too
    /// narrow to cut).
    public init(width: Int, count: Int) {
        precondition(width >= 0 && count >= 1, "column blocks need a width ≥ 0 and a count ≥ 1, got \(width) and \(count)")
        self.width = width
        let blocks = min(count, max(1, width / Self.minimumWidth))
        guard blocks > 1 else {
            ranges = [0..<width]
            return
        }
        // Boundaries at i·width/blocks rounded down to a multiple of 4: every block at least width/blocks − 3 +
        // 4·⌊…⌋ ≥ 32 wide (width/blocks ≥ 32), the last one the widest by at most 3 columns.
        let bounds = (0...blocks).map { i in i == blocks ? width : i * width / blocks / 4 * 4 }
        ranges = (0..<blocks).map { bounds[$0]..<bounds[$0 + 1] }
    }

    public var count: Int { ranges.count }
    /// Whether the layer is cut at all.
    public var isSplit: Bool { ranges.count > 1 }
    /// The widest block: what the layer's transient matrices are sized by.
    public var largestWidth: Int { ranges.map(\.count).max() ?? 0 }

    public var description: String { ranges.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", ") }
}
