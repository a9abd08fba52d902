import Foundation

/// A short measurement (a second or two on two cores) of the rates `KernelRates` holds, by timing Halo's own kernels
/// on synthetic operands shaped like a first layer's: 8192 rows, 512 features, width 256 (and a 256 × 256 weight for
/// a hidden layer's input gradient).
///
/// The shapes are fixed, not the run's: the rates are per unit of work, and the cost model scales them by the
/// run's counts. What this cannot see is how a rate changes with the shape (a GEMM whose operands leave the
/// caches, a CSR product whose gathered rows miss them); it measures at sizes past L2 so that streaming costs
/// are part of the rate, and the decisions it feeds compare kernels whose operands are alike in size.
public enum HostCalibration {
    /// Rows of every synthetic operand: a multiple of `BlockColumnLists.blockRows`.
    public static let rows = 8192
    /// Columns of the synthetic input features.
    public static let features = 512
    /// Width of the dense operands (a hidden layer's).
    public static let width = 256
    /// Non-zeros per row of the synthetic graph operator.
    static let graphDegree = 16
    /// Density of the synthetic CSR features and of the indicator features behind the lookup product.
    static let csrFeatureDensity = 0.05
    static let lookupFeatureDensity = 0.3
    /// Density of the synthetic gradient G listed by `BlockColumnLists`: what a hidden layer's gradient behind ReLU
    /// and dropout 0.5 holds once training is under way (4.6–5.6 % counted on Amazon-Photo). The listed product's
    /// fixed costs (packing A's tiles) are spread over these non-zeros, as they are in training.
    static let gradientDensity = 0.05
    /// Density of the gradient behind the listed input-gradient product `G·Wᵀ`: near its break-even with GEMM (12–30 %
    /// in `halo microbench` on AVX-512 hosts), where the decision is made. Its per-non-zero cost falls with density
    /// (fixed costs per row spread over more non-zeros), so a rate taken at 5 % would put the break-even too low.
    static let inputGradientDensity = 0.2
    /// Timed rounds over all kernels after one warm-up round; each kernel's fastest run counts (the others include
    /// the neighbours' load).
    static let rounds = 5
    /// Seconds after which no further round starts once one timed round is done: a build whose kernels are slow
    /// (without `-target-cpu native`, the SIMD kernels ran 40–80× slower here) still calibrates in a few seconds.
    static let budgetSeconds = 1.5
    /// The pieces the weight-gradient products are also timed in (`KernelRates.…PieceSecondsPerElement`).
    public static let weightGradientPieces = 4

