import Foundation

/// Where a JSON document does not fit its type, in terms a file-format error can name: the key path at fault,
/// what was found there and what was expected.
public struct JSONFieldProblem: Error, Sendable {
    public enum Kind: Sendable { case missingField, badField, notJSON }

    public var kind: Kind
    /// The key path, e.g. "`parts.[2].inner`"; empty for `.notJSON`.
    public var field: String
    public var found: String
    public var expected: String

    /// Decodes `T` with `decoder`, turning decoding failures into the key at fault.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        func key(_ path: [any CodingKey]) -> String {
            "`" + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "`"
        }
        do {
            return try decoder.decode(T.self, from: data)
        } catch DecodingError.keyNotFound(let missing, let context) {
            throw JSONFieldProblem(kind: .missingField, field: key(context.codingPath + [missing]), found: "missing", expected: "a value")
        } catch DecodingError.typeMismatch(let expected, let context) where !context.codingPath.isEmpty {
            throw JSONFieldProblem(kind: .badField, field: key(context.codingPath), found: "of the wrong type", expected: "\(expected)")
        } catch DecodingError.valueNotFound(let expected, let context) {
            throw JSONFieldProblem(kind: .badField, field: key(context.codingPath), found: "null", expected: "\(expected)")
        } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            throw JSONFieldProblem(kind: .badField, field: key(context.codingPath), found: "invalid", expected: context.debugDescription)
        } catch {
            throw JSONFieldProblem(kind: .notJSON, field: "content", found: "not a valid JSON object", expected: "")
        }
    }
}
