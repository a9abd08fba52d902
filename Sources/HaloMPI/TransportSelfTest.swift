import Foundation
import HaloTransport

/// A collective self-test of any `Transport`: every rank calls the same function; each checks what it received
/// against data it can compute itself (everything depends only on sender, receiver, round and position), and
/// returns a one-line summary or throws `TransportError.invalidArgument` describing the first mismatch.
///
/// Used by the hidden `halo transport-selftest` command under `mpirun` and directly on the in-process transport.
public enum TransportSelfTest {
    /// The multi-megabyte message of round 1 (from each rank to the next).
    static let largeMessageBytes = (3 << 20) + 12_345
    static let reduceCount = 100_003
    static let broadcastBytes = 1_000_003
    /// The largest piece size `runChunkingCheck` accepts (its data grows with it).
    public static let maxCheckedChunkBytes = 1 << 20
    /// Channel check: messages per (sender, receiver, channel), and the multi-megabyte one among them.
    static let channelMessages = 6
    static let largeChannelMessageBytes = (3 << 20) + 777
    /// The two channels the check uses, and one it never sends on.
    static let checkedChannels = [ChannelID(7), ChannelID(300)]
    static let unusedChannel = ChannelID(ChannelID.limit - 1)
    /// How long a check waits for something that should arrive before it reports a failure instead of hanging.
    static let arrivalTimeout: TimeInterval = 120

    /// Exercises every operation: all-to-alls with per-pair sizes (including empty messages and a multi-MB one),
    /// several in flight at once (all started before any is waited for, waited in reverse order; two of them
    /// polled per peer first), a blocking all-to-all, all-reduce of `Float` and `Double`, broadcast from the last
    /// rank (non-zero when P > 1) and an empty broadcast, barrier, and channel messages (`checkChannels`).
    public static func run(_ transport: any Transport) throws -> String {
        let started = Date()
        let rank = transport.rank
        let size = transport.worldSize
        var stats = AllToAllStats()

        // Several all-to-alls in flight at once.
        let inFlight = 4
        var pending: [any PendingAllToAll] = []
        for round in 0..<inFlight {
            let messages = (0..<size).map { peer in
                message(from: rank, to: peer, round: round, length: length(from: rank, to: peer, round: round, size))
            }
            stats.add(sent: messages)
            pending.append(try transport.startAllToAll(messages))
        }
        // Per-peer polling of two of them (round 1 holds the multi-MB messages): each message must show up
        // without `wait`, and be the one `wait` returns.
        let polledRounds = [1, 0]
        var polled: [Int: [[UInt8]]] = [:]
        for round in polledRounds {
            polled[round] = try pollAll(pending[round], rank: rank, size: size, what: "all-to-all round \(round)")
        }
        for round in (0..<inFlight).reversed() {
            let received = try pending[round].wait()
            try check(received, round: round, rank: rank, size: size) { from, round in
                length(from: from, to: rank, round: round, size)
            }
            if let messages = polled[round] {
                for peer in 0..<size {
                    try expect(messages[peer] == received[peer],
                               "all-to-all round \(round): poll(peer: \(peer)) differs from wait(): "
                                   + firstDifference(messages[peer], received[peer]))
                }
            }
            stats.add(received: received)
        }
        // A blocking one.
        let blockingRound = inFlight
        let messages = (0..<size).map { peer in
            message(from: rank, to: peer, round: blockingRound,
                    length: length(from: rank, to: peer, round: blockingRound, size))
        }
        stats.add(sent: messages)
        let received = try transport.allToAll(messages)
        try check(received, round: blockingRound, rank: rank, size: size) { from, round in
            length(from: from, to: rank, round: round, size)
        }
        stats.add(received: received)

        try checkAllReduce(transport, count: reduceCount)

        // Broadcast from the last rank; the others start with arrays of different lengths.
        let root = size - 1
        let rootBytes = message(from: root, to: 255, round: 99, length: broadcastBytes)
        var bytes = rank == root ? rootBytes : [UInt8](repeating: UInt8(truncatingIfNeeded: rank), count: 3 * rank + 1)
        try transport.broadcast(&bytes, root: root)
        try expect(bytes == rootBytes, "broadcast from root \(root): " + firstDifference(bytes, rootBytes))
        // An empty broadcast from rank 0 empties everyone's bytes.
        var empty: [UInt8] = rank == 0 ? [] : [1, 2, 3]
        try transport.broadcast(&empty, root: 0)
        try expect(empty.isEmpty, "empty broadcast from root 0 left \(empty.count) bytes on rank \(rank)")

        try transport.barrier()

        let channels = try checkChannels(transport)

        // The transport still works after everything above.
        let lastRound = blockingRound + 1
        let last = (0..<size).map { peer in
            message(from: rank, to: peer, round: lastRound, length: length(from: rank, to: peer, round: lastRound, size))
        }
        stats.add(sent: last)
        let lastReceived = try transport.allToAll(last)
        try check(lastReceived, round: lastRound, rank: rank, size: size) { from, round in
            length(from: from, to: rank, round: round, size)
        }
        stats.add(received: lastReceived)

        try checkReleasesFinishedOperations(transport)

        let milliseconds = Int((Date().timeIntervalSince(started) * 1000).rounded())
        return "ok rank \(rank)/\(size): \(lastRound + 1) all-to-alls (\(inFlight) in flight at once, "
            + "\(stats.sentBytes) B sent, \(stats.receivedBytes) B received, largest \(stats.largest) B, "
            + "\(stats.empty) empty), allReduce float+double \(reduceCount) elements (bit-identical on all ranks), "
            + "broadcast \(broadcastBytes) B from root \(root) + empty, barrier, poll of \(polledRounds.count) "
            + "all-to-alls per peer; \(channels); \(milliseconds) ms"
    }

