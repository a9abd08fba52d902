import Foundation
import HaloAssignment
import HaloNN
import HaloPartition
import HaloQuantization
import HaloTransport

/// AdaQP's adaptive bit-width assignment (`algorithms.md` §5).
///
/// - The first cycle sends every row at 8 bits while each sender traces, per row u of each message,
///   `T_u += (D/6)·(hi_u − lo_u)²`.
/// - At each cycle boundary every sender weighs its rows `w_u = α_u² T_u` (α: the aggregation score on the side
///   that aggregates the row), sorts and groups them, and shares the group summaries with all ranks. Every rank
///   then solves the same problem per (layer, direction) with `AssignmentSolver` — the same inputs and a
///   deterministic solver give the same answer everywhere, with no root rank and no broadcast of decisions —
///   and each sender expands its groups' widths to its rows. Receivers read the widths from the message headers.
/// - Link costs are measured once, at start-up, through the transport (`LinkProbe`).
public final class AdaptivePrecision: PrecisionPolicy {
    private let transport: any Transport
    private let settings: QuantizationSettings
    /// Measured at start-up; a resumed run takes back the model it decided with, so its cycles stay comparable.
    private var links: LinkCostModel
    /// α of the rows this rank sends, per direction, per peer, in message order.
    private let sentScores: [MessageDirection: [[Float]]]
    private var sites: [MessageSite: SiteState] = [:]
    /// What each re-assignment decided, for the report.
    public private(set) var cycles: [AssignmentCycleReport] = []
    /// Seconds spent measuring links at start-up.
    public let probeSeconds: Double
    /// The widest row any site of this model sends (features, hidden width, classes): a restored site's width
    /// above it is forged, and would overflow the solver's byte counts.
    private let widestMessage: Int

    private struct SiteState {
        var width: Int
        var sent: [BitAssignment]
        /// Per peer, per sent row: the traced variance T_u of the current cycle.
        var trace: [[Double]]
    }

    /// Measures links and exchanges aggregation scores: collective, all ranks call it together.
    public init(part: Part, transport: any Transport, configuration: TrainingConfiguration) throws {
        self.transport = transport
        settings = configuration.quantization
        let scores = AggregationScores(part: part, aggregation: configuration.model.kind.aggregation)
        // Backward rows are our halo rows' gradients, scored here; forward rows are scored by the receiver, which
        // sends the scores of its halo block from us back to us (in our send order).
        let backward = part.haloRanges.map { Array(scores.backward[$0]) }
        let outgoing = part.haloRanges.map { range in Self.bytes(Array(scores.forward[range])) }
        let incoming = try transport.allToAll(outgoing)
        let forward = incoming.enumerated().map { peer, bytes in
            peer == part.rank ? [] : Self.floats(bytes)
        }
        for p in 0..<part.partCount where p != part.rank && forward[p].count != part.sendLists[p].count {
            throw TransportError.invalidArgument("rank \(p) scored \(forward[p].count) rows, we send it \(part.sendLists[p].count)")
        }
        sentScores = [.forward: forward, .backward: backward]
        widestMessage = max(part.featureWidth, configuration.model.hiddenWidth, part.classCount, 1)
        let watch = Stopwatch()
        links = try LinkProbe.measure(transport)
        probeSeconds = watch.elapsed
    }

    public func bits(_ site: MessageSite, to peer: Int) -> BitAssignment {
        sites[site]?.sent[peer] ?? .uniform(.eight)
    }

    public func didEncode(_ site: MessageSite, to peer: Int, ranges: [Float], width: Int) {
        let p = transport.worldSize
        if sites[site] == nil {
            let counts = sentScores[site.direction]!.map(\.count)
            sites[site] = SiteState(width: width, sent: Array(repeating: .uniform(.eight), count: p),
                                    trace: counts.map { [Double](repeating: 0, count: $0) })
        }
        let scale = Double(width) / 6
        sites[site]!.trace[peer].withUnsafeMutableBufferPointer { t in
            for (i, r) in ranges.enumerated() where r.isFinite { t[i] += scale * Double(r) * Double(r) }
        }
    }

    public func beginEpoch(_ epoch: Int) throws {
        guard epoch > 0, epoch % max(1, settings.assignCycle) == 0, transport.worldSize > 1 else { return }
        try reassign(epoch: epoch)
    }

