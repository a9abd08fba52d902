import Foundation
import HaloGraph
import HaloNN
import HaloPartition
import HaloQuantization
import HaloTensor
@testable import HaloTraining
import HaloTransport
import HaloTransportTesting
import XCTest

/// PipeGCN and PipeQS on ranks as threads, with channel deliveries scripted so that every late-message path runs
/// deterministically.
final class PipelineTrainingTests: XCTestCase {
    private static let data = try! SyntheticGraphSpec(
        parsing: "synthetic:nodes=900,classes=4,features=16,degree=8,signal=1,seed=4").generate()

    private func configuration(
        _ method: TrainingMethod, kind: ModelConfiguration.Kind = .gcn, epochs: Int = 10,
        pipeline: PipelineSettings = PipelineSettings(), precompute: Bool = false
    ) -> TrainingConfiguration {
        TrainingConfiguration(
            dataset: "test", model: ModelConfiguration(kind: kind, layers: 3, hiddenWidth: 24, dropout: 0.5),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: epochs, seed: 5, method: method,
            quantization: QuantizationSettings(precomputeFirstLayer: precompute), pipeline: pipeline)
    }

    private func parts(_ count: Int) throws -> [Part] {
        let partitioning = try Partitioner.partition(graph: Self.data.graph, parts: count, method: .metis, seed: 1)
        return Part.build(dataset: Self.data, partitioning: partitioning)
    }

    private func environment(ranks: Int) -> RunEnvironment {
        RunEnvironment(ranks: ranks, threadsPerRank: 1, blasCore: "", hostCores: 1, nodes: Self.data.nodeCount,
                       edges: Self.data.graph.edgeCount, featureWidth: Self.data.featureWidth, classes: Self.data.classCount)
    }

    /// Trains on scripted ranks; also returns how many channel messages each rank left undelivered.
    private func scripted(
        _ config: TrainingConfiguration, parts count: Int, rule: DeliveryRule,
        makeExchange: @escaping @Sendable (Part, any Transport, TrainingConfiguration) throws -> any HaloExchange = ExchangeFactory.make
    ) throws -> [(report: TrainingReport, undelivered: Int)] {
        let built = try parts(count)
        let env = environment(ranks: count)
        return try ScriptedTransport.run(worldSize: count, rule: rule) { t in
            let report = try RankTraining.run(part: built[t.rank], transport: t, configuration: config, environment: env,
                                              pool: .serial, makeExchange: makeExchange)
            return (report, t.undeliveredCount)
        }
    }

    // MARK: PipeGCN

    func testPipeGCNEqualsAReferenceThatFeedsThePreviousEpochsHalo() throws {
        for warmup in PipelineSettings.Warmup.allCases {
            for count in 1...4 {
                let config = configuration(.pipegcn, epochs: 8, pipeline: PipelineSettings(warmup: warmup))
                let pipelined = try scripted(config, parts: count, rule: .late(by: 1))
                let reference = try scripted(config, parts: count, rule: .immediate) { part, transport, _ in
                    DelayedReferenceExchange(part: part, transport: transport, warmup: warmup)
                }
                for (rank, (run, ref)) in zip(pipelined, reference).enumerated() {
                    XCTAssertEqual(run.undelivered, 0, "\(warmup) P=\(count) rank \(rank): messages left in flight")
                    for (a, b) in zip(ref.report.epochs, run.report.epochs) {
                        XCTAssertEqual(b.loss, a.loss, accuracy: 1e-4 * max(1, abs(a.loss)),
                                       "\(warmup) P=\(count) rank \(rank) epoch \(a.epoch)")
                    }
                }
                if count > 1 {
                    // Every block used after the first epoch is exactly one epoch old.
                    let later = pipelined[0].report.epochs.dropFirst().compactMap(\.pipeline).flatMap { $0 }
                    XCTAssertFalse(later.isEmpty)
                    for site in later {
                        XCTAssertEqual(site.blockAges.reduce(0, +), site.blockAges[1], "\(warmup): \(site)")
                    }
                    let first = try XCTUnwrap(pipelined[0].report.epochs[0].pipeline)
                    XCTAssertEqual(first.reduce(0) { $0 + $1.zeroBlocks } > 0, warmup == .zeros)
                }
            }
        }
    }

