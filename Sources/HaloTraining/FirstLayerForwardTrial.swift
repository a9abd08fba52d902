import Dispatch
import HaloGraph
import HaloNN
import HaloTensor

/// Settles a near tie between the two forward products a one-process first layer with a precomputed aggregate can
/// run, on the run's own data: the aggregate's GEMM `(Â·X)·W` (`precomputed`) and `Â·(X·W)` from the features as
/// held (`hybrid`, lookup or CSR, plus one aggregation).
///
/// Why: the cost model prices both from rates measured in about a second on the calibration's shapes, and on a
/// shared host those rates move by more than the two paths differ. On Amazon-Photo on an AVX2 Zen 3 the estimates
/// were 35.2 against 40.0 ms in one calibration and 37.1 against 38.5 ms in the next (precomputed first both times),
/// while whole runs took about 40 ms per epoch with evaluation on the hybrid path and 46–55 ms on the precomputed
/// one: the tall GEMM on the real shape ran below the calibration's rate. Timing both products on the real matrices
/// costs a few forward passes of one layer, once, and only where the estimates are this close.
struct FirstLayerForwardTrial {
    /// The estimates are a tie when the slower is at most this many times the faster.
    static let tieRatio = 1.5
    /// Alternating tries of each product; each path keeps its fastest (the least disturbed by other load). Three
    /// were too few on a shared host: in one run of the peer script on the Zen 3 they timed the hybrid product at
    /// 26.6 ms against 26.2 ms for the GEMM, where the run before had timed 20.7 against 28.3 ms, and the GEMM
    /// path then took 44.7 ms an epoch with evaluation against the hybrid path's 34.7. Nine cost 18 forward passes
    /// of the first layer (about half a second on Amazon-Photo, in proportion on larger graphs), once per calibration
    /// and data (`FirstLayerTrialCache`), and span a longer stretch of the host's load.
    static let rounds = 9

    /// Whether `plan` holds a near tie this trial should settle: both paths estimated, within `tieRatio`, chosen
    /// from rates rather than forced or fixed.
    static func applies(to plan: FirstLayerPlan) -> Bool {
        guard plan.basis == .calibrated, !plan.forced, plan.precompute,
              let precomputed = plan.estimatedSeconds?[.precomputed], let hybrid = plan.estimatedSeconds?[.hybrid],
              precomputed > 0, hybrid > 0, precomputed.isFinite, hybrid.isFinite
        else { return false }
        return max(precomputed, hybrid) <= tieRatio * min(precomputed, hybrid)
    }

    /// The fastest of `rounds` alternating forward passes of `layer` each way, in seconds: through the precomputed
    /// `aggregate` by GEMM, and through `features` and `op`. Evaluation passes (nothing is kept for a later step);
    /// the layer's retained state is replaced by the next real pass.
    static func measure(
        layer: GraphConvolution, aggregate: Matrix, features: LayerInput, operator op: PropagationOperator,
        context: StepContext
    ) -> [FirstLayerPath: Double] {
        var fastest: [FirstLayerPath: Double] = [:]
        for _ in 0..<rounds {
            for path in [FirstLayerPath.precomputed, .hybrid] {
                let start = DispatchTime.now().uptimeNanoseconds
                let output = layer.forward(precomputedAggregate: aggregate, input: features,
                                           throughFeatures: path == .hybrid ? op : nil, context: context)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                precondition(output.rows == aggregate.rows, "first-layer trial: the output has the wrong shape")
                fastest[path] = min(fastest[path] ?? .infinity, seconds)
            }
        }
        return fastest
    }
}
