import HaloNN
import HaloPartition
import HaloQuantization
import HaloTensor

/// AdaQP's `random` ablation: each row gets 2, 4 or 8 bits uniformly at random, redrawn every cycle.
///
/// The draw is addressed by (seed, cycle, layer and direction, global node id), so a row's width does not depend
/// on which rank sends it; the widths travel in the message header.
public final class RandomPrecision: PrecisionPolicy {
    /// Per direction, per peer: the global ids of the rows this rank sends, in message order.
    private let sentNodes: [MessageDirection: [[Int32]]]
    private let random: CounterRandom
    private let assignCycle: Int
    private var cycle = 0
    private var cache: [MessageSite: [BitAssignment]] = [:]

    public init(part: Part, seed: UInt64, assignCycle: Int) {
        // Forward: our boundary rows go out; backward: our halo rows' gradients.
        sentNodes = [.forward: part.sendLists.map { $0.map { part.innerGlobalIDs[Int($0)] } },
                     .backward: part.haloRanges.map { Array(part.haloGlobalIDs[$0]) }]
        random = CounterRandom(seed: seed)
        self.assignCycle = max(1, assignCycle)
    }

    public func beginEpoch(_ epoch: Int) throws {
        let c = epoch / assignCycle
        if c != cycle {
            cycle = c
            cache.removeAll()
        }
    }

    public func bits(_ site: MessageSite, to peer: Int) -> BitAssignment {
        if let table = cache[site] { return table[peer] }
        let choices: [BitWidth] = [.two, .four, .eight]
        let table = sentNodes[site.direction]!.map { nodes in
            BitAssignment.perRow(nodes.map { node in
                let w = random.word64(.assignment, UInt32(cycle), site.counterWord, UInt32(bitPattern: node), index: 0)
                return choices[Int(w % 3)]
            })
        }
        cache[site] = table
        return table[peer]
    }
}
