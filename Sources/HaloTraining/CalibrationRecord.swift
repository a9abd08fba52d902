import HaloTensor

/// The calibration a run used: its rates, the key they were measured under, and whether they were measured now or
/// read from the cache. The cache stores these (as `measured`) and the report carries them.
public struct CalibrationRecord: Sendable, Codable, Equatable {
    public enum Origin: String, Sendable, Codable {
        /// Measured by this process (no usable cache file, or `--recalibrate`).
        case measured
        /// Read from the cache file, measured by an earlier process with the same key.
        case cached
    }

    public var origin: Origin
    public var key: CalibrationKey
    public var rates: KernelRates
    /// Wall time of the measurement that produced the rates.
    public var measurementSeconds: Double
    /// When the rates were measured (ISO 8601, UTC).
    public var measuredAt: String
    /// The cache file they came from or went to; nil when nothing could be written.
    public var cacheFile: String?

    public init(origin: Origin, key: CalibrationKey, rates: KernelRates, measurementSeconds: Double,
                measuredAt: String, cacheFile: String? = nil) {
        self.origin = origin
        self.key = key
        self.rates = rates
        self.measurementSeconds = measurementSeconds
        self.measuredAt = measuredAt
        self.cacheFile = cacheFile
    }
}
