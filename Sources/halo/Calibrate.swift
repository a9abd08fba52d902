import ArgumentParser
import Foundation
import HaloGraph
import HaloNN
import HaloTensor
import HaloTraining

/// `halo calibrate`: measures this host's kernel rates, caches them for `halo train` and prints them, with the
/// decision they make for a dataset's first layer when one is given.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this host's kernel rates for `halo train --calibration on`, cache them and print them.",
        discussion: """
            Times (about a second) Halo's own kernels on operands shaped like a first layer's (8192 rows, 512 \
            features, width 256): tall-skinny GEMM forward and transposed, CSR aggregation, CSR features both ways, \
            table lookup both ways, listing a 5 %-dense gradient with the product from its lists, and the forward \
            GEMM at depths 100, 256 and 512 in one call and in row blocks that fit L2 (which layers then block). The rates \
            replace this host's entry in the cache (the cache file is printed), keyed by CPU model, vector ISA, \
            OpenBLAS kernel family, threads and this executable; `halo train` reads it instead of measuring.

            With --dataset, also prints the first layer's cost estimates for that dataset and the path the rates \
            choose (what `halo train --json-out` records as "first_layer_plan"):
              halo calibrate --threads 2 --hidden 256 \\
                --dataset ../shared/datasets/amazon_photo
            --threads must match the run's threads per rank (halo train's default: this host's cores divided \
            among the ranks on it), which is part of the cache key.
            """)

    @OptionGroup var threads: ComputeThreadsOption

    @Option(help: ArgumentHelp("Print the first-layer decision for this dataset (directory or synthetic spec).",
                               valueName: "dir|synthetic:…"))
    var dataset: String?

    @Option(parsing: .unconditional, help: "With --dataset: the first layer's output width (halo train --hidden).")
    var hidden: Int = 256

    @Option(parsing: .unconditional, help: "With --dataset: hidden dropout (a ReLU and dropout thin the gradient the weight gradient reads).")
    var dropout: Float = 0.5

    @OptionGroup var results: JSONResultsOption

    struct Result: Codable {
        var calibration: CalibrationRecord
        var firstLayerPlan: FirstLayerPlan?
    }

    func validate() throws {
        guard hidden >= 1 else { throw ValidationError("--hidden must be at least 1, got \(hidden)") }
        guard (0..<1).contains(dropout) else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        try results.check()
    }

    func run() throws {
        BLASRuntime.threads = 1
        let cache = CalibrationCache(directory: CalibrationCache.defaultDirectory())
        let key = CalibrationKey.current(threads: threads.count)
        let record = cache.calibration(for: key, refresh: true, warn: noteOnStandardError) {
            HostCalibration.measure(pool: ComputePool(threads: threads.count))
        }
        let r = record.rates
        print("host: \(key.host.summary), \(key.threads) thread\(key.threads == 1 ? "" : "s")")
        print(String(format: "measured in %.2f s; cached in %@", record.measurementSeconds, record.cacheFile ?? "(not saved)"))
        print(String(format: "GEMM X·W %.1f GFLOP/s | Xᵀ·G %.1f GFLOP/s", 1e-9 / r.gemmForwardSecondsPerFlop,
                     1e-9 / r.gemmTransposedSecondsPerFlop))
        print(String(format: "CSR aggregation Â·H %.3f ns per non-zero×column | features X·W %.3f ns | Xᵀ·G %.3f ns",
                     1e9 * r.spmmSecondsPerNonZeroColumn, 1e9 * r.csrFeaturesSecondsPerNonZeroColumn,
                     1e9 * r.spmmTransposedSecondsPerNonZeroColumn))
        print(String(format: "lookup X·W %.3f ns per cell×column | Xᵀ·G %.3f ns", 1e9 * r.lookupSecondsPerCellColumn,
                     1e9 * r.lookupTransposedSecondsPerCellColumn))
        print(String(format: "listing G %.2f ns per element | listed Aᵀ·G %.3f ns per non-zero×column | listed G·Wᵀ %.3f ns",
                     1e9 * r.listingSecondsPerElement, 1e9 * r.listedSecondsPerNonZeroDepth,
                     1e9 * r.listedInputGradientSecondsPerNonZeroColumn))
        print(String(format: "listed Aᵀ·G beats GEMM below %.0f %% non-zero at depth 256, %.0f %% at depth 745 (training lists below these at each layer's depth; %.0f %% without a calibration)",
                     100 * r.listedBreakEvenDensity(depth: 256), 100 * r.listedBreakEvenDensity(depth: 745),
                     100 * BlockColumnLists.worthwhileDensity))
        print(String(format: "listed G·Wᵀ (input gradient) beats GEMM below %.0f %% non-zero at width 256 (%.0f %% without a calibration)",
                     100 * r.listedInputGradientBreakEvenDensity(width: 256), 100 * BlockColumnLists.worthwhileInputGradientDensity))
        let blockingLines = r.forwardRowBlockingRates.compactMap { depth, whole, blocked -> String? in
            guard let whole else { return nil }
            guard let blocked else { return String(format: "m×256×%d %.1f GFLOP/s whole, no block timed → one call", depth, 1e-9 / whole) }
            let rows = GEMMRowBlocking.rowsPerCall(n: HostCalibration.width, k: depth, cacheBytes: CacheSizes.level2Bytes)
            return String(format: "m×256×%d %.1f GFLOP/s whole, %.1f in %@ → %@", depth, 1e-9 / whole, 1e-9 / blocked,
                          rows.map { "\($0)-row calls" } ?? "blocks", r.forwardRowBlockingPays(depth: depth) ? "blocks" : "one call")
        }
        print(blockingLines.isEmpty ? "forward GEMM row blocking: not measured"
                                    : "forward GEMM row blocking: " + blockingLines.joined(separator: " | "))
        let pieceCosts = [("GEMM", r.gemmTransposedPieceSecondsPerElement), ("CSR", r.spmmTransposedPieceSecondsPerElement),
                          ("lookup", r.lookupTransposedPieceSecondsPerElement)]
            .compactMap { name, cost in cost.map { String(format: "%@ %.3f ns", name, 1e9 * $0) } }
        print(pieceCosts.isEmpty ? "weight gradient in pieces: not measured"
              : "weight gradient Xᵀ·G in pieces (several ranks sum each as it is formed): each extra piece costs, per element of G, "
                + pieceCosts.joined(separator: " | "))

        var plan: FirstLayerPlan?
        if let dataset {
            let data = try DatasetSource(dataset).load(pool: ComputePool(threads: threads.count), note: noteOnStandardError)
            let model = ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: hidden, dropout: dropout,
                                           inputDropout: 0, normalization: .none)
            let workload = FirstLayerWorkload(features: FeatureStatistics(data.features), featureWidth: data.featureWidth,
                                              aggregationNonZeros: data.graph.edgeCount + data.nodeCount, model: model)
            let chosen = FirstLayerPlan.choosing(for: workload, rates: r)
            let estimates = (chosen.estimatedSeconds ?? [:]).sorted { $0.key < $1.key }
                .map { String(format: "%@ %.2f ms", $0.key.rawValue, 1000 * $0.value) }
            print("\(data.name) first layer (\(data.nodeCount) × \(data.featureWidth), \(String(format: "%.1f", 100 * workload.features.density)) % non-zero, width \(hidden)): \(estimates.joined(separator: " | "))")
            let aggregate = chosen.precompute
                ? (chosen.forwardThroughFeatures ? ", precomputed aggregate for the weight gradient, forward through the features (one process)" : ", precomputed aggregate (one process)")
                : ", aggregated every epoch"
            print("chosen: \(chosen.representation.rawValue)\(aggregate)"
                  + "; with --calibration off: \(FirstLayerPlan.constants(for: workload).representation.rawValue)\(FirstLayerPlan.constants(for: workload).precompute ? ", precomputed" : "")")
            let pieces = chosen.weightGradientPieces
            print("first layer's weight gradient on several ranks, pieces: \(pieces.precomputed) with a precomputed aggregate, "
                  + "every epoch \(pieces.dense) dense, \(pieces.lookup) lookup, \(pieces.csr) CSR (equal pieces; with float32 sums "
                  + "on ranks as threads or two MPI ranks, a run cuts it from the sum it measures instead)")
            plan = chosen
        }
        if results.path != nil {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            try results.write(encoder.encode(Result(calibration: record, firstLayerPlan: plan)))
        }
    }
}
