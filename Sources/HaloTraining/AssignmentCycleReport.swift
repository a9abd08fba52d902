/// What one AdaQP re-assignment decided, as written to `--json-out`.
public struct AssignmentCycleReport: Sendable, Codable, Equatable {
    public struct Site: Sendable, Codable, Equatable {
        public var site: MessageSite
        /// Rows (over all channels) assigned each bit width: `{"2": n, "4": n, "8": n}`.
        public var rowsByBits: [String: Int]
        public var objective: Double
        /// The model's total variance ΣV and modelled communication time of the solution.
        public var variance: Double
        public var modelledTime: Double
    }

    /// The epoch from which the assignment holds.
    public var epoch: Int
    public var solveSeconds: Double = 0
    public var sites: [Site] = []

    public init(epoch: Int) { self.epoch = epoch }
}