    /// A finished all-to-all, once its caller lets go of it, is let go by the transport too, with the messages it
    /// holds: an engine that kept finished operations (it compacted its queue only past 64) grew every rank by its
    /// received messages per exchange, 0.7 GB per epoch at 1M nodes, until the kernel killed one.
    static func checkReleasesFinishedOperations(_ transport: any Transport) throws {
        weak var released: AnyObject?
        do {
            let pending = try transport.startAllToAll((0..<transport.worldSize).map { _ in [UInt8](repeating: 7, count: 1 << 16) })
            released = pending
            _ = try pending.wait()
        }
        // The communication thread may still be finishing its pass over the operation: give it a moment, without
        // submitting anything else (later operations could flush it out and hide the fault), then agree.
        for _ in 0..<200 where released != nil { Thread.sleep(forTimeInterval: 0.01) }
        var held = [released == nil ? 0.0 : 1.0]
        try transport.allReduceSum(&held)
        try expect(held[0] == 0, "a finished all-to-all is still held by the transport after its caller let go "
                   + "(on \(Int(held[0])) ranks)")
    }

    /// Polls every peer's message of `pending` until all have arrived (the message to oneself at once), without
    /// `wait`. Returns them by sender.
    static func pollAll(_ pending: any PendingAllToAll, rank: Int, size: Int, what: String) throws -> [[UInt8]] {
        guard let own = try pending.poll(peer: rank) else {
            throw TransportError.invalidArgument("transport self-test: \(what): poll of the message to oneself is nil")
        }
        var messages = [[UInt8]?](repeating: nil, count: size)
        messages[rank] = own
        let deadline = Date(timeIntervalSinceNow: arrivalTimeout)
        while messages.contains(where: { $0 == nil }) {
            for peer in 0..<size where messages[peer] == nil {
                messages[peer] = try pending.poll(peer: peer)
            }
            guard messages.contains(where: { $0 == nil }) else { break }
            guard Date() < deadline else {
                let missing = (0..<size).filter { messages[$0] == nil }
                throw TransportError.invalidArgument(
                    "transport self-test: \(what): poll still nil for ranks \(missing) after \(Int(arrivalTimeout)) s")
            }
            Thread.sleep(forTimeInterval: 50e-6)
        }
        return messages.map { $0! }
    }

