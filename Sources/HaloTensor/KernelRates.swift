import Foundation

/// How fast this host runs the kernels Halo chooses between, as time per unit of work, measured by
/// `HostCalibration.measure`. A cost model multiplies these by a run's own work counts (`FirstLayerCostModel` in
/// HaloTraining), so the rates are per unit, not per calibration shape.
///
/// Each rate is a best-of-a-few wall time divided by the work the kernel did, at the thread count in `threads`.
/// Units are chosen so that every kernel's time is (work count) × (seconds per unit):
/// - dense GEMM: floating-point operations (2·m·k·n);
/// - CSR products: non-zeros × dense width (one multiply-add each);
/// - table lookup (`BinaryMatrix`): cells (rows × columns of the indicator matrix) × dense width, because its cost
///   does not depend on the density;
/// - listed products (`BlockColumnLists`): non-zeros of G × depth (`Aᵀ·G`) or × output columns (`G·b`), and
///   listing: elements of G.
public struct KernelRates: Sendable, Codable, Equatable {
    /// Compute threads the rates were measured with (a rank's pool).
    public var threads: Int
    /// `X·W`, tall-skinny (many rows × features × hidden): seconds per floating-point operation.
    public var gemmForwardSecondsPerFlop: Double
    /// The weight gradient `Xᵀ·G` by GEMM (features × rows × hidden): seconds per floating-point operation.
    public var gemmTransposedSecondsPerFlop: Double
    /// Graph aggregation `Â·H` (CSR × dense, `SparseMatrix.multiply`): seconds per non-zero per dense column.
    public var spmmSecondsPerNonZeroColumn: Double
    /// Sparse features' `X·W` in CSR (`SparseMatrix.multiply` gathering rows of a small W): per non-zero per column.
    public var csrFeaturesSecondsPerNonZeroColumn: Double
    /// Sparse features' weight gradient `Xᵀ·G` in CSR (`SparseMatrix.multiplyTransposed`): per non-zero per column.
    public var spmmTransposedSecondsPerNonZeroColumn: Double
    /// `X·W` by table lookup (`BinaryMatrix.multiply`): seconds per cell of X per column of W.
    public var lookupSecondsPerCellColumn: Double
    /// `Xᵀ·G` by table lookup (`BinaryMatrix.multiplyTransposed`): seconds per cell of X per column of G.
    public var lookupTransposedSecondsPerCellColumn: Double
    /// Listing a gradient's non-zeros (`BlockColumnLists.init`): seconds per element of G.
    public var listingSecondsPerElement: Double
    /// `Aᵀ·G` from the lists (`accumulateTransposedProduct`): seconds per non-zero of G per column of A.
    public var listedSecondsPerNonZeroDepth: Double
    /// An input gradient `G·Wᵀ` from the lists (`BlockColumnLists.multiply`, which adds a row of Wᵀ to an output
    /// row per non-zero): seconds per non-zero of G per output column.
    public var listedInputGradientSecondsPerNonZeroColumn: Double
    /// A tall forward product `X·W` (width 256) timed as one call and as calls of `GEMMRowBlocking.rowsPerCall`
    /// rows, at three inner dimensions: a short first layer's (100 features), a hidden layer's (256) and the
    /// calibration's feature width (512, whose one-call rate is `gemmForwardSecondsPerFlop`). Seconds per
    /// floating-point operation. The blocked rates are nil where no block was timed (L2 size unknown or too small,
    /// or blocks as large as a thread's rows), and all five in rates measured before row blocking was.
    /// `forwardRowBlockingPays(depth:)` is the decision they feed.
    public var gemmShortForwardSecondsPerFlop: Double?
    public var gemmShortForwardBlockedSecondsPerFlop: Double?
    public var gemmHiddenForwardSecondsPerFlop: Double?
    public var gemmHiddenForwardBlockedSecondsPerFlop: Double?
    public var gemmForwardBlockedSecondsPerFlop: Double?
    /// What each piece after the first adds when the weight gradient `Xᵀ·G` is formed in pieces of rows
    /// (`WeightGradientPieces`), by GEMM, by CSR and by table lookup: seconds per element of G, measured as the
    /// product in `HostCalibration.weightGradientPieces` pieces minus the whole product, per extra piece. Every
    /// piece multiplies all of G, so this is about a pass over it; zero where the pieces cost nothing measurable,
    /// nil in rates measured before pieces were (`WeightGradientStreaming` then takes the listing rate).
    public var gemmTransposedPieceSecondsPerElement: Double?
    public var spmmTransposedPieceSecondsPerElement: Double?
    public var lookupTransposedPieceSecondsPerElement: Double?

