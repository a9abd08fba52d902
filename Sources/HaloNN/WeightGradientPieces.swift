import HaloTensor

/// The pieces of rows in which a layer's backward pass forms its weight gradient (input width × output width)
/// when the caller streams the gradient's sum over ranks: each piece's sum can start while the next one is
/// computed.
///
/// Why: a GNN's first layer usually holds nearly all parameters (features × hidden: 2.15 M of Coauthor-Physics's
/// 2.22 M at hidden 256) and is the last one backward finishes, so a sum started per layer overlaps nothing but
/// the small upper layers' sums. In pieces, only the last piece's sum is left after the last product. The price:
/// every piece multiplies the whole output gradient, so each piece after the first adds a pass over it (measured
/// by `halo microbench`); how many pieces pay is the host's and the shapes' question (`WeightGradientStreaming`).
///
/// The cut depends only on the layer's widths, so every rank cuts the same way and starts the same sums in the same
/// order. Pieces start at multiples of `BlockColumnLists.tileWidth` rows (the listed product's tiles) and GEMM cuts
/// a piece as it cuts the whole product, so every path computes each row exactly as the whole product does: the
/// same model whatever the pieces (tested on every path, on one and two threads).
public struct WeightGradientPieces: Equatable, Sendable {
    /// The row ranges, in the order backward forms them; together they cover `0 ..< rows` once.
    public let ranges: [Range<Int>]

    /// The rows the pieces cover.
    public var rows: Int { ranges.last?.upperBound ?? 0 }

    /// At most this many pieces: the last piece's sum, the part left exposed after the last product, is then at
    /// most about an eighth of the layer's.
    public static let maximumPieces = 8

    /// Values a piece holds at least (128 KiB of float32): smaller sums pay their fixed start-up cost (a collective
    /// call, a round trip) for little data, and smaller products run their kernels on few rows.
    public static let minimumValues = 32_768

    /// The whole gradient as one piece.
    public static func whole(rows: Int) -> WeightGradientPieces { WeightGradientPieces(rows: rows, rowsPerPiece: max(rows, 1)) }

    /// A `rows` × `columns` weight gradient in (at most) `pieces` pieces of equal whole tiles: fewer where a piece
    /// would hold less than `minimumValues` values, never more than `maximumPieces`.
    public init(rows: Int, columns: Int, pieces: Int) {
        precondition(pieces >= 1, "a weight gradient needs at least one piece, got \(pieces)")
        let tile = BlockColumnLists.tileWidth
        func roundedUpToTiles(_ n: Int) -> Int { (n + tile - 1) / tile * tile }
        let wanted = min(pieces, Self.maximumPieces)
        let byCount = (rows + wanted - 1) / wanted
        let bySize = (Self.minimumValues + max(columns, 1) - 1) / max(columns, 1)
        self.init(rows: rows, rowsPerPiece: roundedUpToTiles(max(byCount, bySize, 1)))
    }

    /// Pieces of `rowsPerPiece` rows, the last one shorter. A multiple of `BlockColumnLists.tileWidth` rows, unless
    /// one piece holds all rows.
    public init(rows: Int, rowsPerPiece: Int) {
        precondition(rowsPerPiece > 0 && (rowsPerPiece % BlockColumnLists.tileWidth == 0 || rowsPerPiece >= rows),
                     "weight-gradient pieces must be a positive multiple of \(BlockColumnLists.tileWidth) rows, got \(rowsPerPiece)")
        ranges = stride(from: 0, to: rows, by: rowsPerPiece).map { $0..<min($0 + rowsPerPiece, rows) }
    }
}