    /// Channels (P > 1): every rank sends `channelMessages` stamped messages to every peer on each of two
    /// channels (one empty, one of several MB, the rest 1…3000 bytes; stamps negative to beyond 32 bits), while
    /// all-to-alls are in flight and with an all-reduce between the sends. The first channel is drained with
    /// `takeArrived` loops, the second with `waitForMessages`; every message must arrive once, in order, with its
    /// stamp and bytes. A channel nobody sends on, and both channels once drained, must give nothing.
    static func checkChannels(_ transport: any Transport) throws -> String {
        let rank = transport.rank
        let size = transport.worldSize
        guard size > 1 else { return "channels: none (one rank)" }
        let peers = (0..<size).filter { $0 != rank }
        for peer in peers {
            let early = try transport.takeArrived(from: peer, on: unusedChannel, clock: 0)
            try expect(early.isEmpty, "takeArrived on an unused channel from rank \(peer) gave \(early.count) messages")
        }

        // Collectives in flight while the channel messages go out and come in.
        let collectiveRounds = [60, 61]
        func collectiveMessages(_ round: Int) -> [[UInt8]] {
            (0..<size).map { peer in
                message(from: rank, to: peer, round: round, length: length(from: rank, to: peer, round: round, size))
            }
        }
        var collectives: [any PendingAllToAll] = [try transport.startAllToAll(collectiveMessages(collectiveRounds[0]))]
        var sends: [any PendingSend] = []
        var sentBytes = 0
        var largest = 0
        for index in 0..<channelMessages {
            for peer in peers {
                for (c, channel) in checkedChannels.enumerated() {
                    let bytes = channelMessage(from: rank, to: peer, channel: c, index: index, size)
                    sentBytes += bytes.count
                    largest = max(largest, bytes.count)
                    sends.append(try transport.send(
                        bytes, stamp: channelStamp(from: rank, channel: c, index: index), to: peer, on: channel))
                }
            }
            if index == 1 { try checkAllReduce(transport, count: 1001) }
            if index == 3 { collectives.append(try transport.startAllToAll(collectiveMessages(collectiveRounds[1]))) }
        }

        // Channel 0: non-blocking takes, all peers in turn.
        var received = [Int: [ChannelMessage]]()
        let deadline = Date(timeIntervalSinceNow: arrivalTimeout)
        while peers.contains(where: { received[$0, default: []].count < channelMessages }) {
            var got = 0
            for peer in peers {
                let messages = try transport.takeArrived(from: peer, on: checkedChannels[0], clock: 0)
                received[peer, default: []] += messages
                got += messages.count
            }
            guard got == 0 else { continue }
            guard Date() < deadline else {
                throw TransportError.invalidArgument(
                    "transport self-test: channel messages on \(checkedChannels[0]) still missing after "
                        + "\(Int(arrivalTimeout)) s: \(peers.map { received[$0, default: []].count }) of \(channelMessages)")
            }
            Thread.sleep(forTimeInterval: 100e-6)
        }
        for peer in peers { try checkStream(received[peer]!, from: peer, to: rank, channel: 0, size) }

        // A collective between the two channels' receives.
        try checkAllReduce(transport, count: 999)

        // Channel 1: blocking waits.
        for peer in peers {
            var messages: [ChannelMessage] = []
            while messages.count < channelMessages {
                let batch = try transport.waitForMessages(from: peer, on: checkedChannels[1], clock: 0)
                try expect(!batch.isEmpty, "waitForMessages from rank \(peer) returned no message")
                messages += batch
            }
            try checkStream(messages, from: peer, to: rank, channel: 1, size)
        }

        for (offset, pending) in collectives.enumerated() {
            let round = collectiveRounds[offset]
            try check(try pending.wait(), round: round, rank: rank, size: size) { from, round in
                length(from: from, to: rank, round: round, size)
            }
        }
        for send in sends {
            try send.wait()
            try expect(send.isComplete && send.completionTime != nil, "a waited-for channel send is not complete")
        }
        // Everything sent was taken: nothing more may come.
        try transport.barrier()
        for peer in peers {
            for channel in checkedChannels + [unusedChannel] {
                let late = try transport.takeArrived(from: peer, on: channel, clock: 0)
                try expect(late.isEmpty, "takeArrived from rank \(peer) on \(channel) gave \(late.count) extra messages")
            }
        }
        return "channels: \(sends.count) messages sent (\(sentBytes) B, largest \(largest) B, empty ones) on "
            + "\(checkedChannels.count) channels and received in order with stamps, during 2 all-to-alls + all-reduces"
    }

    /// Message `index` from `from` to `to` on the `channel`-th checked channel: the first on channel 0 is empty,
    /// the third on channel 1 to the next rank is several MB.
    static func channelMessage(from: Int, to: Int, channel: Int, index: Int, _ size: Int) -> [UInt8] {
        let length: Int
        if channel == 0 && index == 0 {
            length = 0
        } else if channel == 1 && index == 2 && to == (from + 1) % size {
            length = largeChannelMessageBytes
        } else {
            length = 1 + (from * 31 + to * 17 + channel * 7 + index * 613) % 3000
        }
        return message(from: from, to: to, round: 200 + 10 * channel + index, length: length)
    }

