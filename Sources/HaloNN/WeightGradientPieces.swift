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
/// order. Pieces start at multiples of `rowTile` rows, where both the listed product's tiles and OpenBLAS's row blocks
/// start (`GEMMPartition.rowQuantum`), so every path computes each row exactly as the whole product does: the same
/// model whatever the pieces (tested on every path, on one and two threads).
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

    /// Pieces start at multiples of this many rows: the least common multiple of the listed product's tile
    /// (`BlockColumnLists.tileWidth`, 64) and of `GEMMPartition.rowQuantum` (48), 192. A constant, not the host's
    /// kernel family's own block, so ranks on different hosts cut alike.
    public static let rowTile: Int = {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let (a, b) = (BlockColumnLists.tileWidth, GEMMPartition.rowQuantum)
        return a / gcd(a, b) * b
    }()

    /// The whole gradient as one piece.
    public static func whole(rows: Int) -> WeightGradientPieces { WeightGradientPieces(rows: rows, rowsPerPiece: max(rows, 1)) }

    /// A `rows` × `columns` weight gradient in (at most) `pieces` pieces of equal whole tiles: fewer where a piece
    /// would hold less than `minimumValues` values, never more than `maximumPieces`.
    public init(rows: Int, columns: Int, pieces: Int) {
        precondition(pieces >= 1, "a weight gradient needs at least one piece, got \(pieces)")
        let tile = Self.rowTile
        func roundedUpToTiles(_ n: Int) -> Int { (n + tile - 1) / tile * tile }
        let wanted = min(pieces, Self.maximumPieces)
        let byCount = (rows + wanted - 1) / wanted
        self.init(rows: rows, rowsPerPiece: roundedUpToTiles(max(byCount, Self.minimumRows(columns: columns), 1)))
    }

    /// A `rows` × `columns` weight gradient in (at most) `pieces` pieces whose sizes change by about `ratio` from
    /// one piece to the next: below 1 the pieces shrink, so the sum left after the last product is short (where the
    /// link is faster than the product); above 1 the first pieces are small, so the sums start early (where the
    /// link is slower). Ratio 1 is the equal cut of `init(rows:columns:pieces:)`.
    ///
    /// The cut is made in whole tiles of `rowTile` rows: each boundary is the geometric one rounded to a tile, kept so that
    /// every piece but the last (which the rows may cut short) holds at least `minimumValues` values (fewer pieces
    /// when not all can). Rounding to tiles can make neighbouring pieces a tile apart against the ratio when it is
    /// near 1.
    public init(rows: Int, columns: Int, pieces: Int, ratio: Double) {
        precondition((Self.smallestRatio...(1 / Self.smallestRatio)).contains(ratio),
                     "weight-gradient pieces: the ratio between pieces must be in \(Self.smallestRatio)...\(1 / Self.smallestRatio), got \(ratio)")
        guard ratio != 1 else {
            self.init(rows: rows, columns: columns, pieces: pieces)
            return
        }
        precondition(pieces >= 1, "a weight gradient needs at least one piece, got \(pieces)")
        let tile = Self.rowTile
        let tiles = max((rows + tile - 1) / tile, 1)
        let minimumTiles = max((Self.minimumRows(columns: columns) + tile - 1) / tile, 1)
        let count = max(1, min(pieces, Self.maximumPieces, tiles / minimumTiles))
        // Piece k's share is ratioᵏ of the first's (by multiplication, the same bits on every host); boundaries at
        // the cumulative shares, in tiles.
        var weights = [1.0]
        for _ in 1..<count { weights.append(weights[weights.count - 1] * ratio) }
        let total = weights.reduce(0, +)
        var boundaries = [0]
        var cumulative = 0.0
        for k in 1..<count {
            cumulative += weights[k - 1]
            let ideal = Int((Double(tiles) * cumulative / total).rounded())
            let lowest = boundaries[k - 1] + minimumTiles, highest = tiles - (count - k) * minimumTiles
            boundaries.append(min(max(ideal, lowest), highest))
        }
        boundaries.append(tiles)
        self.init(ranges: zip(boundaries, boundaries.dropFirst()).map { min($0 * tile, rows)..<min($1 * tile, rows) }
            .filter { !$0.isEmpty })
    }

    private init(ranges: [Range<Int>]) { self.ranges = ranges }

    /// Rows a piece of a `columns`-wide weight needs to hold `minimumValues` values.
    private static func minimumRows(columns: Int) -> Int { (minimumValues + max(columns, 1) - 1) / max(columns, 1) }

    /// The ratios `init(rows:columns:pieces:ratio:)` takes lie between this and its inverse.
    public static let smallestRatio = 1.0 / 16

    /// Pieces of `rowsPerPiece` rows, the last one shorter. A multiple of `rowTile` rows, unless one piece holds all
    /// rows.
    public init(rows: Int, rowsPerPiece: Int) {
        precondition(rowsPerPiece > 0 && (rowsPerPiece % Self.rowTile == 0 || rowsPerPiece >= rows),
                     "weight-gradient pieces must be a positive multiple of \(Self.rowTile) rows, got \(rowsPerPiece)")
        self.init(ranges: stride(from: 0, to: rows, by: rowsPerPiece).map { $0..<min($0 + rowsPerPiece, rows) })
    }
}
