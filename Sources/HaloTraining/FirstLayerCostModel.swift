import HaloNN
import HaloTensor

/// The work of a run's first layer, in the counts the cost model scales kernel rates by. Built from statistics
/// combined over all ranks, so every rank builds the same one and reaches the same decision.
public struct FirstLayerWorkload: Sendable, Equatable {
    /// The input features (all parts together).
    public var features: FeatureStatistics
    /// Columns of the input features.
    public var featureWidth: Int
    /// Non-zeros of the aggregation operator Â (all parts together).
    public var aggregationNonZeros: Int
    /// The first layer's output width.
    public var hiddenWidth: Int
    public var inputDropout: Bool
    /// Share of the first layer's output gradient that is non-zero: the units the ReLU lets through
    /// (`activeShareAfterReLU`), of which dropout keeps `1 − p`; a normalisation layer in between, or a one-layer
    /// model (the loss's gradient), makes it dense.
    public var gradientDensity: Double

    /// Share of a hidden layer's ReLU outputs that are positive once training is under way. Counted in one run of
    /// GCN-2, hidden 256, dropout 0.5 on Amazon-Photo (README, Speed): the gradient was 26 % non-zero in epoch 0 and
    /// 4.6–5.6 % from epoch 10 on, so about 10 % of the units are active; the model takes the later epochs, which
    /// are nearly all of a run.
    public static let activeShareAfterReLU = 0.1

    public init(features: FeatureStatistics, featureWidth: Int, aggregationNonZeros: Int, hiddenWidth: Int,
                inputDropout: Bool, gradientDensity: Double) {
        self.features = features
        self.featureWidth = featureWidth
        self.aggregationNonZeros = aggregationNonZeros
        self.hiddenWidth = hiddenWidth
        self.inputDropout = inputDropout
        self.gradientDensity = gradientDensity
    }

    /// The workload of `model`'s first layer on these features.
    public init(features: FeatureStatistics, featureWidth: Int, aggregationNonZeros: Int, model: ModelConfiguration) {
        self.init(features: features, featureWidth: featureWidth, aggregationNonZeros: aggregationNonZeros,
                  hiddenWidth: model.hiddenWidth, inputDropout: model.inputDropout > 0,
                  gradientDensity: model.normalization == .none && model.layers > 1
                    ? Self.activeShareAfterReLU * Double(1 - model.dropout) : 1)
    }

    public var rows: Int { featureWidth > 0 ? features.cells / featureWidth : 0 }
}

/// The ways a first layer can multiply its features each epoch. `precomputed` aggregates the features once
/// before training (`--precompute-layer0`) and multiplies the dense aggregate by GEMM; `hybrid` keeps that
/// aggregate for the weight gradient `(ÂX)ᵀ·G` (whose G is mostly zeros, so it goes by G's lists) but computes the
/// forward product as `Â·(X·W)` from the sparse features (lookup or CSR) and one aggregation, cheaper than the dense
/// GEMM when X is sparse; the others aggregate `X·W` (or, for narrow dense features, `X`) every epoch, with X held
/// as `FeatureRepresentation` says.
public enum FirstLayerPath: String, Sendable, Codable, CaseIterable, Comparable {
    case precomputed, hybrid, dense, lookup, csr

    public static func < (a: Self, b: Self) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
}

/// The densest output gradient a layer lists (`BlockColumnLists`) for its products with dense matrices rather than
/// multiplying it by GEMM. For weight gradients the break-even depends on the products' depth, the layer's input
/// width: layer 0's is the feature width, the others' the hidden width. The input gradient `G·Wᵀ` of an
/// aggregate-first layer or SAGE's self term (hidden layers only: layer 0 has none) has its own, lower one.
public struct GradientListing: Sendable, Codable, Equatable {
    public var firstLayer: Double
    public var hiddenLayers: Double
    public var inputGradients: Double

    public init(firstLayer: Double, hiddenLayers: Double,
                inputGradients: Double = BlockColumnLists.worthwhileInputGradientDensity) {
        self.firstLayer = firstLayer
        self.hiddenLayers = hiddenLayers
        self.inputGradients = inputGradients
    }

    /// The fixed thresholds (`BlockColumnLists.worthwhileDensity`, `worthwhileInputGradientDensity`).
    public static let constants = GradientListing(firstLayer: BlockColumnLists.worthwhileDensity,
                                                  hiddenLayers: BlockColumnLists.worthwhileDensity)

