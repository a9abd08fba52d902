import HaloNN
import HaloTensor

/// How many pieces a multi-rank run forms its first layer's weight gradient in (`WeightGradientPieces`), so that
/// each piece's sum over the ranks starts while the next piece is computed: part of the run's plan, decided from
/// this host's measured rates, the same on every rank, and recorded in the report.
///
/// Every piece multiplies the whole output gradient G, so each piece after the first costs one more pass over G
/// (rows × hidden values). What the pieces can hide is bounded by the product they overlap: the first layer's
/// weight-gradient product itself. So the decision weighs the product against the pass, per row of G (rows cancel,
/// which makes the decision the same on every rank whatever its share of the rows):
/// `pieces = 1 + ⌊overheadBudget · product / pass⌋`, at most `WeightGradientPieces.maximumPieces`. Measured on a
/// Zen 4 host (`halo microbench`, one thread): a piece costs about 4 % of Amazon-Photo's GEMM weight gradient
/// (36 ms) and 15 % of Coauthor-Physics's CSR one (25 ms), which makes seven pieces and two.
///
/// A piece's cost is measured by the calibration on each path (the product in four pieces against it whole,
/// `KernelRates.…PieceSecondsPerElement`; rates measured before that take the listing rate, one read of G and a
/// little more), the product is costed as the first-layer cost model costs it on the path the run takes. Without
/// a calibration the gradient is formed whole (one piece).
public struct WeightGradientStreaming: Sendable, Codable, Equatable {
    /// Pieces when the first layer's aggregate was computed once before training (its weight gradient is
    /// `(ÂX)ᵀ·G`, by GEMM), and when the layer multiplies the features every epoch (`Xᵀ·(ÂᵀG)`) held dense, as
    /// lookup codes or as CSR. Every representation's, so a representation the user forces has its own.
    public var precomputed: Int
    public var dense: Int
    public var lookup: Int
    public var csr: Int

    /// The share of the weight-gradient product that the extra passes over G may cost.
    public static let overheadBudget = 0.25

    public init(precomputed: Int, dense: Int, lookup: Int, csr: Int) {
        self.precomputed = precomputed
        self.dense = dense
        self.lookup = lookup
        self.csr = csr
    }

    /// One piece everywhere: the library default and what runs without rates.
    public static let whole = WeightGradientStreaming(precomputed: 1, dense: 1, lookup: 1, csr: 1)

    /// The pieces when the product costs `product` and each extra piece `pass` (any common unit): the most when
    /// the pieces cost nothing measurable.
    public static func pieces(product: Double, pass: Double) -> Int {
        guard product > 0, product.isFinite, pass >= 0, pass.isFinite else { return 1 }
        guard pass > 0 else { return WeightGradientPieces.maximumPieces }
        let extra = (overheadBudget * product / pass).rounded(.down)
        return Int(min(Double(WeightGradientPieces.maximumPieces - 1), extra)) + 1
    }

    /// This host's decision for `workload`.
    public init(rates: KernelRates, workload w: FirstLayerWorkload) {
        func decided(_ path: Path) -> Int {
            let cost = Self.costPerRow(path, rates: rates, workload: w)
            return Self.pieces(product: cost.product, pass: cost.pass)
        }
        let gemm = decided(.gemm)
        self.init(precomputed: gemm, dense: gemm, lookup: decided(.lookup), csr: decided(.csr))
    }

    /// The products a weight gradient is formed by.
    public enum Path: Sendable {
        case gemm, lookup, csr

        /// The product a run takes: GEMM against a precomputed aggregate and for dense features.
        public init(precomputedAggregate: Bool, representation: FeatureRepresentation) {
            if precomputedAggregate {
                self = .gemm
                return
            }
            self = switch representation {
            case .dense: .gemm
            case .lookup: .lookup
            case .csr: .csr
            }
        }
    }

    /// The weight-gradient product on `path` and each extra piece's pass over G, in seconds per row of G, by
    /// `rates`.
    ///
    /// As `FirstLayerCostModel.seconds` costs the whole product. Against a dense aggregate (and for dense features)
    /// the product is a GEMM, or G's lists when G is sparse enough; each rank decides that by its own G, epoch by
    /// epoch. The lists add no pass per piece (every 64-column tile walks all of them anyway), so the GEMM's cost
    /// stands for both. A piece's pass is as measured, or, in rates from before pieces were, the listing rate's.
    public static func costPerRow(_ path: Path, rates: KernelRates, workload w: FirstLayerWorkload) -> (product: Double, pass: Double) {
        let f = Double(w.featureWidth), h = Double(w.hiddenWidth)
        func pass(_ measured: Double?) -> Double { h * (measured ?? rates.listingSecondsPerElement) }
        switch path {
        case .gemm:
            return (2 * f * h * rates.gemmTransposedSecondsPerFlop, pass(rates.gemmTransposedPieceSecondsPerElement))
        case .lookup:
            return (f * h * rates.lookupTransposedSecondsPerCellColumn, pass(rates.lookupTransposedPieceSecondsPerElement))
        case .csr:
            let nonZerosPerRow = Double(w.features.nonZeros) / Double(max(w.rows, 1))
            return (nonZerosPerRow * h * rates.spmmTransposedSecondsPerNonZeroColumn, pass(rates.spmmTransposedPieceSecondsPerElement))
        }
    }

    /// The pieces of a run that does (or does not) precompute the first aggregate, with features held as
    /// `representation`.
    public func pieces(precomputedAggregate: Bool, representation: FeatureRepresentation) -> Int {
        if precomputedAggregate { return precomputed }
        return switch representation {
        case .dense: dense
        case .lookup: lookup
        case .csr: csr
        }
    }
}