    func testPipeGCNDiffersFromVanillaButLearns() throws {
        let vanilla = try scripted(configuration(.vanilla, epochs: 30), parts: 3, rule: .immediate)[0].report
        let pipelined = try scripted(configuration(.pipegcn, epochs: 30), parts: 3, rule: .immediate)[0].report
        XCTAssertNotEqual(pipelined.epochs[5].loss, vanilla.epochs[5].loss, "stale halos must change the run")
        XCTAssertGreaterThan(try XCTUnwrap(pipelined.testAccuracyAtBestValidation),
                             try XCTUnwrap(vanilla.testAccuracyAtBestValidation) - 0.05)
    }

    func testSmoothingChangesTheRunAndStillLearns() throws {
        let plain = try scripted(configuration(.pipegcn, epochs: 30), parts: 2, rule: .immediate)[0].report
        let smoothed = try scripted(configuration(.pipegcn, epochs: 30, pipeline: PipelineSettings(smoothing: 0.9)),
                                    parts: 2, rule: .immediate)[0].report
        XCTAssertNotEqual(plain.epochs[4].loss, smoothed.epochs[4].loss)
        XCTAssertGreaterThan(try XCTUnwrap(smoothed.testAccuracyAtBestValidation), 0.6)
    }

    func testPipelinedMethodsTrainEveryModelWithAndWithoutPrecomputedFirstLayer() throws {
        for method in [TrainingMethod.pipegcn, .pipeqs] {
            for kind in [ModelConfiguration.Kind.gcn, .sage] {
                for precompute in [false, true] {
                    let runs = try scripted(configuration(method, kind: kind, epochs: 40, precompute: precompute),
                                            parts: 4, rule: .late(by: 1))
                    let label = "\(method) \(kind) precompute \(precompute)"
                    for run in runs {
                        XCTAssertEqual(run.report.epochs.map(\.loss), runs[0].report.epochs.map(\.loss), "\(label): ranks disagree")
                        XCTAssertEqual(run.undelivered, 0, label)
                    }
                    XCTAssertGreaterThan(try XCTUnwrap(runs[0].report.testAccuracyAtBestValidation), 0.7, label)
                }
            }
        }
    }

    // MARK: PipeQS

    func testAnAlwaysLateLinkIsBypassedUpToTheCapThenWaitedFor() throws {
        for cap in [1, 2, 3] {
            let settings = PipelineSettings(maxStaleness: cap, driftThreshold: 10, adaptiveBits: false)
            let runs = try scripted(configuration(.pipeqs, epochs: 12, pipeline: settings), parts: 3, rule: .onlyWhenWaitedFor)
            let sites = runs[0].report.epochs.compactMap(\.pipeline).flatMap { $0 }
            let ages = sites.reduce(into: [Int](repeating: 0, count: cap + 2)) { total, site in
                for (a, n) in site.blockAges.enumerated() { total[a] += n }
            }
            XCTAssertEqual(ages[cap + 1], 0, "cap \(cap): a block older than the cap was used: \(ages)")
            XCTAssertGreaterThan(ages[cap], 0, "cap \(cap): blocks reach the cap before the rank waits: \(ages)")
            let bypasses = sites.reduce(0) { $0 + $1.bypasses }, waits = sites.reduce(0) { $0 + $1.waits }
            XCTAssertGreaterThan(waits, 0, "cap \(cap)")
            if cap > 1 { XCTAssertGreaterThan(bypasses, 0, "cap \(cap)") }
            for run in runs { XCTAssertEqual(run.undelivered, 0, "cap \(cap)") }
            XCTAssertTrue(runs[0].report.epochs.allSatisfy { $0.loss.isFinite })
        }
    }

