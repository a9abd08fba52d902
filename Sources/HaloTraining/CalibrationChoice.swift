import HaloTensor

/// Where a training job's kernel rates come from, which decide its first layer (`FirstLayerPlan`).
///
/// `off` is the library default: a program that builds a `TrainingJob` gets the fixed thresholds of
/// `FeatureStatistics`, writes nothing under the user's home and decides the same on every machine. `halo train`
/// uses `cached` unless told `--calibration off`.
public enum CalibrationChoice: Sendable {
    /// No rates: the documented constants decide.
    case off
    /// Rates the caller already has (measured by its own means, or chosen by a test).
    case given(CalibrationRecord)
    /// This host's rates from `cache`, measured (about a second) and stored when it has none for this key;
    /// `refresh` measures and rewrites it regardless.
    case cached(CalibrationCache, refresh: Bool)

    /// The calibration for ranks running `threads` compute threads each; nil when `off`. Only the rank whose
    /// rates the run will use (rank 0) calls this, so a multi-process run measures once.
    public func resolve(threads: Int, warn: (String) -> Void) -> CalibrationRecord? {
        switch self {
        case .off:
            return nil
        case .given(let record):
            return record
        case .cached(let cache, let refresh):
            return cache.calibration(for: .current(threads: threads), refresh: refresh, warn: warn) {
                HostCalibration.measure(pool: ComputePool(threads: threads))
            }
        }
    }
}