    private enum CodingKeys: String, CodingKey { case firstLayer, hiddenLayers, inputGradients }

    /// Reports written before the input gradient's threshold was measured hold only the first two: the constant.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(firstLayer: try c.decode(Double.self, forKey: .firstLayer),
                  hiddenLayers: try c.decode(Double.self, forKey: .hiddenLayers),
                  inputGradients: try c.decodeIfPresent(Double.self, forKey: .inputGradients)
                      ?? BlockColumnLists.worthwhileInputGradientDensity)
    }

    /// The densest gradient ever listed, whatever the rates say: the lists of a denser one take more memory than
    /// the gradient itself (5 bytes per non-zero), which the memory estimate does not allow for.
    public static let maximumDensity = 0.5

    /// This host's break-evens (`KernelRates.listedBreakEvenDensity` at the two depths,
    /// `listedInputGradientBreakEvenDensity` at the hidden width), at most `maximumDensity`.
    public init(rates: KernelRates, featureWidth: Int, hiddenWidth: Int) {
        self.init(firstLayer: min(Self.maximumDensity, rates.listedBreakEvenDensity(depth: featureWidth)),
                  hiddenLayers: min(Self.maximumDensity, rates.listedBreakEvenDensity(depth: hiddenWidth)),
                  inputGradients: min(Self.maximumDensity, rates.listedInputGradientBreakEvenDensity(width: hiddenWidth)))
    }

    /// Layer `l`'s threshold.
    public func density(ofLayer l: Int) -> Double { l == 0 ? firstLayer : hiddenLayers }
}

/// What a run decided for its first layer (and which gradients every layer lists), and on what basis: recorded
/// in the report.
public struct FirstLayerPlan: Sendable, Codable, Equatable {
    public enum Basis: String, Sendable, Codable {
        /// The cost model over this host's measured rates (`HostCalibration`).
        case calibrated
        /// The fixed density thresholds of `FeatureStatistics` (calibration off).
        case constants
    }

    public var basis: Basis
    /// How the features are held (used every epoch unless `precompute`, and for SAGE's self term).
    public var representation: FeatureRepresentation
    /// Whether a one-process run aggregates the features once before training (when not set by the user).
    public var precompute: Bool
    /// Whether a one-process run with the aggregate computes the forward product from the features as held
    /// (`Â·(X·W)`, the `hybrid` path) rather than by GEMM on the aggregate; the weight gradient uses the aggregate
    /// either way.
    public var forwardThroughFeatures = false
    /// The cost model's estimate of one epoch's first-layer products per path it could take (calibrated only).
    public var estimatedSeconds: [FirstLayerPath: Double]?
    /// The first layer's forward pass timed on the run's own data, precomputed and hybrid, where their estimates were
    /// a near tie (`FirstLayerForwardTrial`); `forwardThroughFeatures` then follows these, not the estimates.
    public var measuredForwardSeconds: [FirstLayerPath: Double]?
    /// Whether `representation` was set by the user (`TrainingJob.featureRepresentation`) rather than chosen.
    public var forced = false
    /// Which gradients every layer lists for its products (same basis as the rest of the plan). Not only the first
    /// layer's: the plan is where the run's kernel choices from the host's rates are kept and reported.
    public var gradientListing: GradientListing
    /// Which layers cut their forward GEMM into row blocks that fit the L2 cache (same basis).
    public var forwardRowBlocking: ForwardRowBlocking
    /// In how many pieces a multi-rank run forms the first layer's weight gradient, each summed over the ranks as
    /// soon as it is formed (same basis).
    public var weightGradientPieces: WeightGradientStreaming
    /// The cut a multi-rank run made from the sum's measured time as well (`WeightGradientSchedule`), in place of
    /// `weightGradientPieces`'s equal count; nil where it made none (`RankTraining.agreedWeightGradientSchedule`
    /// says where: one rank, no rates, a count given by the user, sums after backward, column blocks, or sums
    /// whose rounding or order the cut would change).
    public var weightGradientSchedule: WeightGradientSchedule?

    public init(basis: Basis, representation: FeatureRepresentation, precompute: Bool,
                estimatedSeconds: [FirstLayerPath: Double]? = nil, gradientListing: GradientListing = .constants,
                forwardRowBlocking: ForwardRowBlocking = .none, weightGradientPieces: WeightGradientStreaming = .whole) {
        self.basis = basis
        self.representation = representation
        self.precompute = precompute
        self.estimatedSeconds = estimatedSeconds
        self.gradientListing = gradientListing
        self.forwardRowBlocking = forwardRowBlocking
        self.weightGradientPieces = weightGradientPieces
    }

