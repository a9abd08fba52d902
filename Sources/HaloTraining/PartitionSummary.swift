import HaloPartition

/// How the graph was split, as recorded in a report.
public struct PartitionSummary: Sendable, Codable, Equatable {
    public var method: PartitionMethod
    public var parts: Int
    public var edgeCut: Int?
    public var cutFraction: Double?
    public var balance: Double?
    public var inner: [Int]
    public var central: [Int]
    public var marginal: [Int]
    public var halo: [Int]

    public init(method: PartitionMethod, parts: [Part], quality: PartitionQuality?) {
        self.method = method
        self.parts = parts.count
        edgeCut = quality?.cutEdges
        cutFraction = quality?.cutFraction
        balance = quality?.balance
        inner = parts.map(\.innerCount)
        central = parts.map(\.centralCount)
        marginal = parts.map(\.marginalCount)
        halo = parts.map(\.haloCount)
    }

    public init(manifest: PartitionManifest) {
        method = manifest.method
        parts = manifest.parts
        edgeCut = manifest.edgeCut
        cutFraction = manifest.cutFraction
        balance = manifest.balance
        inner = manifest.partList.map(\.inner)
        central = manifest.partList.map(\.central)
        marginal = manifest.partList.map(\.marginal)
        halo = manifest.partList.map(\.halo)
    }
}