    /// Distinct per message, negative for the first and beyond 32 bits for the last.
    static func channelStamp(from: Int, channel: Int, index: Int) -> Int {
        (index - 1) * 1_000_000_007 + from * 10 + channel
    }

    private static func checkStream(_ messages: [ChannelMessage], from: Int, to: Int, channel: Int, _ size: Int) throws {
        try expect(messages.count == channelMessages,
                   "\(messages.count) channel messages from rank \(from) on \(checkedChannels[channel]), expected \(channelMessages)")
        for (index, got) in messages.enumerated() {
            let stamp = channelStamp(from: from, channel: channel, index: index)
            try expect(got.stamp == stamp,
                       "channel message \(index) from rank \(from) on \(checkedChannels[channel]) has stamp \(got.stamp), "
                           + "expected \(stamp) (out of order?)")
            let expected = channelMessage(from: from, to: to, channel: channel, index: index, size)
            try expect(got.bytes == expected,
                       "channel message \(index) from rank \(from) on \(checkedChannels[channel]): "
                           + firstDifference(got.bytes, expected))
        }
    }

    /// Sizes relative to `chunkBytes` around the chunk boundaries (0, 1, c-1, c, c+1, 3c+7, …) for all-to-all
    /// (three in flight), all-reduce and broadcast. Run it on an `MPITransport` whose `maxChunkBytes` is
    /// `chunkBytes` to test splitting messages into pieces with small data; it is a valid check of any transport.
    public static func runChunkingCheck(_ transport: any Transport, chunkBytes: Int) throws -> String {
        guard chunkBytes >= 1, chunkBytes <= maxCheckedChunkBytes else {
            throw TransportError.invalidArgument("chunking check needs 1 ≤ chunkBytes ≤ 1 MiB, got \(chunkBytes)")
        }
        let rank = transport.rank
        let size = transport.worldSize
        let c = chunkBytes
        let lengths = [0, 1, max(0, c - 1), c, c + 1, 2 * c, 3 * c + 7, 10 * c + 3]
        func chunkLength(from: Int, to: Int, round: Int) -> Int {
            lengths[(from * 3 + to * 5 + round) % lengths.count]
        }
        var stats = AllToAllStats()
        let rounds = 3
        var pending: [any PendingAllToAll] = []
        for round in 0..<rounds {
            let messages = (0..<size).map { peer in
                message(from: rank, to: peer, round: 50 + round, length: chunkLength(from: rank, to: peer, round: round))
            }
            stats.add(sent: messages)
            pending.append(try transport.startAllToAll(messages))
        }
        // Messages of several pieces become visible to `poll` once their last piece is in.
        let polled = try pollAll(pending[rounds - 1], rank: rank, size: size, what: "chunked all-to-all")
        for round in 0..<rounds {
            let received = try pending[round].wait()
            try check(received, round: 50 + round, rank: rank, size: size) { from, round in
                chunkLength(from: from, to: rank, round: round - 50)
            }
            if round == rounds - 1 {
                try expect(polled == received, "chunked all-to-all: poll differs from wait()")
            }
            stats.add(received: received)
        }
        // Several pieces for both element types, with a remainder.
        let reduceCount = 3 * max(1, c / MemoryLayout<Float>.stride) + 5
        try checkAllReduce(transport, count: reduceCount)

        let root = size > 1 ? 1 : 0
        let rootBytes = message(from: root, to: 254, round: 77, length: 5 * c + 3)
        var bytes = rank == root ? rootBytes : []
        try transport.broadcast(&bytes, root: root)
        try expect(bytes == rootBytes, "chunked broadcast from root \(root): " + firstDifference(bytes, rootBytes))
        try transport.barrier()
        return "ok rank \(rank)/\(size) chunking (\(c) B pieces): \(rounds) all-to-alls in flight "
            + "(largest \(stats.largest) B), allReduce \(reduceCount) elements, broadcast \(5 * c + 3) B"
    }

