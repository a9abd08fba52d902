import HaloPartition
import HaloTensor

/// Who sends which rows to whom: the fixed communication pattern of one rank for a partitioning.
public struct HaloExchangePlan: Sendable, Equatable {
    public var rank: Int
    public var worldSize: Int
    public var innerCount: Int
    /// `sendLists[p]`: local inner rows whose values rank `p` needs, in the order of `p`'s halo block from us.
    public var sendLists: [[Int32]]
    /// `haloRanges[p]`: where rows from rank `p` land, as offsets into this rank's halo block.
    public var haloRanges: [Range<Int>]

    public init(rank: Int, worldSize: Int, innerCount: Int, sendLists: [[Int32]], haloRanges: [Range<Int>]) {
        precondition(sendLists.count == worldSize && haloRanges.count == worldSize, "one send list and halo range per rank")
        self.rank = rank
        self.worldSize = worldSize
        self.innerCount = innerCount
        self.sendLists = sendLists
        self.haloRanges = haloRanges
    }

    public var haloCount: Int { haloRanges.map(\.upperBound).max() ?? 0 }

    /// Rows sent to other ranks in one exchange (each direction of a layer).
    public var sentRowCount: Int { sendLists.enumerated().reduce(0) { $0 + ($1.offset == rank ? 0 : $1.element.count) } }
}

extension HaloExchangePlan {
    /// The exchange pattern stored with a part.
    public init(part: Part) {
        self.init(rank: part.rank, worldSize: part.partCount, innerCount: part.innerCount,
                  sendLists: part.sendLists, haloRanges: part.haloRanges)
    }
}

extension HaloExchangePlan {
    /// Counts the send lists as graph structure.
    func tally(into tally: inout MemoryTally) {
        for list in sendLists { tally.add(list, as: .graphStructure) }
    }
}
