import Foundation

/// `checkpoint.json`, the file that says which saved epoch of a checkpoint folder is complete.
///
/// Rank 0 replaces it atomically only after every rank has written its state for that epoch, so whatever it names
/// is whole on every rank's host; states of other epochs are leftovers of a write that was cut short (or are about
/// to be removed). It also records what the run was, so a resume with other data, another model or another number
/// of ranks is refused before anything is loaded.
public struct CheckpointManifest: Codable, Equatable, Sendable {
    public static let formatName = "halo-checkpoint"
    public static let formatVersion = 1

    public var format: String
    public var formatVersion: Int
    /// Epochs finished when the state was saved: a resumed run starts at this (0-based) epoch.
    public var epochsDone: Int
    public var worldSize: Int
    /// The folder, inside the checkpoint folder, holding one state file per rank.
    public var stateFolder: String
    /// The run's settings; a resumed run must match them except where `resumableDifferences` allows.
    public var configuration: TrainingConfiguration
    /// When the epoch was saved (ISO 8601, UTC), for people.
    public var savedAt: String

    public init(epochsDone: Int, worldSize: Int, configuration: TrainingConfiguration, savedAt: Date = Date()) {
        format = Self.formatName
        formatVersion = Self.formatVersion
        self.epochsDone = epochsDone
        self.worldSize = worldSize
        stateFolder = Self.stateFolder(epochsDone: epochsDone)
        self.configuration = configuration
        self.savedAt = ISO8601DateFormatter().string(from: savedAt)
    }

    static func stateFolder(epochsDone: Int) -> String { String(format: "epoch-%06d", epochsDone) }

    /// Refuses to resume a run whose settings differ from the saved run's in anything that changes what it
    /// computes. The data is not compared by name (a folder may be reached by several paths): each rank compares
    /// a digest of the shard it trains on with the one it saved. The number of epochs, how often to evaluate and the thread count may change (a resumed run may go
    /// on for longer); the layer-0 choice is compared as resolved, so leaving it to the default is not a mismatch.
    public func checkResumable(as configuration: TrainingConfiguration, worldSize: Int, path: String) throws {
        guard worldSize == self.worldSize else {
            throw CheckpointError(path: path, reason: "it was saved by \(self.worldSize) rank(s); this run has \(worldSize). Resume with the same number of ranks (--parts or mpirun -np \(self.worldSize))")
        }
        let differences = Self.differences(saved: self.configuration, given: configuration)
        guard differences.isEmpty else {
            throw CheckpointError(path: path, reason: "it was saved by a run with other settings: " + differences.joined(separator: "; ")
                                  + ". Resume with the saved run's settings (the number of epochs may grow)")
        }
        guard configuration.epochs > epochsDone else {
            throw CheckpointError(path: path, reason: "it holds \(epochsDone) epochs done and this run asks for \(configuration.epochs) in all: nothing is left to train (raise --epochs)")
        }
    }

    /// The settings that differ, each as "name: saved X, given Y".
    static func differences(saved: TrainingConfiguration, given: TrainingConfiguration) -> [String] {
        var found: [String] = []
        func compare<T: Equatable>(_ name: String, _ a: T, _ b: T) {
            if a != b { found.append("\(name): saved \(a), given \(b)") }
        }
        compare("model", saved.model.kind.rawValue, given.model.kind.rawValue)
        compare("layers", saved.model.layers, given.model.layers)
        compare("hidden", saved.model.hiddenWidth, given.model.hiddenWidth)
        compare("dropout", saved.model.dropout, given.model.dropout)
        compare("input dropout", saved.model.inputDropout, given.model.inputDropout)
        compare("norm", saved.model.normalization.rawValue, given.model.normalization.rawValue)
        compare("optimizer", saved.optimizer, given.optimizer)
        compare("seed", saved.seed, given.seed)
        compare("normalize features", saved.normalizeFeatures ?? false, given.normalizeFeatures ?? false)
        compare("method", saved.method.rawValue, given.method.rawValue)
        // The residuals in the checkpoint are those of the saved format.
        compare("gradient compression", (saved.gradientCompression ?? .none).rawValue,
                (given.gradientCompression ?? .none).rawValue)
        var savedQuantization = saved.quantization, givenQuantization = given.quantization
        if givenQuantization.precomputeFirstLayer == nil { givenQuantization.precomputeFirstLayer = savedQuantization.precomputeFirstLayer }
        if savedQuantization.precomputeFirstLayer == nil { savedQuantization.precomputeFirstLayer = givenQuantization.precomputeFirstLayer }
        compare("quantization settings", savedQuantization, givenQuantization)
        compare("pipeline settings", saved.pipeline, given.pipeline)
        // The saved epochs' scores are in the saved metric: model selection must go on comparing like with like.
        compare("metric", saved.metric?.rawValue ?? "the task's standard", given.metric?.rawValue ?? "the task's standard")
        return found
    }
}
