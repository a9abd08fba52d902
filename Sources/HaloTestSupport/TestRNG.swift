/// A small deterministic generator for test data (SplitMix64), independent of the code under test.
///
/// Used only by Halo's test targets: a shared seedable source, so test inputs are the same on every run and
/// every machine.
public struct TestRNG: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func float(in range: ClosedRange<Float> = -1...1) -> Float { Float.random(in: range, using: &self) }

    public mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &self) }
}
