import HaloGraph
import HaloNN
import HaloTensor

/// How the first layer multiplies sparse input features: as a dense matrix by GEMM, by table lookup (indicator
/// features, `BinaryMatrix`), or in CSR form.
///
/// Dense and sparse first layers compute different things before the exchange (aggregate-first or transform-first,
/// `GraphConvolution.transformsFirst`), so every rank of a run must use the same kind: ranks decide from the
/// statistics of all parts together, never from their own part alone.
public enum FeatureRepresentation: String, Sendable, Codable {
    case dense
    case lookup
    case csr
}

extension LayerInput {
    /// The representation these features are multiplied in.
    public var representation: FeatureRepresentation {
        switch self {
        case .dense: return .dense
        case .sparse(let s): return s.binary != nil ? .lookup : .csr
        }
    }
}

/// The facts about input features that decide their representation, for one part or summed over all parts.
///
/// Its thresholds were measured on one AVX-512 host (below) and decide only with the host calibration off
/// (`halo train --calibration off`, and the library's default); otherwise `FirstLayerCostModel` decides from this
/// host's measured kernel rates and the run's shapes (docs/calibration.md). On an AVX2 host these thresholds made
/// the default 1.6× slower than the alternative on Amazon-Photo (issue 13).
public struct FeatureStatistics: Sendable, Equatable {
    /// Density from which indicator features (every non-zero one value) are multiplied by table lookup.
    ///
    /// Lookup costs one vector addition per four columns whatever the density; CSR one multiply-add per
    /// non-zero. `halo microbench` on Amazon-Photo (35% dense, width 256, 2 threads): `X·W` 4.2–6.7 ms lookup,
    /// 7.1–9.3 ms CSR; `Xᵀ·G` 5.3–6.4 ms lookup, 11.6–17.5 ms CSR. CSR scales with density, so lookup wins from
    /// about 15%.
    public static let lookupDensity = 0.15
    /// Density from which other sparse features are multiplied as a dense matrix by GEMM.
    ///
    /// GEMM's time does not depend on density: on the same features `X·W` 6.1–7.0 ms, `Xᵀ·G` 6.7–7.6 ms, about
    /// 13.5 ms together against ~23 ms for CSR at 35%, so GEMM wins from about 20% (Coauthor-Physics, 0.4%, stays
    /// CSR).
    public static let denseDensity = 0.2
    /// Largest dense copy made of sparse features on one rank (bytes).
    public static let denseCopyBudget = 2 << 30

    /// Whether the dataset stores its features sparse (the same for every part).
    public var sparse: Bool
    public var nonZeros: Int
    public var cells: Int
    /// Every non-zero has one value (a part without non-zeros qualifies).
    public var indicator: Bool
    /// A dense copy fits `denseCopyBudget` (on every rank, once combined).
    public var denseCopyFits: Bool

    public init(sparse: Bool, nonZeros: Int, cells: Int, indicator: Bool, denseCopyFits: Bool) {
        self.sparse = sparse
        self.nonZeros = nonZeros
        self.cells = cells
        self.indicator = indicator
        self.denseCopyFits = denseCopyFits
    }

    /// The statistics of one part's features.
    public init(_ features: NodeFeatures) {
        switch features {
        case .dense(let m):
            self.init(sparse: false, nonZeros: m.count, cells: m.count, indicator: false, denseCopyFits: true)
        case .sparse(let s):
            self.init(sparse: true, nonZeros: s.nonZeroCount, cells: s.rows * s.cols,
                      indicator: s.nonZeroCount == 0 || BinaryMatrix.commonValue(of: s) != nil,
                      denseCopyFits: s.rows * s.cols * 4 <= Self.denseCopyBudget)
        }
    }

    public var density: Double { cells > 0 ? Double(nonZeros) / Double(cells) : 0 }

    /// Whether aggregating the features once before training (`--precompute-layer0`) pays: they are used dense
    /// or by table lookup (not CSR), and their dense aggregate `Â·X` fits the dense-copy budget. Amazon-Photo, three
    /// runs of bench/peer_comparison.sh: 12.5–14.0 ms per epoch precomputed, where the weight gradient skips the
    /// zeros of the post-ReLU gradient, against 17.6–18.6 ms by lookup every epoch, whose weight gradient sees that
    /// gradient after aggregation, no longer sparse. Features used as CSR stay sparse: their aggregate would be dense
    /// and far larger (Coauthor-Physics at 4 ranks: 4.7 GB and 3.4 s per epoch precomputed, 0.5 GB and 0.28 s not).
    /// Over statistics combined from every rank's part, all ranks decide alike.
    public var suitsPrecomputedAggregation: Bool {
        denseCopyFits && representation(inputDropout: false) != .csr
    }

    /// The representation these statistics call for.
    ///
    /// Input dropout rules out lookup: it changes the values every epoch, and rebuilding the codes each time costs
    /// more than lookup saves (Amazon-Photo, input dropout 0.5: 56.6 ms per epoch by lookup with rebuilt codes,
    /// 45.4–48.7 ms CSR, 21.9 ms dense, whose dropout is one vectorised pass).
    public func representation(inputDropout: Bool) -> FeatureRepresentation {
        guard sparse else { return .dense }
        if indicator && !inputDropout && density >= Self.lookupDensity { return .lookup }
        return density >= Self.denseDensity && denseCopyFits ? .dense : .csr
    }

    /// The statistics of all parts together: counts add up, a property holds only if it holds for every part.
    public static func combining(_ parts: [FeatureStatistics]) -> FeatureStatistics {
        FeatureStatistics(
            sparse: parts.contains { $0.sparse }, nonZeros: parts.reduce(0) { $0 + $1.nonZeros },
            cells: parts.reduce(0) { $0 + $1.cells }, indicator: parts.allSatisfy(\.indicator),
            denseCopyFits: parts.allSatisfy(\.denseCopyFits))
    }

    /// `combining` over the ranks of a run, through an all-reduce: every rank gets the same result.
    public func combinedOverRanks(_ collectives: any Collectives, worldSize: Int) throws -> FeatureStatistics {
        var sums = [sparse ? 1 : 0, Double(nonZeros), Double(cells), indicator ? 1 : 0, denseCopyFits ? 1 : 0]
        try collectives.allReduceSum(&sums)
        let all = Double(worldSize)
        return FeatureStatistics(sparse: sums[0] > 0, nonZeros: Int(sums[1]), cells: Int(sums[2]),
                                 indicator: sums[3] == all, denseCopyFits: sums[4] == all)
    }
}