    public init(threads: Int, gemmForwardSecondsPerFlop: Double, gemmTransposedSecondsPerFlop: Double,
                spmmSecondsPerNonZeroColumn: Double, csrFeaturesSecondsPerNonZeroColumn: Double,
                spmmTransposedSecondsPerNonZeroColumn: Double,
                lookupSecondsPerCellColumn: Double, lookupTransposedSecondsPerCellColumn: Double,
                listingSecondsPerElement: Double, listedSecondsPerNonZeroDepth: Double,
                listedInputGradientSecondsPerNonZeroColumn: Double,
                gemmShortForwardSecondsPerFlop: Double? = nil, gemmShortForwardBlockedSecondsPerFlop: Double? = nil,
                gemmHiddenForwardSecondsPerFlop: Double? = nil, gemmHiddenForwardBlockedSecondsPerFlop: Double? = nil,
                gemmForwardBlockedSecondsPerFlop: Double? = nil, gemmTransposedPieceSecondsPerElement: Double? = nil,
                spmmTransposedPieceSecondsPerElement: Double? = nil, lookupTransposedPieceSecondsPerElement: Double? = nil) {
        self.threads = threads
        self.gemmForwardSecondsPerFlop = gemmForwardSecondsPerFlop
        self.gemmTransposedSecondsPerFlop = gemmTransposedSecondsPerFlop
        self.spmmSecondsPerNonZeroColumn = spmmSecondsPerNonZeroColumn
        self.csrFeaturesSecondsPerNonZeroColumn = csrFeaturesSecondsPerNonZeroColumn
        self.spmmTransposedSecondsPerNonZeroColumn = spmmTransposedSecondsPerNonZeroColumn
        self.lookupSecondsPerCellColumn = lookupSecondsPerCellColumn
        self.lookupTransposedSecondsPerCellColumn = lookupTransposedSecondsPerCellColumn
        self.listingSecondsPerElement = listingSecondsPerElement
        self.listedSecondsPerNonZeroDepth = listedSecondsPerNonZeroDepth
        self.listedInputGradientSecondsPerNonZeroColumn = listedInputGradientSecondsPerNonZeroColumn
        self.gemmShortForwardSecondsPerFlop = gemmShortForwardSecondsPerFlop
        self.gemmShortForwardBlockedSecondsPerFlop = gemmShortForwardBlockedSecondsPerFlop
        self.gemmHiddenForwardSecondsPerFlop = gemmHiddenForwardSecondsPerFlop
        self.gemmHiddenForwardBlockedSecondsPerFlop = gemmHiddenForwardBlockedSecondsPerFlop
        self.gemmForwardBlockedSecondsPerFlop = gemmForwardBlockedSecondsPerFlop
        self.gemmTransposedPieceSecondsPerElement = gemmTransposedPieceSecondsPerElement
        self.spmmTransposedPieceSecondsPerElement = spmmTransposedPieceSecondsPerElement
        self.lookupTransposedPieceSecondsPerElement = lookupTransposedPieceSecondsPerElement
    }

    /// How many numbers `vector` holds.
    public static let vectorCount = 19

    /// The rates in a fixed order, for sending them between ranks as one vector (`init(vector:)` reads it back);
    /// a rate not measured travels as 0, a piece's cost (which may be 0) as −1.
    public var vector: [Double] {
        [Double(threads), gemmForwardSecondsPerFlop, gemmTransposedSecondsPerFlop, spmmSecondsPerNonZeroColumn,
         csrFeaturesSecondsPerNonZeroColumn, spmmTransposedSecondsPerNonZeroColumn, lookupSecondsPerCellColumn, lookupTransposedSecondsPerCellColumn,
         listingSecondsPerElement, listedSecondsPerNonZeroDepth, listedInputGradientSecondsPerNonZeroColumn]
            + [gemmShortForwardSecondsPerFlop, gemmShortForwardBlockedSecondsPerFlop, gemmHiddenForwardSecondsPerFlop,
               gemmHiddenForwardBlockedSecondsPerFlop, gemmForwardBlockedSecondsPerFlop].map { $0 ?? 0 }
            + [gemmTransposedPieceSecondsPerElement, spmmTransposedPieceSecondsPerElement,
               lookupTransposedPieceSecondsPerElement].map { $0 ?? -1 }
    }