    enum CodingKeys: String, CodingKey {
        case basis, representation, precompute, forwardThroughFeatures, estimatedSeconds, forced, gradientListing
        case forwardRowBlocking, weightGradientPieces, weightGradientSchedule, measuredForwardSeconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        basis = try c.decode(Basis.self, forKey: .basis)
        representation = try c.decode(FeatureRepresentation.self, forKey: .representation)
        precompute = try c.decode(Bool.self, forKey: .precompute)
        // Reports written before the hybrid path existed never took it.
        forwardThroughFeatures = try c.decodeIfPresent(Bool.self, forKey: .forwardThroughFeatures) ?? false
        forced = try c.decodeIfPresent(Bool.self, forKey: .forced) ?? false
        // Reports written before the listing thresholds were planned used the constant.
        gradientListing = try c.decodeIfPresent(GradientListing.self, forKey: .gradientListing) ?? .constants
        // Reports written before row blocking was planned made one call per thread.
        forwardRowBlocking = try c.decodeIfPresent(ForwardRowBlocking.self, forKey: .forwardRowBlocking) ?? .none
        // Reports written before the weight gradient was streamed in pieces formed it whole.
        weightGradientPieces = try c.decodeIfPresent(WeightGradientStreaming.self, forKey: .weightGradientPieces) ?? .whole
        weightGradientSchedule = try c.decodeIfPresent(WeightGradientSchedule.self, forKey: .weightGradientSchedule)
        estimatedSeconds = try Self.decodeSecondsByPath(c, forKey: .estimatedSeconds)
        measuredForwardSeconds = try Self.decodeSecondsByPath(c, forKey: .measuredForwardSeconds)
    }

    /// Seconds keyed by a path's name, as `encode` writes them; nil when absent.
    private static func decodeSecondsByPath(
        _ c: KeyedDecodingContainer<CodingKeys>, forKey key: CodingKeys
    ) throws -> [FirstLayerPath: Double]? {
        try c.decodeIfPresent([String: Double].self, forKey: key).map { named in
            try Dictionary(uniqueKeysWithValues: named.map { name, seconds in
                guard let path = FirstLayerPath(rawValue: name) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: key, in: c,
                        debugDescription: "\(key.stringValue): expected one of \(FirstLayerPath.allCases.map(\.rawValue)), found \"\(name)\"")
                }
                return (path, seconds)
            })
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(basis, forKey: .basis)
        try c.encode(representation, forKey: .representation)
        try c.encode(precompute, forKey: .precompute)
        try c.encode(forwardThroughFeatures, forKey: .forwardThroughFeatures)
        try c.encode(forced, forKey: .forced)
        try c.encode(gradientListing, forKey: .gradientListing)
        try c.encode(forwardRowBlocking, forKey: .forwardRowBlocking)
        try c.encode(weightGradientPieces, forKey: .weightGradientPieces)
        try c.encodeIfPresent(weightGradientSchedule, forKey: .weightGradientSchedule)
        // Keyed by the path's name (a dictionary keyed by an enum would encode as an array of pairs).
        try c.encodeIfPresent(estimatedSeconds.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.key.rawValue, $0.value) }) },
                              forKey: .estimatedSeconds)
        try c.encodeIfPresent(measuredForwardSeconds.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.key.rawValue, $0.value) }) },
                              forKey: .measuredForwardSeconds)
    }

    /// This plan with the representation the user chose instead (`forced`), when there is one: the estimates stay,
    /// so the report shows what the choice cost by the model's reckoning.
    public func forcing(_ forced: FeatureRepresentation?) -> FirstLayerPlan {
        guard let forced else { return self }
        var plan = self
        plan.representation = forced
        plan.forced = true
        // The hybrid path was costed with the chosen representation's forward product, not the forced one's.
        if forced != representation { plan.forwardThroughFeatures = false }
        return plan
    }

    /// One line for the log: "lookup, aggregate precomputed (calibrated: precomputed 12.1 ms, dense 20.3 ms, …)".
    public var summary: String {
        let estimates = (estimatedSeconds ?? [:]).sorted { $0.key < $1.key }
            .map { "\($0.key.rawValue) \(String(format: "%.1f", 1000 * $0.value)) ms" }
        let aggregate = precompute ? (forwardThroughFeatures ? "precomputed for the weight gradient, forward through the features" : "precomputed") : "every epoch"
        let measured = (measuredForwardSeconds ?? [:]).sorted { $0.key < $1.key }
            .map { "\($0.key.rawValue) \(String(format: "%.1f", 1000 * $0.value)) ms" }
        let path = "\(representation.rawValue)\(forced ? " (as told)" : ""), aggregate \(aggregate) (\(basis.rawValue)"
            + (estimates.isEmpty ? ")" : ": \(estimates.joined(separator: ", ")))")
            + (measured.isEmpty ? "" : " (forward pass timed on this data and model: \(measured.joined(separator: ", ")))")
        let listing = String(format: "gradients listed below %.0f %% non-zero (layer 0), %.0f %% (hidden layers), %.0f %% (input gradients)",
                             100 * gradientListing.firstLayer, 100 * gradientListing.hiddenLayers, 100 * gradientListing.inputGradients)
        let blocking = "forward GEMM in row blocks: \(forwardRowBlocking.firstLayer ? "yes" : "no") (layer 0), "
            + "\(forwardRowBlocking.hiddenLayers ? "yes" : "no") (hidden layers)"
        let calibratedPieces = weightGradientPieces.pieces(precomputedAggregate: precompute, representation: representation)
        let pieces = weightGradientSchedule?.summary
            ?? "first layer's weight gradient summed in \(calibratedPieces) piece(s) on several ranks"
        return [path, listing, blocking, pieces].joined(separator: "; ")
    }

    /// The plan of the fixed thresholds: `FeatureStatistics.representation` and `suitsPrecomputedAggregation`.
    public static func constants(for workload: FirstLayerWorkload) -> FirstLayerPlan {
        FirstLayerPlan(
            basis: .constants, representation: workload.features.representation(inputDropout: workload.inputDropout),
            precompute: !workload.inputDropout && workload.features.suitsPrecomputedAggregation)
    }

    /// The plan for `workload`: from `rates` when given, else the constants.
    public static func choosing(for workload: FirstLayerWorkload, rates: KernelRates?) -> FirstLayerPlan {
        guard let rates else { return constants(for: workload) }
        return FirstLayerCostModel(rates: rates).plan(for: workload)
    }
}

