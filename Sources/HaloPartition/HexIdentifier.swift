import HaloGraph

/// A 64-bit content hash that files carry as 16 hex digits (a dataset's fingerprint, a partitioning's id): one
/// parsing, printing and JSON form for all of them.
public protocol HexIdentifier: Sendable, Hashable, CustomStringConvertible, Codable {
    var value: UInt64 { get }
    init(value: UInt64)
    /// What the identifier is, for decoding errors ("fingerprint", "partitioning id").
    static var noun: String { get }
}

extension HexIdentifier {
    /// Parses the 16-digit hex form; nil if `text` is not one.
    public init?(hex text: String) {
        // `UInt64(_:radix:)` alone would take a sign ("+" and 15 digits).
        guard text.count == 16, text.allSatisfy(\.isHexDigit), let v = UInt64(text, radix: 16) else { return nil }
        self.init(value: v)
    }

    public var hex: String { XXHash64.hex(value) }
    public var description: String { hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = Self(hex: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "a 16-digit hex \(Self.noun)"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}