    /// Rates from `vector`'s layout; nil when the count is wrong.
    public init?(vector v: [Double]) {
        guard v.count == Self.vectorCount else { return nil }
        func measured(_ x: Double) -> Double? { x > 0 ? x : nil }
        func measuredCost(_ x: Double) -> Double? { x >= 0 ? x : nil }
        self.init(threads: Int(v[0]), gemmForwardSecondsPerFlop: v[1], gemmTransposedSecondsPerFlop: v[2],
                  spmmSecondsPerNonZeroColumn: v[3], csrFeaturesSecondsPerNonZeroColumn: v[4],
                  spmmTransposedSecondsPerNonZeroColumn: v[5], lookupSecondsPerCellColumn: v[6],
                  lookupTransposedSecondsPerCellColumn: v[7], listingSecondsPerElement: v[8],
                  listedSecondsPerNonZeroDepth: v[9], listedInputGradientSecondsPerNonZeroColumn: v[10],
                  gemmShortForwardSecondsPerFlop: measured(v[11]), gemmShortForwardBlockedSecondsPerFlop: measured(v[12]),
                  gemmHiddenForwardSecondsPerFlop: measured(v[13]), gemmHiddenForwardBlockedSecondsPerFlop: measured(v[14]),
                  gemmForwardBlockedSecondsPerFlop: measured(v[15]),
                  gemmTransposedPieceSecondsPerElement: measuredCost(v[16]),
                  spmmTransposedPieceSecondsPerElement: measuredCost(v[17]),
                  lookupTransposedPieceSecondsPerElement: measuredCost(v[18]))
    }

    /// The inner dimensions the forward product was timed at, whole and in row blocks.
    public static let rowBlockingDepths = (short: 100, hidden: HostCalibration.width, features: HostCalibration.features)

    /// Whether a tall forward product `X·W` with inner dimension `depth` should be cut into calls of
    /// `GEMMRowBlocking.rowsPerCall` rows: `GEMMRowBlocking.worthwhile` on the pair of rates measured at the
    /// nearest of `rowBlockingDepths` (nearest by ratio: what blocking saves is C's traffic per flop, which falls
    /// as 1/depth), with a margin of `rowBlockingMargin`. False when that pair was not measured.
    public func forwardRowBlockingPays(depth: Int) -> Bool {
        let distance = { (d: Int) in abs(log(Double(max(depth, 1)) / Double(d))) }
        guard let nearest = forwardRowBlockingRates.min(by: { distance($0.depth) < distance($1.depth) }),
              let whole = nearest.whole, let blocked = nearest.blocked else { return false }
        // Rates are seconds per flop; `worthwhile` compares speeds.
        return GEMMRowBlocking.worthwhile(wholeRate: 1 / whole, blockedRate: 1 / blocked, margin: Self.rowBlockingMargin)
    }

    /// The forward product's rates per measured depth, one call and row blocks (seconds per flop; nil: not
    /// measured).
    public var forwardRowBlockingRates: [(depth: Int, whole: Double?, blocked: Double?)] {
        let depths = Self.rowBlockingDepths
        return [
            (depths.short, gemmShortForwardSecondsPerFlop, gemmShortForwardBlockedSecondsPerFlop),
            (depths.hidden, gemmHiddenForwardSecondsPerFlop, gemmHiddenForwardBlockedSecondsPerFlop),
            (depths.features, gemmForwardSecondsPerFlop, gemmForwardBlockedSecondsPerFlop),
        ]
    }

    /// How much faster the blocked calls must have been. The calibration's operands have 8192 rows, a run's
    /// 10⁴–10⁶, and on a Zen 4 host with OpenBLAS's AVX-512 kernels the calibration measured `m × 256 × 100` 3–6 %
    /// faster in blocks while `halo microbench` measured it 3 % slower at 100,000 rows; the gains that held at every
    /// size (AVX2 kernels, docs/gemm.md) were 7–13 %.
    public static let rowBlockingMargin = 0.05