    func testWithoutBypassNoBlockIsOlderThanOneEpoch() throws {
        let settings = PipelineSettings(maxStaleness: 4, bypass: false)
        let runs = try scripted(configuration(.pipeqs, epochs: 10, pipeline: settings), parts: 3, rule: .onlyWhenWaitedFor)
        let sites = runs[0].report.epochs.compactMap(\.pipeline).flatMap { $0 }
        XCTAssertEqual(sites.reduce(0) { $0 + $1.bypasses }, 0)
        XCTAssertEqual(sites.reduce(0) { $0 + $1.blockAges.dropFirst(2).reduce(0, +) }, 0,
                       "\(runs[0].report.epochs.map { $0.pipeline!.map(\.blockAges) })")
    }

    func testScriptedPipeQSRunIsReproducible() throws {
        let config = configuration(.pipeqs, epochs: 10)
        // Deliveries decided by stamps and clocks alone (a message sent in epoch e is seen from epoch e + 1, every
        // third one from e + 3), which every rank has reached in step: the all-reduce ends each epoch.
        let rule = DeliveryRule { $0.clock >= $0.stamp + ($0.stamp % 3 == 0 ? 3 : 1) }
        let a = try scripted(config, parts: 3, rule: rule)[0].report
        let b = try scripted(config, parts: 3, rule: rule)[0].report
        XCTAssertGreaterThan(a.epochs.compactMap(\.pipeline).flatMap { $0 }.reduce(0) { $0 + $1.bypasses }, 0)
        XCTAssertEqual(a.epochs.map(\.loss), b.epochs.map(\.loss))
        // Decisions, not timings.
        func decisions(_ r: TrainingReport) -> [[String]] {
            r.epochs.map { $0.pipeline!.map {
                "\($0.blockAges) \($0.bypasses) \($0.waits) \($0.messagesByBits.sorted { $0.key < $1.key }) \($0.skippedSends)"
            } }
        }
        XCTAssertEqual(decisions(a), decisions(b))
    }

    /// Two ranks driving a `PipelinedExchange` by hand, each owning one row that is the other's halo row.
    private func twoRankExchange(
        _ settings: PipelineSettings, rule: DeliveryRule, epochs: Int, crossesNetwork: Bool = false,
        _ body: @escaping @Sendable (PipelinedExchange, Int) throws -> [Float]
    ) throws -> [[Float]] {
        // One boundary row of width 2 each way: rank 0's inner row 0 is rank 1's halo row and vice versa.
        try ScriptedTransport.run(worldSize: 2, rule: rule, crossesNetwork: crossesNetwork) { t in
            let other = 1 - t.rank
            var sendLists: [[Int32]] = [[], []]
            sendLists[other] = [0]
            var haloRanges = [0..<0, 0..<0]
            haloRanges[other] = 0..<1
            let plan = HaloExchangePlan(rank: t.rank, worldSize: 2, innerCount: 1, sendLists: sendLists, haloRanges: haloRanges)
            let messenger = HaloMessenger(plan: plan, transport: t, innerNodeIDs: [Int32(t.rank)], haloNodeIDs: [Int32(other)])
            let exchange = PipelinedExchange(
                messenger: messenger, precision: PipeQSPrecision(settings: settings),
                consumption: .newestWithin(StalenessRule(maxStaleness: settings.maxStaleness, bypass: settings.bypass)),
                settings: settings, measuresDrift: true)
            var out: [Float] = []
            for epoch in 0..<epochs { out += try body(exchange, epoch) }
            try exchange.finish()
            return out
        }
    }

