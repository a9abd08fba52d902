import Foundation
import HaloGraph

/// What a part contributes to the checks that need all parts: counts and order-free sums, small enough that every
/// rank can gather every other rank's tally (`bytes`) and reach the same verdict (`verify`).
///
/// One part alone cannot show that a node is owned twice, that the split masks add up to `global_split_sizes`, or
/// that a halo node's degrees equal its owner's; a directory whose checksums were recomputed after an edit passes
/// every per-part check. The sums use a mixing hash of each id, so an id owned twice (and another by none) changes
/// the sum over owned ids unless 64-bit hashes collide.
public struct PartSetTally: Sendable, Equatable {
    public var rank: Int
    public var innerCount: Int
    /// Wrapping sum of `mix(id)` over the owned (inner) ids.
    public var ownedIDHash: UInt64
    public var train: Int
    public var validation: Int
    public var test: Int
    /// The whole graph's split sizes, as this part's meta.json records them.
    public var globalSplit: GlobalSplitCounts
    /// In-edges stored, and out-edges of the owned nodes (global out-degrees minus the self loop).
    public var storedEdges: Int
    public var ownedOutEdges: Int
    /// Wrapping sums of `mix(id, in-degree, out-degree, sender, receiver)` over the rows this part sends (once per
    /// receiving peer), and over its halo nodes (received from their block's owner): summed over all parts, the two
    /// are equal when every halo node is sent by its owner to exactly the parts that hold it, with its owner's degrees.
    public var sentDegreeHash: UInt64
    public var haloDegreeHash: UInt64
    /// Wrapping sums of `count × mix(id)`: over the local nodes, of the out-edges this part stores from each, and
    /// over the owned nodes, of their out-degree less the self loop. Every edge is stored by its destination's owner
    /// only, so summed over all parts the two are equal when each owned node's out-degree counts exactly its edges;
    /// the total of `ownedOutEdges` alone misses an edge whose source was moved to another node of the part.
    public var storedOutEdgeHash: UInt64
    public var ownedOutDegreeHash: UInt64

    public init(_ part: Part) {
        rank = part.rank
        innerCount = part.innerCount
        ownedIDHash = part.innerGlobalIDs.reduce(0) { $0 &+ Self.mix(UInt64(UInt32(bitPattern: $1))) }
        train = part.split.trainCount
        validation = part.split.validationCount
        test = part.split.testCount
        globalSplit = part.globalSplitCounts
        storedEdges = part.edgeCount
        let degrees = part.degrees
        ownedOutEdges = degrees.outDegrees.prefix(part.innerCount).reduce(0) { $0 + Int($1) - 1 }
        // The link (sender, receiver) is part of each row's hash: the rows sent over all parts are the same multiset
        // when two of a part's send lists exchange rows, but then the rows no longer go where the halo blocks expect.
        func nodeHash(_ local: Int, _ id: Int32, from sender: Int, to receiver: Int) -> UInt64 {
            let node = Self.mix(Self.mix(UInt64(UInt32(bitPattern: id))) ^ (UInt64(UInt32(bitPattern: degrees.inDegrees[local])) << 32
                                                                           | UInt64(UInt32(bitPattern: degrees.outDegrees[local]))))
            return Self.mix(node ^ Self.mix(UInt64(UInt32(truncatingIfNeeded: sender)) << 32 | UInt64(UInt32(truncatingIfNeeded: receiver))))
        }
        sentDegreeHash = 0
        for (q, list) in part.sendLists.enumerated() {
            for row in list { sentDegreeHash &+= nodeHash(Int(row), part.innerGlobalIDs[Int(row)], from: part.rank, to: q) }
        }
        haloDegreeHash = 0
        for (q, range) in part.haloRanges.enumerated() {
            for h in range { haloDegreeHash &+= nodeHash(part.innerCount + h, part.haloGlobalIDs[h], from: q, to: part.rank) }
        }
        func localID(_ k: Int) -> Int32 { k < part.innerCount ? part.innerGlobalIDs[k] : part.haloGlobalIDs[k - part.innerCount] }
        var storedOut = [UInt64](repeating: 0, count: part.innerCount + part.haloCount)
        for s in part.inSources { storedOut[Int(s)] += 1 }
        storedOutEdgeHash = storedOut.indices.reduce(0) { $0 &+ storedOut[$1] &* Self.mix(UInt64(UInt32(bitPattern: localID($1)))) }
        ownedOutDegreeHash = (0..<part.innerCount).reduce(0) {
            $0 &+ UInt64(bitPattern: Int64(degrees.outDegrees[$1]) - 1) &* Self.mix(UInt64(UInt32(bitPattern: part.innerGlobalIDs[$1])))
        }
    }

