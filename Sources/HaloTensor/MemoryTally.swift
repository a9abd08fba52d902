/// What a rank's memory holds, by kind: the sums of the element bytes of the arrays a run keeps, each buffer
/// counted once however many values share it (Swift arrays share storage until written: a layer's saved input is
/// often the previous layer's output, or the features themselves).
///
/// It counts what the run's objects hold, not what the allocator has mapped: the difference to the process's peak
/// resident memory is transient buffers, allocator slack and the runtime.
public struct MemoryTally: Sendable, Equatable {
    public enum Kind: String, CaseIterable, Sendable, Codable, Comparable {
        /// The aggregation operator's CSR arrays, halo send lists.
        case graphStructure = "graph_structure"
        /// Input features (and a precomputed first-layer aggregate).
        case inputFeatures = "input_features"
        case parameters
        /// Parameters' gradients.
        case gradients
        /// Adam's moment estimates.
        case optimizerState = "optimizer_state"
        /// What forward keeps for backward: layer inputs and aggregates, normalised rows, activation outputs.
        case activations
        /// Halo messages kept across epochs: pipelined caches, messages received early, last blocks sent.
        case messageBuffers = "message_buffers"

        public static func < (a: Kind, b: Kind) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    public private(set) var bytes: [Kind: Int] = [:]
    private var seen: Set<UInt> = []

    public init() {}

    public var total: Int { bytes.values.reduce(0, +) }

    public subscript(kind: Kind) -> Int { bytes[kind] ?? 0 }

    /// Counts `array`'s elements as `kind`, unless its buffer was counted already (under any kind).
    public mutating func add<T>(_ array: [T], as kind: Kind) {
        guard !array.isEmpty else { return }
        let address = array.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        guard seen.insert(address).inserted else { return }
        bytes[kind, default: 0] += array.count * MemoryLayout<T>.stride
    }

    public mutating func add(_ matrix: Matrix, as kind: Kind) { add(matrix.storage, as: kind) }

    public mutating func add(_ matrix: SparseMatrix, as kind: Kind) {
        add(matrix.rowPointers, as: kind)
        add(matrix.columnIndices, as: kind)
        add(matrix.values, as: kind)
    }

    public mutating func add(_ matrix: BinaryMatrix, as kind: Kind) {
        add(matrix.rowCodes, as: kind)
        add(matrix.columnCodes, as: kind)
    }

    /// Tallies are equal when they count the same bytes of each kind (which buffers were seen does not matter).
    public static func == (a: MemoryTally, b: MemoryTally) -> Bool {
        Kind.allCases.allSatisfy { a[$0] == b[$0] }
    }

    /// Each kind's larger value of the two (a peak over samples).
    public mutating func keepMaximum(_ other: MemoryTally) {
        for (kind, value) in other.bytes where value > self[kind] { bytes[kind] = value }
    }
}