    func testBypassedBackwardLinksApplyTheirCachedGradients() throws {
        for mode in PipelineSettings.BypassedGradients.allCases {
            let settings = PipelineSettings(maxStaleness: 3, driftThreshold: 10, adaptiveBits: false, initialBits: .full,
                                            bypassedGradients: mode)
            let results = try twoRankExchange(settings, rule: .onlyWhenWaitedFor, epochs: 3) { exchange, epoch in
                // Each epoch's halo gradient is (epoch + 1) · (10, 20); the local part of the inner gradient is 1.
                let g = Float(epoch + 1)
                var inner = Matrix(rows: 1, cols: 2)
                let context = StepContext(epoch: epoch, training: true, random: CounterRandom(seed: 1), pool: .serial)
                try exchange.exchangeBackward(LayerIndex(1), haloGradient: Matrix([[10 * g, 20 * g]]),
                                              innerGradient: &inner, context: context) { local in
                    local = Matrix([[1, 1]])
                }
                return inner.storage
            }
            // Epoch 0 waits for epoch 0's gradient. Epoch 1 reuses it at age 1 (every pipeline's normal staleness);
            // epoch 2 bypasses the late link with it at age 2, which `.dropped` leaves out.
            let cached: [Float] = [11, 21, 11, 21, 11, 21]
            let dropped: [Float] = [11, 21, 11, 21, 1, 1]
            XCTAssertEqual(Array(results[0]), mode == .cached ? cached : dropped, "\(mode)")
        }
    }

    /// Widths (as bits) of the messages one rank sent per epoch on a forward link whose rows are `rows(epoch)`;
    /// each epoch is reported to the exchange as `timing(epoch)` (by default 1 s of computing, no blocked time).
    private func sentWidths(_ settings: PipelineSettings, rule: DeliveryRule, epochs: Int, crossesNetwork: Bool = false,
                            timing: @escaping @Sendable (Int) -> EpochTiming = { _ in
                                EpochTiming(computeSeconds: 1, exposedCommunicationSeconds: 0)
                            },
                            rows: @escaping @Sendable (Int) -> [Float]) throws -> [[String: Int]] {
        let results = try twoRankExchange(settings, rule: rule, epochs: epochs, crossesNetwork: crossesNetwork) { exchange, epoch in
            var buffer = Matrix([rows(epoch), [0, 0]])
            let context = StepContext(epoch: epoch, training: true, random: CounterRandom(seed: 1), pool: .serial)
            try exchange.exchangeForward(LayerIndex(1), rows: &buffer, context: context) { _ in }
            let record = try exchange.endEpoch(epoch, timing: timing(epoch))?.first
            // Encode the histogram as [bits, count, …] floats so it crosses the helper's [Float] return.
            return (record?.messagesByBits ?? [:]).sorted { $0.key < $1.key }.flatMap { [Float(Int($0.key)!), Float($0.value)] } + [-1]
        }
        var perEpoch: [[String: Int]] = []
        var current: [String: Int] = [:]
        var values = results[0][...]
        while let v = values.popFirst() {
            if v == -1 { perEpoch.append(current); current = [:]; continue }
            current[String(Int(v))] = Int(values.popFirst()!)
        }
        return perEpoch
    }

    func testBitsRiseOnHighDrift() throws {
        // Rows that flip sign every epoch: drift (1 − cos)/2 = 1 each time.
        let settings = PipelineSettings(maxStaleness: 2, driftThreshold: 0.1, initialBits: .two)
        let widths = try sentWidths(settings, rule: .immediate, epochs: 5) { epoch in
            epoch % 2 == 0 ? [1, 2] : [-1, -2]
        }
        // Summed over both ranks: two messages per epoch.
        XCTAssertEqual(widths, [["2": 2], ["4": 2], ["8": 2], ["32": 2], ["32": 2]])
    }

    func testBitsFallWhenTransfersAreLate() throws {
        // Constant rows (no drift) over a link that delivers only when waited for: each send finds the previous
        // one still in flight.
        let settings = PipelineSettings(maxStaleness: 1, driftThreshold: 0.1, initialBits: .full)
        let widths = try sentWidths(settings, rule: .onlyWhenWaitedFor, epochs: 5) { _ in [1, 2] }
        let sent = widths.map { $0.keys.compactMap(Int.init).max() ?? 0 }
        XCTAssertEqual(sent.first, 32)
        XCTAssertEqual(sent.last, 2, "\(widths)")
        XCTAssertEqual(sent, sent.sorted(by: >), "widths only fall: \(widths)")
    }