    /// One re-assignment: collective.
    private func reassign(epoch: Int) throws {
        let p = transport.worldSize, rank = transport.rank
        let order = sites.keys.sorted()
        // 1. Group this rank's outgoing rows of every site and share the groups' summaries with everyone.
        var groupings: [MessageSite: [RowGrouping?]] = [:]
        var summary = ByteWriter()
        for site in order {
            let state = sites[site]!
            let scores = sentScores[site.direction]!
            var perPeer: [RowGrouping?] = Array(repeating: nil, count: p)
            for peer in 0..<p where peer != rank {
                let weights = zip(scores[peer], state.trace[peer]).map { Double($0) * Double($0) * $1 }
                let grouping = RowGrouping(weights: weights, groupSize: settings.groupSize)
                perPeer[peer] = grouping
                summary.append(grouping.groups.count)
                for g in grouping.groups { summary.append(g.weight); summary.append(g.rows) }
            }
            groupings[site] = perPeer
        }
        let everyone = try transport.allToAll(Array(repeating: summary.bytes, count: p))
        var readers = everyone.map { ByteReader($0) }
        var groups: [MessageSite: [[[AssignmentGroup]]]] = [:]   // site → source → destination → groups
        for site in order {
            var table = [[[AssignmentGroup]]](repeating: Array(repeating: [], count: p), count: p)
            for source in 0..<p {
                for destination in 0..<p where destination != source {
                    let n: Int = try readers[source].read()
                    table[source][destination] = try (0..<n).map { _ in
                        AssignmentGroup(weight: try readers[source].read(), rows: try readers[source].read())
                    }
                }
            }
            groups[site] = table
        }

        // 2. Every rank solves every site's problem (same inputs, deterministic solver: same solution).
        var report = AssignmentCycleReport(epoch: epoch)
        for site in order {
            let watch = Stopwatch()
            let problem = AssignmentProblem(width: sites[site]!.width, lambda: settings.lambda, links: links) { s, d in
                groups[site]![s][d]
            }
            let solution = AssignmentSolver.solve(problem)
            report.solveSeconds += watch.elapsed
            var histogram: [String: Int] = [:]
            for (c, channel) in problem.channels.enumerated() {
                for (g, bits) in zip(channel.groups, solution.bits[c]) { histogram[String(bits.rawValue), default: 0] += g.rows }
                guard channel.source == rank, let grouping = groupings[site]![channel.destination] else { continue }
                let widths = grouping.rowBits(solution.bits[c])
                sites[site]!.sent[channel.destination] = .perRow(widths)
            }
            report.sites.append(.init(site: site, rowsByBits: histogram, objective: solution.objective,
                                      variance: solution.variance, modelledTime: solution.time))
        }

        for site in order {
            for peer in 0..<p { sites[site]!.trace[peer].withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        }
        cycles.append(report)
    }

    public func contribute(to report: inout TrainingReport) {
        report.assignmentCycles = cycles
        report.linkProbeSeconds = probeSeconds
    }

    /// Traced variances, current widths, the cycles so far and the link model: everything the next cycle uses.
    public func saveState(into writer: inout ByteWriter) throws {
        writer.append(elements: Array(try Self.json(links)))
        writer.append(elements: Array(try Self.json(cycles)))
        let order = sites.keys.sorted()
        writer.append(order.count)
        for site in order {
            let state = sites[site]!
            site.write(to: &writer)
            writer.append(state.width)
            writer.append(state.sent.count)
            for assignment in state.sent { assignment.write(to: &writer) }
            writer.append(state.trace.count)
            for trace in state.trace { writer.append(elements: trace) }
        }
    }

    public func restoreState(from reader: inout ByteReader) throws {
        let saved = try Self.decode(LinkCostModel.self, reader.readElements(of: UInt8.self))
        guard saved.worldSize == transport.worldSize else {
            throw CheckpointStateError("link model of \(saved.worldSize) ranks (this run has \(transport.worldSize))")
        }
        links = saved
        cycles = try Self.decode([AssignmentCycleReport].self, reader.readElements(of: UInt8.self))
        sites = [:]
        let count: Int = try reader.read()
        for _ in 0..<max(count, 0) {
            let site = try MessageSite(from: &reader)
            let width: Int = try reader.read()
            let peers: Int = try reader.read()
            guard peers == transport.worldSize else { throw CheckpointStateError("\(peers) peers at \(site)") }
            let sent = try (0..<peers).map { _ in try BitAssignment(from: &reader) }
            let traced: Int = try reader.read()
            let expected = sentScores[site.direction]!.map(\.count)
            guard traced == peers else { throw CheckpointStateError("\(traced) traces at \(site)") }
            let trace = try (0..<traced).map { _ in try reader.readElements(of: Double.self) }
            guard trace.map(\.count) == expected else { throw CheckpointStateError("traced rows at \(site)") }
            // What the solver and the encoder take on trust: traces are sums of squares, widths are the message's.
            guard trace.allSatisfy({ $0.allSatisfy { $0.isFinite && $0 >= 0 } }) else {
                throw CheckpointStateError("traced variance that is negative or not finite at \(site)")
            }
            guard width >= 1 && width <= widestMessage else {
                throw CheckpointStateError("row width \(width) at \(site) (this model's rows are 1 ... \(widestMessage) wide)")
            }
            for (peer, assignment) in sent.enumerated() {
                if case .perRow(let widths) = assignment, widths.count != expected[peer] {
                    throw CheckpointStateError("\(widths.count) row widths for the \(expected[peer]) rows sent to rank \(peer) at \(site)")
                }
            }
            sites[site] = SiteState(width: width, sent: sent, trace: trace)
        }
    }

    private static func json<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(value)
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw CheckpointStateError("\(type) record")
        }
    }

    static func bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
    static func floats(_ bytes: [UInt8]) -> [Float] {
        bytes.withUnsafeBytes { raw in (0..<(bytes.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }
}
