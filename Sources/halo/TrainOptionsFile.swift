import Foundation
import Yams

/// `halo train --config FILE` and `--recipe NAME`: options read from YAML (JSON is YAML too), turned into the
/// flags they name and placed before the command line's own, so a flag given on the command line wins (for an
/// option given twice, the parser keeps the last value).
///
/// A file holds either options spelled as `halo train`'s flags (`hidden: 256`, `input-dropout: 0.5`,
/// `precompute-layer0: false`; `_` may stand for `-`), or a report written by `--json-out` (its `config` block, and
/// its `partitioning` block for the number of parts and the partitioner), so a run can be repeated from its report.
enum TrainOptionsFile {
    /// How an option is written on the command line.
    enum Spelling {
        /// `--name value`.
        case value
        /// `--name` when true, nothing when false.
        case flag
        /// `--name` when true, `--no-name` when false.
        case invertible
    }

    /// Every option of `halo train` a file may set (a test checks this against `halo train --help`). `config` and
    /// `recipe` are not among them: a file does not include another.
    static let options: [String: Spelling] = [
        "dataset": .value, "model": .value, "layers": .value, "hidden": .value, "dropout": .value,
        "input-dropout": .value, "norm": .value, "normalize-features": .flag, "lr": .value, "weight-decay": .value,
        "epochs": .value, "seed": .value, "eval-every": .value, "metric": .value, "method": .value, "grad-compression": .value, "overlap-allreduce": .invertible, "weight-gradient-pieces": .value, "assign": .value,
        "assign-cycle": .value, "group-size": .value, "lambda": .value, "pipeline-warmup": .value,
        "smoothing": .value, "max-staleness": .value, "drift-threshold": .value, "bypass": .invertible,
        "adaptive-bits": .invertible, "initial-bits": .value, "bypassed-gradients": .value,
        "precompute-layer0": .invertible, "parts": .value, "transport": .value, "partition-method": .value,
        "partitions": .value, "threads": .value, "memory-budget": .value, "column-blocks": .value, "json-out": .value, "quiet": .flag, "checkpoint": .value,
        "checkpoint-every": .value, "resume": .value, "tensorboard": .value, "calibration": .value,
        "recalibrate": .flag, "feature-representation": .value,
    ]

    /// A file that cannot be used, naming it and what is wrong in it.
    struct Problem: Error, CustomStringConvertible {
        var source: String
        var reason: String
        var description: String { "\(source): \(reason)" }
    }

    /// `arguments` (the whole command line after the program name) with the options of `--recipe` and `--config`
    /// inserted right after the `train` subcommand. Other subcommands' arguments are returned unchanged.
    static func expand(_ arguments: [String]) throws -> [String] {
        guard let command = arguments.firstIndex(of: "train") else { return arguments }
        let own = Array(arguments[(command + 1)...])
        var inserted: [String] = []
        if let name = value(of: "--recipe", in: own) {
            guard let recipe = TrainRecipe.named(name) else {
                throw Problem(source: "--recipe \(name)", reason: "no such recipe; the recipes are: \(TrainRecipe.all.map(\.name).joined(separator: ", "))")
            }
            inserted += try flags(fromYAML: recipe.yaml, source: "recipe \(recipe.name)")
        }
        if let path = value(of: "--config", in: own) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Problem(source: "--config \(path)", reason: "cannot be read (no such file, or not readable)")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw Problem(source: path, reason: "is not UTF-8 text")
            }
            inserted += try flags(fromYAML: text, source: path)
        }
        return Array(arguments[...command]) + inserted + own
    }

    /// The value of `--name value` or `--name=value` in `arguments`, the last one if repeated.
    private static func value(of name: String, in arguments: [String]) -> String? {
        var found: String?
        for (i, argument) in arguments.enumerated() {
            if argument == name, i + 1 < arguments.count { found = arguments[i + 1] }
            if argument.hasPrefix(name + "=") { found = String(argument.dropFirst(name.count + 1)) }
        }
        return found
    }

    /// The flags the YAML document `text` names (`source` names it in errors).
    static func flags(fromYAML text: String, source: String) throws -> [String] {
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw Problem(source: source, reason: "is not valid YAML or JSON: \(error)")
        }
        guard let mapping = document as? [String: Any] else {
            throw Problem(source: source, reason: "expected a mapping of options (e.g. `hidden: 256`), found \(document.map { describe($0) } ?? "an empty document")")
        }
        let options = mapping["config"] is [String: Any] || mapping["model"] is [String: Any]
            ? try ReportOptions.flatten(mapping, source: source)
            : mapping
        return try options.keys.sorted().flatMap { key in try flags(key, options[key]!, source: source) }
    }

    /// The command-line form of one option.
    private static func flags(_ key: String, _ value: Any, source: String) throws -> [String] {
        let name = key.replacingOccurrences(of: "_", with: "-")
        guard let spelling = options[name] else {
            let hint = ["config", "recipe"].contains(name) ? "a file cannot name another file" : "options are spelled as `halo train` flags without the dashes, e.g. `hidden: 256`"
            throw Problem(source: source, reason: "unknown option `\(key)` (\(hint))")
        }
        switch spelling {
        case .value:
            guard let text = scalar(value) else {
                throw Problem(source: source, reason: "option `\(key)`: expected a single value, found \(describe(value))")
            }
            return ["--\(name)", text]
        case .flag, .invertible:
            guard let on = value as? Bool else {
                throw Problem(source: source, reason: "option `\(key)`: expected true or false, found \(describe(value))")
            }
            if on { return ["--\(name)"] }
            return spelling == .invertible ? ["--no-\(name)"] : []
        }
    }

    /// A number, string or boolean as the command line writes it.
    private static func scalar(_ value: Any) -> String? {
        switch value {
        case let text as String: return text
        case let flag as Bool: return String(flag)
        case let integer as Int: return String(integer)
        case let number as Double: return "\(number)"
        default: return nil
        }
    }

    static func describe(_ value: Any) -> String {
        switch value {
        case is [Any]: return "a list"
        case is [String: Any]: return "a mapping"
        case let text as String: return "\"\(text)\""
        default: return "\(value)"
        }
    }
}
