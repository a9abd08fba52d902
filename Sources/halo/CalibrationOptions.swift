import ArgumentParser
import HaloTraining

/// `halo train`'s host calibration: whether the first layer's path is chosen from this machine's measured kernel
/// rates (cached between runs) or from fixed thresholds.
struct CalibrationOptions: ParsableArguments {
    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case on, off
    }

    @Option(name: .customLong("calibration"), help: ArgumentHelp(
        "Choose the first layer's path from this host's measured kernel rates (on) or from fixed density thresholds (off).",
        discussion: """
        on: the first run on a machine (per binary and threads per rank) spends about a second timing GEMM, CSR, \
        table-lookup and listed products and caches the rates in $XDG_CACHE_HOME/halo (~/.cache/halo); later runs \
        read them. A cost model then times the first layer's options for this run's shapes (rows, features, \
        non-zeros, --hidden) and takes the cheapest: precomputed aggregate, dense GEMM, table lookup or CSR. \
        Where the aggregate's GEMM and the hybrid forward (the sparse features' product, then one aggregation) are \
        estimated within 1.5× of each other, one process times both on its own data before training and takes the \
        faster ("measured_forward_seconds"), once: the outcome is cached beside the rates for later runs. \
        With ranks, rank 0's rates decide for every rank. off: the thresholds measured on one AVX-512 host (lookup \
        from 15 % non-zero, dense from 20 %), the same choice everywhere. --json-out records the rates, where they \
        came from and the decision ("calibration", "first_layer_plan"); `halo calibrate` prints them.
        """,
        valueName: "on|off"))
    var mode: Mode = .on

    @Flag(help: "Measure this host's kernel rates again and rewrite the cached calibration (after a hardware, driver or OpenBLAS change).")
    var recalibrate = false

    @Option(name: .customLong("feature-representation"), help: ArgumentHelp(
        "Hold sparse input features as dense, lookup or csr, whatever the calibration or thresholds choose.",
        discussion: """
        For measuring the alternatives to the choice (the report's "feature_representation" says what ran; \
        "first_layer_plan" keeps the estimates). lookup needs indicator features (every non-zero one value; others \
        fall back to CSR); dense features are always dense. With --precompute-layer0 in effect, layer 0 multiplies \
        the precomputed dense aggregate whatever this says: add --no-precompute-layer0 to time the representation \
        itself.
        """,
        valueName: "dense|lookup|csr"))
    var featureRepresentation: FeatureRepresentation?

    func validate() throws {
        if recalibrate && mode == .off {
            throw ValidationError("--recalibrate measures the rates that --calibration off does not use: give one or the other")
        }
    }

    /// The job's calibration these options ask for.
    var choice: CalibrationChoice {
        switch mode {
        case .off: .off
        case .on: .cached(CalibrationCache(directory: CalibrationCache.defaultDirectory()), refresh: recalibrate)
        }
    }
}