    /// Times blocking all-to-alls in which every rank sends `messageBytes` to every other rank (nothing to
    /// itself). Returns mean seconds per all-to-all (after two warm-ups) and the per-rank send bandwidth.
    public static func measureAllToAll(
        _ transport: any Transport, messageBytes: Int, iterations: Int
    ) throws -> (secondsPerCall: Double, sendBytesPerSecond: Double) {
        let rank = transport.rank
        let messages = (0..<transport.worldSize).map { peer in
            peer == rank ? [] : [UInt8](repeating: UInt8(truncatingIfNeeded: peer), count: messageBytes)
        }
        for _ in 0..<2 { _ = try transport.allToAll(messages) }
        try transport.barrier()
        let start = Date()
        for _ in 0..<iterations {
            let received = try transport.allToAll(messages)
            if received.enumerated().contains(where: { $0.offset != rank && $0.element.count != messageBytes }) {
                throw TransportError.invalidArgument("benchmark all-to-all delivered a wrong size")
            }
        }
        let seconds = Date().timeIntervalSince(start) / Double(max(1, iterations))
        let sent = Double(messageBytes * (transport.worldSize - 1))
        return (seconds, sent / seconds)
    }

    /// Overlap check: starts an all-to-all of `messageBytes` to every other rank, keeps this thread busy computing
    /// for `computeSeconds`, then waits. Returns the time of the same all-to-all done blocking, and how long
    /// `wait()` still took after the computation (near zero when the transfer progressed meanwhile).
    public static func measureOverlap(
        _ transport: any Transport, messageBytes: Int, computeSeconds: Double
    ) throws -> (blockingSeconds: Double, waitAfterComputeSeconds: Double) {
        let rank = transport.rank
        let messages = (0..<transport.worldSize).map { peer in
            peer == rank ? [] : [UInt8](repeating: UInt8(truncatingIfNeeded: peer), count: messageBytes)
        }
        _ = try transport.allToAll(messages)
        try transport.barrier()
        var start = Date()
        _ = try transport.allToAll(messages)
        let blocking = Date().timeIntervalSince(start)
        try transport.barrier()
        let pending = try transport.startAllToAll(messages)
        start = Date()
        var x = 1.0
        while Date().timeIntervalSince(start) < computeSeconds {
            for _ in 0..<10_000 { x = x * 1.000000001 + 1e-9 }
        }
        let waitStart = Date()
        _ = try pending.wait()
        let waited = Date().timeIntervalSince(waitStart)
        if x.isNaN { throw TransportError.invalidArgument("unreachable") }
        return (blocking, waited)
    }

    // MARK: - Deterministic data

    /// Length of the message `from` → `to` in `round` of `run`: empty for a quarter of the pairs, the large
    /// message in round 1 to the next rank, otherwise 1…5000 bytes.
    static func length(from: Int, to: Int, round: Int, _ size: Int) -> Int {
        if round == 1 && to == (from + 1) % size { return largeMessageBytes }
        if (from + 2 * to + round) % 4 == 3 { return 0 }
        return 1 + (from * 7919 + to * 104_729 + round * 31) % 5000
    }

    /// The bytes of the message `from` → `to` in `round`; position-dependent so that misplaced pieces show.
    static func message(from: Int, to: Int, round: Int, length: Int) -> [UInt8] {
        let seed = from &* 31 &+ to &* 17 &+ round &* 7
        return [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            for i in 0..<length {
                buffer[i] = UInt8(truncatingIfNeeded: i &+ (i >> 8) &* 3 &+ (i >> 16) &* 5 &+ seed)
            }
            initialized = length
        }
    }

    private static func check(
        _ received: [[UInt8]], round: Int, rank: Int, size: Int, expectedLength: (Int, Int) -> Int
    ) throws {
        try expect(received.count == size, "all-to-all round \(round): \(received.count) messages for \(size) ranks")
        for from in 0..<size {
            let expected = message(from: from, to: rank, round: round, length: expectedLength(from, round))
            try expect(received[from] == expected,
                       "all-to-all round \(round), message \(from) → \(rank): " + firstDifference(received[from], expected))
        }
    }

