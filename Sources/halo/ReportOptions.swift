import Foundation
import HaloPartition

/// The options of the run a `--json-out` report describes, spelled as `halo train`'s flags: its `config` block
/// (the settings as the trainer keeps them) and its `partitioning` block (parts and partitioner).
///
/// Settings that have no flag (Adam's betas and epsilon) must hold their defaults, or the run could not be
/// repeated from flags; `threads` 0 means "the default" and is left out; a `dataset` that is a folder of parts
/// becomes `partitions`.
enum ReportOptions {
    /// (path in the config block, flag name).
    private static let renames: [([String], String)] = [
        (["dataset"], "dataset"), (["epochs"], "epochs"), (["seed"], "seed"), (["evaluate_every"], "eval-every"),
        (["threads"], "threads"), (["method"], "method"), (["metric"], "metric"),
        (["normalize_features"], "normalize-features"), (["gradient_compression"], "grad-compression"),
        (["overlaps_gradient_reduction"], "overlap-allreduce"), (["weight_gradient_pieces"], "weight-gradient-pieces"),
        (["model", "kind"], "model"), (["model", "layers"], "layers"), (["model", "hidden_width"], "hidden"),
        (["model", "dropout"], "dropout"), (["model", "input_dropout"], "input-dropout"),
        (["model", "normalization"], "norm"),
        (["optimizer", "learning_rate"], "lr"), (["optimizer", "weight_decay"], "weight-decay"),
        (["quantization", "assignment"], "assign"), (["quantization", "assign_cycle"], "assign-cycle"),
        (["quantization", "group_size"], "group-size"), (["quantization", "lambda"], "lambda"),
        (["quantization", "precompute_first_layer"], "precompute-layer0"),
        (["pipeline", "warmup"], "pipeline-warmup"), (["pipeline", "smoothing"], "smoothing"),
        (["pipeline", "max_staleness"], "max-staleness"), (["pipeline", "drift_threshold"], "drift-threshold"),
        (["pipeline", "bypass"], "bypass"), (["pipeline", "adaptive_bits"], "adaptive-bits"),
        (["pipeline", "initial_bits"], "initial-bits"), (["pipeline", "bypassed_gradients"], "bypassed-gradients"),
    ]
    /// Settings without a flag, and the only values a repeatable run may have.
    private static let fixed: [([String], Double)] = [
        (["optimizer", "beta1"], 0.9), (["optimizer", "beta2"], 0.999), (["optimizer", "epsilon"], 1e-8),
    ]

    /// `document` (a report, or a bare `config` block) as options keyed by flag name.
    static func flatten(_ document: [String: Any], source: String) throws -> [String: Any] {
        let config = document["config"] as? [String: Any] ?? document
        var options: [String: Any] = [:]
        for (path, flag) in renames {
            guard let value = lookUp(path, in: config), !(value is NSNull) else { continue }
            options[flag] = value
        }
        for (path, expected) in fixed {
            guard let value = lookUp(path, in: config) else { continue }
            let number = (value as? Double) ?? (value as? Int).map(Double.init)
            guard let number, abs(number - expected) <= 1e-12 * max(1, abs(expected)) else {
                throw TrainOptionsFile.Problem(source: source, reason: "`config.\(path.joined(separator: "."))` is \(TrainOptionsFile.describe(value)); halo train has no flag for it and uses \(expected)")
            }
        }
        if let threads = options["threads"] as? Int, threads == 0 { options["threads"] = nil }
        if let dataset = options["dataset"] as? String,
           FileManager.default.fileExists(atPath: "\(dataset)/\(PartitionStore.manifestFile)") {
            options["dataset"] = nil
            options["partitions"] = dataset
        }
        if let partitioning = document["partitioning"] as? [String: Any] {
            if let parts = partitioning["parts"] { options["parts"] = parts }
            if options["partitions"] == nil, let method = partitioning["method"] { options["partition-method"] = method }
        }
        return options
    }

    private static func lookUp(_ path: [String], in mapping: [String: Any]) -> Any? {
        var current: Any? = mapping
        for key in path { current = (current as? [String: Any])?[key] }
        return current
    }
}