    /// Times every kernel on `pool`'s threads and returns the rates.
    public static func measure(pool: ComputePool) -> KernelRates {
        let m = rows, f = features, h = width
        let inputs = Matrix(rows: m, cols: f) { i, j in pattern(i, j, salt: 1) }
        let weight = Matrix(rows: f, cols: h) { i, j in pattern(i, j, salt: 2) }
        let hidden = Matrix(rows: m, cols: h) { i, j in pattern(i, j, salt: 3) }
        let hiddenWeightTransposed = Matrix(rows: h, cols: h) { i, j in pattern(i, j, salt: 9) }
        var product = Matrix(rows: m, cols: h)
        var weightGradient = Matrix(rows: f, cols: h)
        let flops = 2 * Double(m) * Double(f) * Double(h)

        let graph = graphOperator(rows: m, salt: 4)
        let csrFeatures = sparse(rows: m, cols: f, density: csrFeatureDensity, salt: 5, indicator: false)
        let indicator = sparse(rows: m, cols: f, density: lookupFeatureDensity, salt: 6, indicator: true)
        let codes = BinaryMatrix(indicator)!
        let gradient = Matrix(rows: m, cols: h) { i, j in
            unitHash(i, j, salt: 7) < gradientDensity ? pattern(i, j, salt: 8) + 0.5 : 0
        }
        let lists = BlockColumnLists(gradient, pool: pool)!
        let denserGradient = Matrix(rows: m, cols: h) { i, j in
            unitHash(i, j, salt: 10) < inputGradientDensity ? pattern(i, j, salt: 11) + 0.5 : 0
        }
        let denserLists = BlockColumnLists(denserGradient, pool: pool)!
        // The forward product at a short first layer's depth and at a hidden layer's, for row blocking.
        let depths = KernelRates.rowBlockingDepths
        let shortInputs = Matrix(rows: m, cols: depths.short) { i, j in pattern(i, j, salt: 12) }
        let shortWeight = Matrix(rows: depths.short, cols: h) { i, j in pattern(i, j, salt: 13) }
        let hiddenWeight = Matrix(rows: h, cols: h) { i, j in pattern(i, j, salt: 14) }
        let cache = CacheSizes.level2Bytes
        // Without a known L2 size there is no block to time: the blocked "rate" is the whole call's.
        func rowsPerCall(depth: Int) -> Int? { GEMMRowBlocking.rowsPerCall(n: h, k: depth, cacheBytes: cache) }
        // The weight gradient's rows in equal pieces, as a multi-rank run forms them to sum each one early.
        let pieces = (0..<weightGradientPieces).map { (f * $0 / weightGradientPieces)..<(f * ($0 + 1) / weightGradientPieces) }

        let t = fastest([
            { gemm(inputs, weight, into: &product, pool: pool) },
            { gemm(inputs, hidden, into: &weightGradient, transposeA: true, pool: pool) },
            { graph.multiply(hidden, into: &product, pool: pool) },
            { csrFeatures.multiply(weight, into: &product, pool: pool) },
            { csrFeatures.multiplyTransposed(hidden, into: &weightGradient, pool: pool) },
            { codes.multiply(weight, into: &product, pool: pool) },
            { codes.multiplyTransposed(hidden, into: &weightGradient, pool: pool) },
            { _ = BlockColumnLists(gradient, pool: pool) },
            { lists.accumulateTransposedProduct(of: inputs, into: &weightGradient, pool: pool) },
            { denserLists.multiply(hiddenWeightTransposed, into: &product, pool: pool) },
            { gemm(shortInputs, shortWeight, into: &product, pool: pool) },
            { gemm(shortInputs, shortWeight, into: &product, pool: pool, rowsPerCall: rowsPerCall(depth: depths.short)) },
            { gemm(hidden, hiddenWeight, into: &product, pool: pool) },
            { gemm(hidden, hiddenWeight, into: &product, pool: pool, rowsPerCall: rowsPerCall(depth: h)) },
            { gemm(inputs, weight, into: &product, pool: pool, rowsPerCall: rowsPerCall(depth: f)) },
            { for rows in pieces { gemm(inputs, hidden, into: &weightGradient, transposeA: true, pool: pool, rows: rows) } },
            { for rows in pieces { csrFeatures.multiplyTransposed(hidden, into: &weightGradient, pool: pool, rows: rows) } },
            { for rows in pieces { codes.multiplyTransposed(hidden, into: &weightGradient, pool: pool, rows: rows) } },
        ])
        let (gemmForward, gemmTransposed, spmm, csrForward, csrTransposed) = (t[0], t[1], t[2], t[3], t[4])
        let (lookup, lookupTransposed, listing, listed, listedInput) = (t[5], t[6], t[7], t[8], t[9])
        let (shortWhole, shortBlocked, hiddenWhole, hiddenBlocked, forwardBlocked) = (t[10], t[11], t[12], t[13], t[14])
        let (gemmInPieces, csrInPieces, lookupInPieces) = (t[15], t[16], t[17])
        /// Each extra piece's cost per element of G (zero when the pieces were no slower).
        func pieceCost(_ inPieces: Double, whole: Double) -> Double {
            max(0, inPieces - whole) / Double(weightGradientPieces - 1) / (Double(m) * Double(h))
        }
        let shortFlops = 2 * Double(m) * Double(depths.short) * Double(h), hiddenFlops = 2 * Double(m) * Double(h) * Double(h)
        /// The blocked rate, or nil when no block was timed: no block size (L2 unknown or too small), or blocks no
        /// smaller than a thread's rows, where the "blocked" calls were the whole calls again.
        func blockedRate(_ seconds: Double, flops: Double, depth: Int) -> Double? {
            guard let rows = rowsPerCall(depth: depth), rows < m / pool.threads else { return nil }
            return seconds / flops
        }

        return KernelRates(
            threads: pool.threads,
            gemmForwardSecondsPerFlop: gemmForward / flops,
            gemmTransposedSecondsPerFlop: gemmTransposed / flops,
            spmmSecondsPerNonZeroColumn: spmm / (Double(graph.nonZeroCount) * Double(h)),
            csrFeaturesSecondsPerNonZeroColumn: csrForward / (Double(csrFeatures.nonZeroCount) * Double(h)),
            spmmTransposedSecondsPerNonZeroColumn: csrTransposed / (Double(csrFeatures.nonZeroCount) * Double(h)),
            lookupSecondsPerCellColumn: lookup / (Double(m) * Double(f) * Double(h)),
            lookupTransposedSecondsPerCellColumn: lookupTransposed / (Double(m) * Double(f) * Double(h)),
            listingSecondsPerElement: listing / (Double(m) * Double(h)),
            listedSecondsPerNonZeroDepth: listed / (Double(lists.nonZeroCount) * Double(f)),
            listedInputGradientSecondsPerNonZeroColumn: listedInput / (Double(denserLists.nonZeroCount) * Double(h)),
            gemmShortForwardSecondsPerFlop: shortWhole / shortFlops,
            gemmShortForwardBlockedSecondsPerFlop: blockedRate(shortBlocked, flops: shortFlops, depth: depths.short),
            gemmHiddenForwardSecondsPerFlop: hiddenWhole / hiddenFlops,
            gemmHiddenForwardBlockedSecondsPerFlop: blockedRate(hiddenBlocked, flops: hiddenFlops, depth: h),
            gemmForwardBlockedSecondsPerFlop: blockedRate(forwardBlocked, flops: flops, depth: f),
            gemmTransposedPieceSecondsPerElement: pieceCost(gemmInPieces, whole: gemmTransposed),
            spmmTransposedPieceSecondsPerElement: pieceCost(csrInPieces, whole: csrTransposed),
            lookupTransposedPieceSecondsPerElement: pieceCost(lookupInPieces, whole: lookupTransposed))
    }