/// Time of one epoch's first-layer products along each path, from measured kernel rates and the run's shapes; the
/// cheapest path wins. The layer's bias, activation and exchange are the same along every path and left out.
///
/// Per epoch, with n rows, F features, width H, Â's non-zeros a, X's non-zeros x and gradient density g:
/// - precomputed: `(ÂX)·W` by GEMM (2nFH flops) + the weight gradient `(ÂX)ᵀ·G`, from G's lists when g is at most
///   this host's break-even at depth F (as training then does: listing nH elements + gnH·F), else by GEMM;
/// - hybrid: `X·W` in the features' per-epoch representation, lookup or CSR (not costed for dense) + one
///   aggregation aH + precomputed's weight gradient;
/// - dense, F > H (transform first): GEMM `X·W`, aggregation forward and backward (2aH), GEMM `Xᵀ·(ÂᵀG)`;
///   dense, F ≤ H (aggregate first): aggregation aF, then as precomputed;
/// - lookup: `X·W` and `Xᵀ·(ÂᵀG)` by table lookup (nF·H each) + 2aH;
/// - csr: the same by CSR (xH each) + 2aH.
public struct FirstLayerCostModel: Sendable {
    public var rates: KernelRates

    public init(rates: KernelRates) { self.rates = rates }

    /// The paths open to `workload`: lookup needs indicator features and no input dropout (dropout would change
    /// the codes every epoch); dense needs the dense copy to fit; precomputed needs both of dense's conditions and
    /// no input dropout (the aggregate would be of undropped features), hybrid those of precomputed and sparse
    /// features.
    public func paths(for w: FirstLayerWorkload) -> [FirstLayerPath] {
        guard w.features.sparse else { return w.inputDropout ? [.dense] : [.precomputed, .dense] }
        var open: [FirstLayerPath] = [.csr]
        if w.features.denseCopyFits {
            open.append(.dense)
            if !w.inputDropout { open += [.precomputed, .hybrid] }
        }
        if w.features.indicator && !w.inputDropout { open.append(.lookup) }
        return open.sorted()
    }