    /// The density of G below which `Aᵀ·G` from G's lists (listing included) beats GEMM for an A `depth` columns
    /// wide, by these rates: listing costs `listing` per element of G and the product `listed · depth` per
    /// non-zero, against `2 · depth` flops of GEMM per element. A calibrated run lists below it at each layer's
    /// depth (`GradientListing`); without a calibration, below `BlockColumnLists.worthwhileDensity`.
    public func listedBreakEvenDensity(depth: Int) -> Double {
        let d = Double(depth)
        return max(0, (2 * d * gemmTransposedSecondsPerFlop - listingSecondsPerElement) / (d * listedSecondsPerNonZeroDepth))
    }

    /// The density of G below which the input gradient `G·Wᵀ` (W: `width` × G's columns) from G's lists beats
    /// GEMM, listing included: per element of G, `2 · width` flops of GEMM against `listing` plus, per non-zero,
    /// `listedInputGradient · width`. Adding rows into the output loads and stores them for every non-zero, so this
    /// breaks even far below `listedBreakEvenDensity`. A calibrated run takes the lists for the input gradient below
    /// it (`GradientListing.inputGradients`); without a calibration, below
    /// `BlockColumnLists.worthwhileInputGradientDensity`.
    public func listedInputGradientBreakEvenDensity(width: Int) -> Double {
        let w = Double(width)
        return max(0, (2 * w * gemmForwardSecondsPerFlop - listingSecondsPerElement) / (w * listedInputGradientSecondsPerNonZeroColumn))
    }

    /// The name of the first rate that is not a positive finite number, or nil when all are (a cache file edited
    /// by hand, or a measurement that went wrong, must not steer a run).
    public var invalidField: String? { invalidRate?.field }

    /// The first rate out of its range and what it should be: a positive finite number, or for a piece's cost a
    /// non-negative one; nil when all are in range.
    public var invalidRate: (field: String, expected: String)? {
        let named: [(String, Double)] = [
            ("threads", Double(threads)), ("gemm_forward_seconds_per_flop", gemmForwardSecondsPerFlop),
            ("gemm_transposed_seconds_per_flop", gemmTransposedSecondsPerFlop),
            ("spmm_seconds_per_non_zero_column", spmmSecondsPerNonZeroColumn),
            ("csr_features_seconds_per_non_zero_column", csrFeaturesSecondsPerNonZeroColumn),
            ("spmm_transposed_seconds_per_non_zero_column", spmmTransposedSecondsPerNonZeroColumn),
            ("lookup_seconds_per_cell_column", lookupSecondsPerCellColumn),
            ("lookup_transposed_seconds_per_cell_column", lookupTransposedSecondsPerCellColumn),
            ("listing_seconds_per_element", listingSecondsPerElement),
            ("listed_seconds_per_non_zero_depth", listedSecondsPerNonZeroDepth),
            ("listed_input_gradient_seconds_per_non_zero_column", listedInputGradientSecondsPerNonZeroColumn),
        ]
        let optional: [(String, Double?)] = [
            ("gemm_short_forward_seconds_per_flop", gemmShortForwardSecondsPerFlop),
            ("gemm_short_forward_blocked_seconds_per_flop", gemmShortForwardBlockedSecondsPerFlop),
            ("gemm_hidden_forward_seconds_per_flop", gemmHiddenForwardSecondsPerFlop),
            ("gemm_hidden_forward_blocked_seconds_per_flop", gemmHiddenForwardBlockedSecondsPerFlop),
            ("gemm_forward_blocked_seconds_per_flop", gemmForwardBlockedSecondsPerFlop),
        ]
        // A piece's cost may be zero (nothing measurable), not negative.
        let costs: [(String, Double?)] = [
            ("gemm_transposed_piece_seconds_per_element", gemmTransposedPieceSecondsPerElement),
            ("spmm_transposed_piece_seconds_per_element", spmmTransposedPieceSecondsPerElement),
            ("lookup_transposed_piece_seconds_per_element", lookupTransposedPieceSecondsPerElement),
        ]
        if let rate = (named + optional.compactMap { name, rate in rate.map { (name, $0) } }).first(where: { !($0.1.isFinite && $0.1 > 0) }) {
            return (rate.0, "a positive finite number")
        }
        if let cost = costs.compactMap({ name, cost in cost.map { (name, $0) } }).first(where: { !($0.1.isFinite && $0.1 >= 0) }) {
            return (cost.0, "a non-negative finite number")
        }
        return nil
    }
}