    /// Each kernel's best wall time over `rounds` timed rounds after one warm-up round (fewer when `budgetSeconds`
    /// is spent, at least one). A round runs every kernel once, so on a machine whose load comes and goes all
    /// kernels see the same spells of it, and the ratios the decisions rest on hold better than the absolute rates.
    static func fastest(_ kernels: [() -> Void]) -> [Double] {
        var best = [Double](repeating: .infinity, count: kernels.count)
        let start = DispatchTime.now().uptimeNanoseconds
        for round in 0...rounds {
            if round > 1, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 > budgetSeconds { break }
            for (k, kernel) in kernels.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                kernel()
                if round > 0 { best[k] = min(best[k], Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
        }
        return best
    }

    /// A value in [0, 1) fixed by (i, j, salt): reproducible operands without a generator's state.
    static func unitHash(_ i: Int, _ j: Int, salt: Int) -> Double {
        var x = UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: j) &* 0xC2B2_AE3D_27D4_EB4F
        x ^= UInt64(truncatingIfNeeded: salt) &* 0x1656_67B1_9E37_79F9
        x ^= x >> 31
        x = x &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 29
        return Double(x >> 11) / Double(1 << 53)
    }

    /// Small non-zero values around zero, as trained weights and activations are.
    static func pattern(_ i: Int, _ j: Int, salt: Int) -> Float { Float(unitHash(i, j, salt: salt)) - 0.5 }

    /// A square CSR operator with `graphDegree` non-zeros per row at hashed columns (a random graph: its gathered
    /// rows have no locality, as a partitioned real graph's have little).
    static func graphOperator(rows: Int, salt: Int) -> SparseMatrix {
        var rowPointers = [0], columns: [Int32] = [], values: [Float] = []
        for i in 0..<rows {
            let neighbours = Set((0..<graphDegree).map { Int32(unitHash(i, $0, salt: salt) * Double(rows)) }).sorted()
            columns += neighbours
            values += neighbours.map { _ in 1 / Float(graphDegree) }
            rowPointers.append(columns.count)
        }
        return SparseMatrix(rows: rows, cols: rows, rowPointers: rowPointers, columnIndices: columns, values: values)
    }

    /// A CSR matrix with about `density` of its elements non-zero at hashed positions; all ones when `indicator`.
    static func sparse(rows: Int, cols: Int, density: Double, salt: Int, indicator: Bool) -> SparseMatrix {
        var rowPointers = [0], columns: [Int32] = [], values: [Float] = []
        for i in 0..<rows {
            for j in 0..<cols where unitHash(i, j, salt: salt) < density {
                columns.append(Int32(j))
                values.append(indicator ? 1 : pattern(i, j, salt: salt + 100) + 0.5)
            }
            rowPointers.append(columns.count)
        }
        return SparseMatrix(rows: rows, cols: cols, rowPointers: rowPointers, columnIndices: columns, values: values)
    }
}