    func testACommunicationBoundEpochLowersWidthsOverANetworkEvenOnHighDrift() throws {
        // Rows that flip sign every epoch (drift 1, far above E) on a link that always delivers at once. Epochs 0–2
        // report more blocked time than computing, epochs 3–5 less.
        let settings = PipelineSettings(maxStaleness: 2, driftThreshold: 0.1, initialBits: .full)
        let timing: @Sendable (Int) -> EpochTiming = { epoch in
            EpochTiming(computeSeconds: 1, exposedCommunicationSeconds: epoch < 3 ? 2 : 0.5)
        }
        let flipping: @Sendable (Int) -> [Float] = { epoch in epoch % 2 == 0 ? [1, 2] : [-1, -2] }
        let overNetwork = try sentWidths(settings, rule: .immediate, epochs: 7, crossesNetwork: true,
                                         timing: timing, rows: flipping)
        // Epoch 0 sends at the starting width; epochs 1–3 see a bound epoch before them and step down although the
        // rows drift; from epoch 4 on the drift steps them back up.
        XCTAssertEqual(overNetwork, [["32": 2], ["8": 2], ["4": 2], ["2": 2], ["4": 2], ["8": 2], ["32": 2]])
        // The same timings in memory (threads) change nothing: widths follow the drift alone.
        let inMemory = try sentWidths(settings, rule: .immediate, epochs: 3, timing: timing, rows: flipping)
        XCTAssertEqual(inMemory, [["32": 2], ["32": 2], ["32": 2]])
    }
}

/// Message headers, including the edge cases a pair of parts without a shared boundary produces.
final class MessageHeaderTests: XCTestCase {
    func testHeadersRoundTripForEveryWidthEncodingAndRowCount() throws {
        let cases: [MessageHeader] = [
            MessageHeader(rows: 0, bits: .uniform(.full)), MessageHeader(rows: 0, bits: .perRow([])),
            MessageHeader(rows: 3, bits: .uniform(.two), drift: 0.25),
            MessageHeader(rows: 5, bits: .perRow([.two, .four, .eight, .full, .two]), drift: 1),
        ]
        for header in cases {
            var bytes: [UInt8] = []
            header.write(to: &bytes)
            XCTAssertEqual(bytes.count, header.byteCount)
            let read = try bytes.withUnsafeBytes { try MessageHeader(reading: $0, expectedRows: header.rows) }
            XCTAssertEqual(read.rows, header.rows)
            XCTAssertEqual(read.bits, header.bits)
            XCTAssertEqual(read.drift.bitPattern, header.drift.bitPattern)
            XCTAssertThrowsError(try bytes.withUnsafeBytes { try MessageHeader(reading: $0, expectedRows: header.rows + 1) })
            XCTAssertThrowsError(try bytes.dropLast().withUnsafeBytes { try MessageHeader(reading: $0, expectedRows: header.rows) })
        }
    }

    func testRandomWidthsTrainWhenSomePartsShareNoBoundary() throws {
        // Contiguous ranges of a graph whose edges only join neighbouring ids: parts 0 and 2 share no boundary.
        let data = try SyntheticGraphSpec(parsing: "synthetic:nodes=300,classes=3,features=8,degree=4,seed=1").generate()
        let sources = (0..<299).flatMap { [Int32($0), Int32($0 + 1)] }
        let destinations = (0..<299).flatMap { [Int32($0 + 1), Int32($0)] }
        let chain = Dataset(name: "chain", graph: Graph(nodeCount: 300, sources: sources, destinations: destinations),
                            features: data.features, labels: data.labels, split: data.split)
        let partitioning = try Partitioner.partition(graph: chain.graph, parts: 3, method: .contiguous, seed: 1)
        let parts = Part.build(dataset: chain, partitioning: partitioning)
        XCTAssertTrue(parts[0].sendLists[2].isEmpty && parts[2].sendLists[0].isEmpty)
        let config = TrainingConfiguration(
            dataset: "chain", model: ModelConfiguration(kind: .gcn, layers: 2, hiddenWidth: 8, dropout: 0),
            optimizer: Adam.Hyperparameters(learningRate: 0.01), epochs: 3, seed: 1, method: .adaqp,
            quantization: QuantizationSettings(assignment: .random, assignCycle: 1))
        let env = RunEnvironment(ranks: 3, threadsPerRank: 1, blasCore: "", hostCores: 1, nodes: 300, edges: 598,
                                 featureWidth: 8, classes: 3)
        for method in [TrainingMethod.adaqp, .pipeqs] {
            var changed = config
            changed.method = method
            let c = changed
            let reports = try LocalTransport.run(worldSize: 3) { t in
                try RankTraining.run(part: parts[t.rank], transport: t, configuration: c, environment: env, pool: .serial)
            }
            XCTAssertTrue(reports[0].epochs.allSatisfy { $0.loss.isFinite }, "\(method)")
        }
    }
}