    /// A stateless 64-bit mixer (SplitMix64's finaliser): neighbouring ids give unrelated values.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    // MARK: Exchange

    private var words: [UInt64] {
        [UInt64(rank), UInt64(innerCount), ownedIDHash, UInt64(train), UInt64(validation), UInt64(test),
         UInt64(globalSplit.train), UInt64(globalSplit.validation), UInt64(globalSplit.test),
         UInt64(storedEdges), UInt64(bitPattern: Int64(ownedOutEdges)), sentDegreeHash, haloDegreeHash,
         storedOutEdgeHash, ownedOutDegreeHash]
    }

    /// Little-endian bytes of the tally, for a broadcast.
    public var bytes: [UInt8] {
        words.flatMap { word in withUnsafeBytes(of: word.littleEndian) { Array($0) } }
    }

    /// Decodes `bytes`; nil if they are not a tally.
    public init?(bytes: [UInt8]) {
        let count = 15
        guard bytes.count == count * 8 else { return nil }
        let w: [UInt64] = (0..<count).map { i in
            bytes[(i * 8)..<(i * 8 + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        func int(_ i: Int) -> Int { Int(truncatingIfNeeded: w[i]) }
        rank = int(0)
        innerCount = int(1)
        ownedIDHash = w[2]
        train = int(3)
        validation = int(4)
        test = int(5)
        globalSplit = GlobalSplitCounts(train: int(6), validation: int(7), test: int(8))
        storedEdges = int(9)
        ownedOutEdges = int(10)
        sentDegreeHash = w[11]
        haloDegreeHash = w[12]
        storedOutEdgeHash = w[13]
        ownedOutDegreeHash = w[14]
    }

    // MARK: Verdict

    /// Checks the tallies of all parts (in rank order) of the partition directory `directory` against each other and
    /// against its manifest; throws `PartitionError` (kind `.inconsistentParts`) naming the first disagreement.
    /// Depends only on its arguments, so every rank that gathered the same tallies reaches the same verdict.
    public static func verify(_ tallies: [PartSetTally], manifest: PartitionManifest, directory: String) throws {
        let manifestPath = directory + "/" + PartitionStore.manifestFile
        func partPath(_ r: Int) -> String { directory + "/" + PartitionStore.partDirectoryName(r) }
        func perPart(_ value: (PartSetTally) -> Int) -> String {
            tallies.map { "\(PartitionStore.partDirectoryName($0.rank)): \(value($0))" }.joined(separator: ", ")
        }
        guard tallies.count == manifest.parts, tallies.enumerated().allSatisfy({ $0.offset == $0.element.rank }) else {
            throw PartitionError(.inconsistentParts, file: manifestPath, field: "parts gathered",
                                 found: "ranks \(tallies.map(\.rank))", expected: "one per part, ranks 0..<\(manifest.parts)")
        }
        let n = manifest.dataset.nodes

        // Ownership: every node owned exactly once.
        let owned = tallies.reduce(0) { $0 + $1.innerCount }
        if owned != n {
            throw PartitionError(.inconsistentParts, file: manifestPath, field: "owned (inner) nodes over all parts",
                                 found: "\(owned) (\(perPart(\.innerCount)))", expected: "\(n), every node owned by exactly one part (`dataset.nodes`)")
        }
        let ownedHash = tallies.reduce(UInt64(0)) { $0 &+ $1.ownedIDHash }
        let everyNodeHash = (0..<UInt64(n)).reduce(UInt64(0)) { $0 &+ mix($1) }
        if ownedHash != everyNodeHash {
            throw PartitionError(.inconsistentParts, file: manifestPath, field: "owned (inner) node ids over all parts",
                                 found: "a node owned by two parts (and another by none): the ids' hash sum is \(XXHash64.hex(ownedHash))",
                                 expected: "each of 0..<\(n) owned by exactly one part (hash sum \(XXHash64.hex(everyNodeHash)))")
        }

        // Split totals: every part records the same global sizes, and the masks add up to them.
        let global = tallies[0].globalSplit
        if let other = tallies.first(where: { $0.globalSplit != global }) {
            throw PartitionError(.inconsistentParts, file: partPath(other.rank) + "/meta.json", field: "`global_split_sizes`",
                                 found: "train \(other.globalSplit.train), val \(other.globalSplit.validation), test \(other.globalSplit.test)",
                                 expected: "train \(global.train), val \(global.validation), test \(global.test), as part-0 records")
        }
        let masks: [(String, Int, (PartSetTally) -> Int)] = [
            ("train", global.train, \.train), ("val", global.validation, \.validation), ("test", global.test, \.test),
        ]
        for (name, expected, count) in masks {
            let total = tallies.reduce(0) { $0 + count($1) }
            if total != expected {
                throw PartitionError(.inconsistentParts, file: manifestPath, field: "\(name)_mask.u8 over all parts",
                                     found: "\(total) nodes (\(perPart(count)))",
                                     expected: "\(expected), `global_split_sizes.\(name)` in every part's meta.json")
            }
        }

        // Degrees: the owners' out-degrees add up to the graph's edges, and halo nodes carry their owners' degrees.
        let edges = manifest.dataset.directedEdges
        let stored = tallies.reduce(0) { $0 + $1.storedEdges }
        if stored != edges {
            throw PartitionError(.inconsistentParts, file: manifestPath, field: "in-edges stored over all parts",
                                 found: "\(stored) (\(perPart(\.storedEdges)))", expected: "\(edges), `dataset.directed_edges`")
        }
        let outEdges = tallies.reduce(0) { $0 &+ $1.ownedOutEdges }
        if outEdges != edges {
            throw PartitionError(.inconsistentParts, file: manifestPath, field: "out_degrees.i32 of owned nodes over all parts",
                                 found: "\(outEdges) out-edges (\(perPart(\.ownedOutEdges)))",
                                 expected: "\(edges), `dataset.directed_edges`: each edge leaves exactly one owned node")
        }
        let storedOut = tallies.reduce(UInt64(0)) { $0 &+ $1.storedOutEdgeHash }
        let declaredOut = tallies.reduce(UInt64(0)) { $0 &+ $1.ownedOutDegreeHash }
        if storedOut != declaredOut {
            throw PartitionError(.inconsistentParts, file: manifestPath, field: "out_degrees.i32 of owned nodes over all parts",
                                 found: "out-degrees whose hash sum is \(XXHash64.hex(declaredOut))",
                                 expected: "\(XXHash64.hex(storedOut)), that of the edges in_indices.i32 stores from each node: "
                                     + "some owned node's out-degree differs from the number of edges leaving it (plus its self loop)")
        }
        let sent = tallies.reduce(UInt64(0)) { $0 &+ $1.sentDegreeHash }
        let received = tallies.reduce(UInt64(0)) { $0 &+ $1.haloDegreeHash }
        if sent != received {
            throw PartitionError(.inconsistentParts, file: manifestPath, field: "halo nodes' ids and degrees over all parts",
                                 found: "hash sum \(XXHash64.hex(received)) over the halo nodes",
                                 expected: "\(XXHash64.hex(sent)), that of the rows their owners send: some halo node's in_degrees/out_degrees "
                                     + "differ from its owner's, or some part's send lists do not match the halo blocks of its peers")
        }
    }
}
