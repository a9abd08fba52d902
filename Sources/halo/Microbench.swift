import ArgumentParser
import Foundation
import HaloGraph
import HaloNN
import HaloTensor
import HaloTraining

/// Kernel throughput next to the machine's memory bandwidth: the numbers that say how close to the hardware the
/// tensor core runs.
struct Microbench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure memory bandwidth (STREAM triad), SpMM GB/s and GEMM GFLOP/s on this machine.",
        discussion: """
            SpMM is measured on the GCN operator of --dataset at width --width. Its traffic is counted as the bytes \
            the kernel must move at least once per non-zero: the gathered input row slice (width × 4 B), the column \
            index and value (8 B), plus each output row once — the usual convention for CSR SpMM.

            When --dataset has sparse features, the first layer's two products with them (X·W and the weight \
            gradient Xᵀ·G) are timed by CSR, by GEMM on a dense copy, and — when every non-zero has one value — by \
            table lookup: the numbers behind the choice `halo train` makes for the first layer. The weight \
            gradient is also timed in the most pieces of rows a multi-rank run forms it in (to sum each piece over \
            the ranks while the next is computed): what each extra piece costs.

            A weight gradient Aᵀ·G whose G is mostly zeros (a hidden layer's gradient behind ReLU and dropout) is \
            timed by GEMM and by listing G's non-zeros, at several densities of G: A is the nodes × --width \
            hidden activation and, when the dataset has at most 2048 features, the nodes × features aggregate of a \
            precomputed first layer.
            """)

    @Option(help: "Dataset whose GCN operator SpMM is measured.")
    var dataset: String = DatasetSource.defaultSynthetic

    @Option(help: "Feature width of the dense operand of SpMM.")
    var width: Int = 256

    @OptionGroup var threads: ComputeThreadsOption

    @Option(help: "Repetitions; the best is reported.")
    var repeats: Int = 10

    @Option(help: "Rows (nodes) of the tall-skinny GEMM shapes (default: the dataset's node count).")
    var gemmRows: Int?

    @Option(help: "Input feature width of the first layer's GEMM shapes (default: the dataset's, when at most 2048).")
    var gemmFeatures: Int?

    @OptionGroup var results: JSONResultsOption

    struct Result: Codable {
        var threads: Int
        /// The kernel family OpenBLAS chose (or was told by `OPENBLAS_CORETYPE`), e.g. "SkylakeX" or "Zen".
        var blasCore: String
        /// How the family was chosen (`BLASRuntime.coreChoice`) and OpenBLAS's build description.
        var blasCoreChoice: String
        var blasConfig: String
        var streamTriadGBps: [String: Double]
        var spmm: SpMMResult
        /// Every GEMM shape on one thread and on `threads`, each with its fraction of the square rate.
        var gemm: [GEMMResult]
        /// The first layer's products on the dataset's sparse input features, sparse kernels next to dense GEMM.
        var featureProducts: FeatureProductResult?
        /// `Aᵀ·G` with a mostly-zero G, by GEMM and by listing G's non-zeros.
        var sparseGradientProducts: [SparseGradientResult]
        /// Training lists G below this density and uses GEMM above (`BlockColumnLists.worthwhileDensity`).
        var sparseGradientListedBelowDensity: Double
        /// The input gradient `G·Wᵀ` comes from the lists below this density
        /// (`BlockColumnLists.worthwhileInputGradientDensity`).
        var sparseGradientInputListedBelowDensity: Double
    }

    struct SparseGradientResult: Codable {
        var rows: Int
        var depth: Int
        var width: Int
        var density: Double
        var gemmSeconds: Double
        /// Listing G's non-zeros and the product, together.
        var listedSeconds: Double
        /// Listing alone.
        var listingSeconds: Double
        /// The input gradient `G · Wᵀ` (W: depth × width) by GEMM and from the lists, transposing W included.
        var inputGradientGEMMSeconds: Double
        var inputGradientListedSeconds: Double
    }

    struct FeatureProductResult: Codable {
        var rows: Int
        var features: Int
        var nonZeros: Int
        var width: Int
        /// `X·W`: SpMM on the CSR features, and GEMM on their dense copy.
        var forwardSparseSeconds: Double
        var forwardDenseSeconds: Double
        /// `Xᵀ·G` (the weight gradient): the sparse transposed product, and GEMM on the dense copy.
        var weightGradientSparseSeconds: Double
        var weightGradientDenseSeconds: Double
        /// The same two products by table lookup (`BinaryMatrix`), when every non-zero has one value.
        var forwardBinarySeconds: Double?
        var weightGradientBinarySeconds: Double?
        /// How many pieces of rows a multi-rank run forms the weight gradient in, and the three weight-gradient
        /// products formed that way, one piece after another (what streaming its sum costs in compute).
        var weightGradientPieces: Int?
        var weightGradientSparsePiecesSeconds: Double?
        var weightGradientDensePiecesSeconds: Double?
        var weightGradientBinaryPiecesSeconds: Double?
    }

    struct SpMMResult: Codable {
        var dataset: String
        var rows: Int
        var nonZeros: Int
        var width: Int
        var seconds: [String: Double]
        var gbps: [String: Double]
        var fractionOfStream: [String: Double]
        /// The same operator with rows and columns in reverse Cuthill–McKee order, as training stores it.
        var secondsLocalityOrder: [String: Double]
        var gbpsLocalityOrder: [String: Double]
    }

    func validate() throws {
        // Checked before the benchmarks run, so minutes of measuring are not lost to an unwritable path.
        try results.check()
        for (name, value) in [("--gemm-rows", gemmRows), ("--gemm-features", gemmFeatures)] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1, got \(value)") }
        }
    }

    func run() throws {
        let threads = self.threads.count
        BLASRuntime.threads = 1
        let pools = [("1", ComputePool.serial), ("\(threads)", ComputePool(threads: threads))]

        var stream: [String: Double] = [:]
        for (name, pool) in pools { stream[name] = streamTriad(pool: pool) }

        let data = try DatasetSource(dataset).load(pool: ComputePool(threads: threads), note: noteOnStandardError)
        let op = data.graph.aggregationOperator(.gcn)
        let x = Matrix(rows: op.cols, cols: width) { i, j in Float((i &* 31 &+ j) % 17) * 0.1 }
        var out = Matrix(rows: op.rows, cols: width)
        let bytes = Double(op.nonZeroCount) * Double(width * 4 + 8) + Double(op.rows) * Double(width * 4 + 8)
        var spmmSeconds: [String: Double] = [:], spmmRate: [String: Double] = [:], fraction: [String: Double] = [:]
        for (name, pool) in pools {
            let t = best(of: repeats) { op.multiply(x, into: &out, pool: pool) }
            spmmSeconds[name] = t
            spmmRate[name] = bytes / t / 1e9
            fraction[name] = spmmRate[name]! / stream[name]!
        }
        let ordered = data.graph.renumbered(data.graph.reverseCuthillMcKeeOrder()).aggregationOperator(.gcn)
        var orderedSeconds: [String: Double] = [:], orderedRate: [String: Double] = [:]
        for (name, pool) in pools {
            let t = best(of: repeats) { ordered.multiply(x, into: &out, pool: pool) }
            orderedSeconds[name] = t
            orderedRate[name] = bytes / t / 1e9
        }

        let gemmRows = self.gemmRows ?? data.nodeCount
        let gemmFeatures = self.gemmFeatures ?? (data.features.width <= 2048 ? data.features.width : nil)
        let gemms = GEMMBench(shapes: GEMMBench.shapes(rows: gemmRows, width: width, features: gemmFeatures),
                              repeats: repeats).run(pools: pools.map(\.1))
        let pool = ComputePool(threads: threads)

        var featureProducts: FeatureProductResult?
        if case .sparse(let features) = data.features {
            let weight = Matrix(rows: features.cols, cols: width) { i, j in Float((i &* 7 &+ j) % 13) * 0.1 }
            let gradient = Matrix(rows: features.rows, cols: width) { i, j in Float((i &* 5 &+ j) % 11) * 0.1 }
            let dense = features.dense()
            var product = Matrix(rows: features.rows, cols: width)
            var weightGradient = Matrix(rows: features.cols, cols: width)
            featureProducts = FeatureProductResult(
                rows: features.rows, features: features.cols, nonZeros: features.nonZeroCount, width: width,
                forwardSparseSeconds: best(of: repeats) { features.multiply(weight, into: &product, pool: pool) },
                forwardDenseSeconds: best(of: repeats) { gemm(dense, weight, into: &product, pool: pool) },
                weightGradientSparseSeconds: best(of: repeats) {
                    features.multiplyTransposed(gradient, into: &weightGradient, pool: pool)
                },
                weightGradientDenseSeconds: best(of: repeats) {
                    gemm(dense, gradient, into: &weightGradient, transposeA: true, pool: pool)
                })
            // The most pieces a run forms it in (`WeightGradientStreaming` decides how many pay on this host).
            let pieces = WeightGradientPieces(rows: features.cols, columns: width, pieces: WeightGradientPieces.maximumPieces).ranges
            featureProducts?.weightGradientPieces = pieces.count
            featureProducts?.weightGradientSparsePiecesSeconds = best(of: repeats) {
                for rows in pieces { features.multiplyTransposed(gradient, into: &weightGradient, pool: pool, rows: rows) }
            }
            featureProducts?.weightGradientDensePiecesSeconds = best(of: repeats) {
                for rows in pieces { gemm(dense, gradient, into: &weightGradient, transposeA: true, pool: pool, rows: rows) }
            }
            if let binary = BinaryMatrix(features) {
                featureProducts?.forwardBinarySeconds = best(of: repeats) { binary.multiply(weight, into: &product, pool: pool) }
                featureProducts?.weightGradientBinarySeconds = best(of: repeats) {
                    binary.multiplyTransposed(gradient, into: &weightGradient, pool: pool)
                }
                featureProducts?.weightGradientBinaryPiecesSeconds = best(of: repeats) {
                    for rows in pieces { binary.multiplyTransposed(gradient, into: &weightGradient, pool: pool, rows: rows) }
                }
            }
        }

        var sparseGradients: [SparseGradientResult] = []
        let depths = [width] + (data.features.width <= 2048 && data.features.width != width ? [data.features.width] : [])
        for depth in depths {
            let a = Matrix(rows: data.nodeCount, cols: depth) { i, j in Float((i &* 13 &+ j) % 19) * 0.1 - 0.9 }
            var c = Matrix(rows: depth, cols: width)
            let weight = Matrix(rows: depth, cols: width) { i, j in Float((i &* 3 &+ j) % 23) * 0.01 }
            var inputGradient = Matrix(rows: data.nodeCount, cols: depth)
            for density in [0.05, 0.25, 0.5] {
                // A fixed pseudo-random pattern with the given share of non-zeros.
                let g = Matrix(rows: data.nodeCount, cols: width) { i, j in
                    Double((UInt32(truncatingIfNeeded: i &* 40_503 &+ j &* 2_654_435_761) >> 8) % 1000) < density * 1000
                        ? Float((i &+ j) % 7) * 0.1 + 0.1 : 0
                }
                let lists = BlockColumnLists(g, pool: pool)!
                sparseGradients.append(SparseGradientResult(
                    rows: data.nodeCount, depth: depth, width: width, density: density,
                    gemmSeconds: best(of: repeats) { gemm(a, g, into: &c, transposeA: true, beta: 1, pool: pool) },
                    listedSeconds: best(of: repeats) {
                        BlockColumnLists(g, pool: pool)!.accumulateTransposedProduct(of: a, into: &c, pool: pool)
                    },
                    listingSeconds: best(of: repeats) { _ = BlockColumnLists(g, pool: pool) },
                    inputGradientGEMMSeconds: best(of: repeats) {
                        gemm(g, weight, into: &inputGradient, transposeB: true, pool: pool)
                    },
                    // As training does it: transposing the weight, then the lists' product.
                    inputGradientListedSeconds: best(of: repeats) {
                        lists.multiply(weight.transposed(), into: &inputGradient, pool: pool)
                    }))
            }
        }

        let result = Result(
            threads: threads, blasCore: BLASRuntime.coreName, blasCoreChoice: BLASRuntime.coreChoice,
            blasConfig: BLASRuntime.config, streamTriadGBps: stream,
            spmm: SpMMResult(dataset: data.name, rows: op.rows, nonZeros: op.nonZeroCount, width: width,
                             seconds: spmmSeconds, gbps: spmmRate, fractionOfStream: fraction,
                             secondsLocalityOrder: orderedSeconds, gbpsLocalityOrder: orderedRate),
            gemm: gemms, featureProducts: featureProducts, sparseGradientProducts: sparseGradients,
            sparseGradientListedBelowDensity: BlockColumnLists.worthwhileDensity,
            sparseGradientInputListedBelowDensity: BlockColumnLists.worthwhileInputGradientDensity)
        for (name, _) in pools {
            print(String(format: "threads %@: STREAM triad %.1f GB/s | SpMM %.1f GB/s (%.0f%% of triad, %.2f ms) | in locality order %.1f GB/s (%.2f ms)",
                         name, stream[name]!, spmmRate[name]!, 100 * fraction[name]!, 1000 * spmmSeconds[name]!,
                         orderedRate[name]!, 1000 * orderedSeconds[name]!))
        }
        print("OpenBLAS core: \(result.blasCore) (\(result.blasCoreChoice); \(result.blasConfig))")
        for line in GEMMBench.lines(gemms) { print(line) }
        if let f = featureProducts {
            print(String(format: "input features %d×%d (%.1f%% dense), width %d: X·W sparse %.2f ms, dense GEMM %.2f ms | Xᵀ·G sparse %.2f ms, dense GEMM %.2f ms",
                         f.rows, f.features, 100 * Double(f.nonZeros) / Double(f.rows * f.features), f.width,
                         1000 * f.forwardSparseSeconds, 1000 * f.forwardDenseSeconds,
                         1000 * f.weightGradientSparseSeconds, 1000 * f.weightGradientDenseSeconds))
            if let forward = f.forwardBinarySeconds, let backward = f.weightGradientBinarySeconds {
                print(String(format: "  one value in every non-zero: by table lookup X·W %.2f ms | Xᵀ·G %.2f ms",
                             1000 * forward, 1000 * backward))
            }
            if let pieces = f.weightGradientPieces, let sparse = f.weightGradientSparsePiecesSeconds,
               let dense = f.weightGradientDensePiecesSeconds {
                let lookup = f.weightGradientBinaryPiecesSeconds.map { String(format: ", table lookup %.2f ms", 1000 * $0) } ?? ""
                print(String(format: "  Xᵀ·G in the %d pieces of rows a multi-rank run streams: sparse %.2f ms, dense GEMM %.2f ms%@",
                             pieces, 1000 * sparse, 1000 * dense, lookup))
            }
        }
        for r in sparseGradients {
            print(String(format: "Aᵀ·G, A %d×%d, G %.0f%% non-zero: GEMM %.2f ms | listed non-zeros %.2f ms (listing %.2f ms) | G·W GEMM %.2f ms, listed %.2f ms",
                         r.rows, r.depth, 100 * r.density, 1000 * r.gemmSeconds, 1000 * r.listedSeconds,
                         1000 * r.listingSeconds, 1000 * r.inputGradientGEMMSeconds, 1000 * r.inputGradientListedSeconds))
        }
        if results.path != nil {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            try results.write(encoder.encode(result))
        }
    }

    /// Best wall time of `body` over `n` runs after one warm-up.
    private func best(of n: Int, _ body: () -> Void) -> Double {
        body()
        var fastest = Double.infinity
        for _ in 0..<max(n, 1) {
            let w = Stopwatch()
            body()
            fastest = min(fastest, w.elapsed)
        }
        return fastest
    }

    /// STREAM triad `a = b + s·c` over arrays far larger than the caches; bytes counted as STREAM does (3 × 4 B
    /// per element, write-allocate traffic not counted).
    private func streamTriad(pool: ComputePool) -> Double {
        let n = 32 * 1024 * 1024
        var a = [Float](repeating: 0, count: n)
        let b = [Float](repeating: 1, count: n), c = [Float](repeating: 2, count: n)
        let t = best(of: repeats) {
            a.withUnsafeMutableBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeBufferPointer { pc in
                        let ap = pa.baseAddress!, bp = pb.baseAddress!, cp = pc.baseAddress!
                        pool.forEachChunk(of: n / 16) { chunk in
                            for i in chunk {
                                let o = i * 16
                                storeVector(loadVector(bp + o) + 3 * loadVector(cp + o), ap + o)
                            }
                        }
                    }
                }
            }
        }
        return 3 * 4 * Double(n) / t / 1e9
    }
}