/// An independent reference for PipeGCN: a synchronous full-precision all-to-all every layer, whose received
/// rows and gradients are used one epoch later (zeros, or the epoch's own, in epoch 0).
final class DelayedReferenceExchange: HaloExchange {
    private let part: Part
    private let transport: any Transport
    private let warmup: PipelineSettings.Warmup
    private var previous: [String: [[Float]]] = [:]

    init(part: Part, transport: any Transport, warmup: PipelineSettings.Warmup) {
        self.part = part
        self.transport = transport
        self.warmup = warmup
    }

    private func floats(_ bytes: [UInt8]) -> [Float] {
        bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    private func bytes(_ m: Matrix, rows: [Int]) -> [UInt8] {
        var out: [Float] = []
        for r in rows { out += m.storage[(r * m.cols)..<((r + 1) * m.cols)] }
        return out.withUnsafeBytes { Array($0) }
    }

    /// This epoch's blocks, and the blocks to use now.
    private func exchange(_ key: String, _ messages: [[UInt8]], _ context: StepContext) throws -> [[Float]]? {
        let received = try transport.allToAll(messages).map(floats)
        guard context.training else { return received }
        defer { previous[key] = received }
        if context.epoch == 0 { return warmup == .sync ? received : nil }
        return previous[key]
    }

    func exchangeForward(_ layer: LayerIndex, rows: inout Matrix, context: StepContext, overlapping: (Matrix) -> Void) throws {
        let messages = (0..<part.partCount).map { p in p == part.rank ? [] : bytes(rows, rows: part.sendLists[p].map(Int.init)) }
        if let blocks = try exchange("f\(layer.rawValue)", messages, context) {
            for p in 0..<part.partCount where p != part.rank {
                let start = (part.innerCount + part.haloRanges[p].lowerBound) * rows.cols
                rows.storage.replaceSubrange(start..<(start + blocks[p].count), with: blocks[p])
            }
        }
        overlapping(rows)
    }

    func exchangeBackward(_ layer: LayerIndex, haloGradient: Matrix, innerGradient: inout Matrix, context: StepContext,
                          overlapping: (inout Matrix) -> Void) throws {
        let messages = (0..<part.partCount).map { p in p == part.rank ? [] : bytes(haloGradient, rows: Array(part.haloRanges[p])) }
        let blocks = try exchange("b\(layer.rawValue)", messages, context)
        overlapping(&innerGradient)
        guard let blocks else { return }
        let w = innerGradient.cols
        for p in 0..<part.partCount where p != part.rank {
            for (i, row) in part.sendLists[p].enumerated() {
                for j in 0..<w { innerGradient.storage[Int(row) * w + j] += blocks[p][i * w + j] }
            }
        }
    }

    func beginEpoch(_ epoch: Int) throws {}
    func takeStatistics() -> CommunicationStatistics { CommunicationStatistics() }
    func endEpoch(_ epoch: Int, timing: EpochTiming) throws -> [PipelineSiteRecord]? { nil }
    func finish() throws {}
    func contribute(to report: inout TrainingReport) {}
    // The reference is never checkpointed: its cache is a test's, not a run's.
    func saveState(into writer: inout ByteWriter) throws { throw TransportError.invalidArgument("not checkpointed") }
    func restoreState(from reader: inout ByteReader, epochsDone: Int) throws { throw TransportError.invalidArgument("not checkpointed") }
    func tally(into tally: inout MemoryTally) {}
}