    /// Estimated seconds of one epoch's first-layer products along `path`.
    public func seconds(_ path: FirstLayerPath, _ w: FirstLayerWorkload) -> Double {
        let n = Double(w.rows), f = Double(w.featureWidth), h = Double(w.hiddenWidth)
        let aggregation = Double(w.aggregationNonZeros) * rates.spmmSecondsPerNonZeroColumn
        let forwardGEMM = 2 * n * f * h * rates.gemmForwardSecondsPerFlop
        let transposedGEMM = 2 * n * f * h * rates.gemmTransposedSecondsPerFlop
        // The weight gradient against an aggregate-first layer's (undispersed) output gradient.
        let listedWeightGradient = w.gradientDensity <= rates.listedBreakEvenDensity(depth: w.featureWidth)
            && w.featureWidth >= BlockColumnLists.tileWidth
        let weightGradient = listedWeightGradient
            ? n * h * rates.listingSecondsPerElement + w.gradientDensity * n * h * f * rates.listedSecondsPerNonZeroDepth
            : transposedGEMM
        switch path {
        case .precomputed:
            return forwardGEMM + weightGradient
        case .hybrid:
            return (hybridForward(w) ?? .infinity) + h * aggregation + weightGradient
        case .dense:
            return w.hiddenWidth < w.featureWidth
                ? forwardGEMM + 2 * h * aggregation + transposedGEMM
                : f * aggregation + forwardGEMM + weightGradient
        case .lookup:
            return n * f * h * (rates.lookupSecondsPerCellColumn + rates.lookupTransposedSecondsPerCellColumn)
                + 2 * h * aggregation
        case .csr:
            let x = Double(w.features.nonZeros)
            return x * h * (rates.csrFeaturesSecondsPerNonZeroColumn + rates.spmmTransposedSecondsPerNonZeroColumn)
                + 2 * h * aggregation
        }
    }

    /// The representation of the cheapest per-epoch path (dense, lookup or CSR): the run's representation whatever
    /// else the plan says, since ranks, `--no-precompute-layer0` and SAGE's self term use it every epoch.
    func perEpochRepresentation(_ w: FirstLayerWorkload) -> FeatureRepresentation {
        let path = paths(for: w).filter { $0 != .precomputed && $0 != .hybrid }.min { seconds($0, w) < seconds($1, w) }!
        return switch path {
        case .lookup: .lookup
        case .csr: .csr
        case .dense, .precomputed, .hybrid: .dense
        }
    }

    /// The hybrid path's forward product `X·W` in the features' per-epoch representation: lookup or CSR (dense
    /// features would make it the aggregate's GEMM again plus an aggregation, so it is not costed then).
    func hybridForward(_ w: FirstLayerWorkload) -> Double? {
        let h = Double(w.hiddenWidth)
        switch perEpochRepresentation(w) {
        case .lookup: return Double(w.rows) * Double(w.featureWidth) * h * rates.lookupSecondsPerCellColumn
        case .csr: return Double(w.features.nonZeros) * h * rates.csrFeaturesSecondsPerNonZeroColumn
        case .dense: return nil
        }
    }

    /// The cheapest path: the representation (the cheapest per-epoch path's), and whether a one-process run
    /// precomputes the aggregate (and, on the hybrid path, multiplies forward through the features).
    public func plan(for w: FirstLayerWorkload) -> FirstLayerPlan {
        let open = paths(for: w).filter { $0 != .hybrid || hybridForward(w) != nil }
        let estimates = Dictionary(uniqueKeysWithValues: open.map { ($0, seconds($0, w)) })
        // Ties go to the earlier path in `FirstLayerPath`'s order, so equal estimates decide alike on every rank.
        let cheapest = open.min { estimates[$0]! < estimates[$1]! }!
        var plan = FirstLayerPlan(basis: .calibrated, representation: perEpochRepresentation(w),
                                  precompute: cheapest == .precomputed || cheapest == .hybrid, estimatedSeconds: estimates,
                                  gradientListing: GradientListing(rates: rates, featureWidth: w.featureWidth,
                                                                   hiddenWidth: w.hiddenWidth),
                                  forwardRowBlocking: ForwardRowBlocking(rates: rates, featureWidth: w.featureWidth,
                                                                         hiddenWidth: w.hiddenWidth),
                                  weightGradientPieces: WeightGradientStreaming(rates: rates, workload: w))
        plan.forwardThroughFeatures = cheapest == .hybrid
        return plan
    }
}
