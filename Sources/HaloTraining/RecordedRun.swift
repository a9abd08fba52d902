import Foundation

/// A run read back from the JSON `halo train --json-out` writes (`TrainingReport`): what a viewer shows, decoded
/// from the report's own field names. Reports of runs still going or stopped early (`"complete": false`) read as
/// well as finished ones.
///
/// Not `TrainingReport` itself: the report is written with snake_case keys derived from some property names and
/// spelled out for others, which no single `JSONDecoder` key strategy reads back, and a viewer needs only part of
/// the configuration. The epochs and AdaQP cycles are the report's own types.
public struct RecordedRun: Sendable {
    /// The configuration fields that name a run.
    public struct Setup: Sendable, Decodable, Equatable {
        public var dataset: String
        public var method: String
        public var modelKind: String
        public var layers: Int
        public var hiddenWidth: Int
        /// Epochs the run was asked for.
        public var epochs: Int
        public var seed: UInt64

        private enum CodingKeys: String, CodingKey { case dataset, method, model, epochs, seed }
        private enum ModelKeys: String, CodingKey {
            case kind, layers
            case hiddenWidth = "hidden_width"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            dataset = try container.decode(String.self, forKey: .dataset)
            method = try container.decode(String.self, forKey: .method)
            epochs = try container.decode(Int.self, forKey: .epochs)
            seed = try container.decode(UInt64.self, forKey: .seed)
            let model = try container.nestedContainer(keyedBy: ModelKeys.self, forKey: .model)
            modelKind = try model.decode(String.self, forKey: .kind)
            layers = try model.decode(Int.self, forKey: .layers)
            hiddenWidth = try model.decode(Int.self, forKey: .hiddenWidth)
        }
    }

    public var setup: Setup
    /// Ranks the run trained on (parts of the graph; 1 for the whole graph in one process).
    public var ranks: Int
    public var epochs: [EpochRecord]
    /// AdaQP's re-assignments (empty for other methods).
    public var assignmentCycles: [AssignmentCycleReport]
    public var complete: Bool
    public var stopReason: String?
    /// What its scores measure (`EvaluationMetric`'s name): "accuracy" for reports written before the field.
    public var metric: String
    public var bestValidationAccuracy: Double?
    public var testAccuracyAtBestValidation: Double?
    public var epochTimeMedian: Double
    public var bytesSentPerEpoch: Double

    /// Reads the report at `path`, throwing `RecordedRunError` naming the file and what it lacks.
    public static func read(path: String) throws -> RecordedRun {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw RecordedRunError(path: path, reason: "cannot read it: \((error as NSError).localizedDescription)")
        }
        return try decode(data, path: path)
    }

    /// Decodes a report's JSON; `path` names it in errors.
    public static func decode(_ data: Data, path: String) throws -> RecordedRun {
        let top: Any
        do {
            top = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw RecordedRunError(path: path, reason: "it is not JSON (expected the report halo train --json-out writes)")
        }
        guard let object = top as? [String: Any], object["config"] != nil, object["epochs"] != nil,
              object["environment"] != nil else {
            throw RecordedRunError(path: path, reason: """
                it is not a halo training report: expected a JSON object with "config", "environment" and "epochs", \
                as halo train --json-out writes
                """)
        }
        do {
            let body = try JSONDecoder().decode(Body.self, from: data)
            // AdaQP's cycles are written with keys converted from their property names.
            let snakeCase = JSONDecoder()
            snakeCase.keyDecodingStrategy = .convertFromSnakeCase
            let cycles = try snakeCase.decode(Cycles.self, from: data).assignmentCycles ?? []
            return RecordedRun(
                setup: body.config, ranks: body.partitioning?.parts ?? body.environment.ranks, epochs: body.epochs,
                assignmentCycles: cycles, complete: body.complete ?? true, stopReason: body.stopReason,
                metric: body.metric ?? EvaluationMetric.accuracy.rawValue,
                bestValidationAccuracy: body.bestValidationAccuracy,
                testAccuracyAtBestValidation: body.testAccuracyAtBestValidation,
                epochTimeMedian: body.epochTimeMedian, bytesSentPerEpoch: body.bytesSentPerEpoch)
        } catch let error as DecodingError {
            throw RecordedRunError(path: path, reason: Self.describe(error))
        }
    }

    /// The decoding error as a sentence naming the field: "field epochs[2].loss is missing".
    private static func describe(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String {
            var text = ""
            for key in path {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += (text.isEmpty ? "" : ".") + key.stringValue
                }
            }
            return text.isEmpty ? "the top level" : "field \(text)"
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(field(context.codingPath + [key])) is missing"
        case .typeMismatch(let type, let context):
            return "\(field(context.codingPath)) is not a \(Self.name(of: type))"
        case .valueNotFound(let type, let context):
            return "\(field(context.codingPath)) is null where a \(Self.name(of: type)) was expected"
        case .dataCorrupted(let context):
            return "\(field(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Float.Type: "number"
        case is Int.Type, is UInt64.Type: "whole number"
        case is String.Type: "string"
        case is Bool.Type: "true or false"
        default: "\(type)"
        }
    }

    /// The report's fields read with their written names.
    private struct Body: Decodable {
        struct Environment: Decodable { var ranks: Int }
        struct Partitioning: Decodable { var parts: Int }

        var config: Setup
        var environment: Environment
        var partitioning: Partitioning?
        var epochs: [EpochRecord]
        var complete: Bool?
        var stopReason: String?
        var bestValidationAccuracy: Double?
        var testAccuracyAtBestValidation: Double?
        var epochTimeMedian: Double
        var bytesSentPerEpoch: Double
        var metric: String?

        enum CodingKeys: String, CodingKey {
            case config, environment, partitioning, epochs, complete, metric
            case stopReason = "stop_reason"
            case bestValidationAccuracy = "best_val_accuracy"
            case testAccuracyAtBestValidation = "test_accuracy_at_best_val"
            case epochTimeMedian = "epoch_time_median_s"
            case bytesSentPerEpoch = "bytes_sent_per_epoch"
        }
    }

    private struct Cycles: Decodable {
        var assignmentCycles: [AssignmentCycleReport]?
    }
}

/// A file given as a run's report that is not one, naming the file and what was expected.
public struct RecordedRunError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}