    private static func checkAllReduce(_ transport: any Transport, count: Int) throws {
        let rank = transport.rank
        let size = transport.worldSize
        // Small integers and quarters: exact in any summation order.
        var floats = (0..<count).map { Float((rank + 1) * ($0 % 13)) }
        try transport.allReduceSum(&floats)
        let rankSum = size * (size + 1) / 2
        for i in 0..<count where floats[i] != Float(rankSum * (i % 13)) {
            throw TransportError.invalidArgument(
                "allReduceSum(Float) element \(i) of \(count) on rank \(rank): \(floats[i]), expected \(rankSum * (i % 13))")
        }
        var doubles = (0..<count).map { Double(rank) * 0.25 + Double($0 % 1000) }
        try transport.allReduceSum(&doubles)
        let quarterSum = 0.25 * Double(size * (size - 1) / 2)
        for i in 0..<count {
            let expected = quarterSum + Double(size * (i % 1000))
            if doubles[i] != expected {
                throw TransportError.invalidArgument(
                    "allReduceSum(Double) element \(i) of \(count) on rank \(rank): \(doubles[i]), expected \(expected)")
            }
        }
        try checkAllReduceIdenticalEverywhere(transport, count: count)
        // Started reductions, several in flight with a blocking one and an all-to-all between start and wait,
        // waited for out of order (training starts one per layer during backward).
        let started = try (1...3).map { k in
            try transport.startAllReduceSum((0..<count).map { Float((rank + 1) * k * ($0 % 7)) })
        }
        var between = [Float(rank)]
        try transport.allReduceSum(&between)
        _ = try transport.startAllToAll((0..<size).map { _ in [UInt8(rank)] }).wait()
        for k in [3, 1, 2] {
            let sums = try started[k - 1].wait()
            try expect(sums.count == count, "started all-reduce \(k): \(sums.count) elements for \(count)")
            for i in 0..<count where sums[i] != Float(rankSum * k * (i % 7)) {
                throw TransportError.invalidArgument(
                    "started all-reduce \(k) element \(i) of \(count) on rank \(rank): \(sums[i]), expected \(rankSum * k * (i % 7))")
            }
        }
        try expect(between[0] == Float(size * (size - 1) / 2), "blocking all-reduce between started ones: \(between[0])")
        var nothing: [Float] = []
        try transport.allReduceSum(&nothing)
        try expect(nothing.isEmpty, "allReduceSum of an empty array returned \(nothing.count) elements")
    }

    /// Sums of inexact values (whose rounding depends on the summation order) must still be close to the true sum
    /// and bit-for-bit the same on every rank, or replicated parameters would drift apart between ranks.
    private static func checkAllReduceIdenticalEverywhere(_ transport: any Transport, count: Int) throws {
        let rank = transport.rank
        let size = transport.worldSize
        func value(_ i: Int, _ r: Int) -> Double { sin(Double(i &* 7 &+ r &* 13 &+ 1)) * 1000 / Double(r + 3) }
        var floats = (0..<count).map { Float(value($0, rank)) }
        var doubles = (0..<count).map { value($0, rank) }
        try transport.allReduceSum(&floats)
        try transport.allReduceSum(&doubles)
        for i in stride(from: 0, to: count, by: max(1, count / 1000)) {
            let exact = (0..<size).reduce(0.0) { $0 + value(i, $1) }
            let floatExact = (0..<size).reduce(0.0) { $0 + Double(Float(value(i, $1))) }
            try expect(abs(Double(floats[i]) - floatExact) <= 1e-3 * Double(size),
                       "allReduceSum(Float) element \(i): \(floats[i]), expected ≈ \(floatExact)")
            try expect(abs(doubles[i] - exact) <= 1e-9 * Double(size),
                       "allReduceSum(Double) element \(i): \(doubles[i]), expected ≈ \(exact)")
        }
        let mine = floats.withUnsafeBytes { Array($0) } + doubles.withUnsafeBytes { Array($0) }
        var rootResult = mine
        try transport.broadcast(&rootResult, root: 0)
        try expect(rootResult == mine, "allReduceSum results are not bit-identical on rank 0 and rank \(rank)")
    }

    private static func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw TransportError.invalidArgument("transport self-test: " + message()) }
    }

    private static func firstDifference(_ got: [UInt8], _ expected: [UInt8]) -> String {
        if got.count != expected.count { return "got \(got.count) bytes, expected \(expected.count)" }
        guard let i = got.indices.first(where: { got[$0] != expected[$0] }) else { return "equal" }
        return "byte \(i) of \(got.count) is \(got[i]), expected \(expected[i])"
    }

    private struct AllToAllStats {
        var sentBytes = 0
        var receivedBytes = 0
        var largest = 0
        var empty = 0

        mutating func add(sent messages: [[UInt8]]) {
            for message in messages {
                sentBytes += message.count
                largest = max(largest, message.count)
                if message.isEmpty { empty += 1 }
            }
        }

        mutating func add(received messages: [[UInt8]]) {
            receivedBytes += messages.reduce(0) { $0 + $1.count }
        }
    }
}
