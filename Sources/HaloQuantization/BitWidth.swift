/// How many bits a message row is sent with.
///
/// `.two`, `.four` and `.eight` are stochastic integer quantization (AdaQP's choices); `.full` sends the raw
/// Float32 row, the top of PipeQS's escalation ladder 2 → 4 → 8 → fp32.
public enum BitWidth: Int, CaseIterable, Codable, Sendable, Comparable {
    case two = 2
    case four = 4
    case eight = 8
    case full = 32

    /// Bits per element on the wire.
    public var bits: Int { rawValue }

    /// Whether rows are quantized (`false` for raw Float32 rows).
    public var isQuantized: Bool { self != .full }

    /// The largest code, `2^b − 1` (255 for 8 bits); 0 for `.full`, which has no codes.
    public var maxCode: Int { isQuantized ? (1 << rawValue) - 1 : 0 }

    /// The next higher precision (2 → 4 → 8 → 32), `nil` at full precision.
    public var higher: BitWidth? {
        switch self {
        case .two: .four
        case .four: .eight
        case .eight: .full
        case .full: nil
        }
    }

    /// The next lower precision (32 → 8 → 4 → 2), `nil` at two bits.
    public var lower: BitWidth? {
        switch self {
        case .two: nil
        case .four: .two
        case .eight: .four
        case .full: .eight
        }
    }

    public static func < (a: BitWidth, b: BitWidth) -> Bool { a.rawValue < b.rawValue }
}
