import HaloTransport
import HaloTransportTesting
import XCTest

private let a = ChannelID(3), b = ChannelID(4)

/// Channel messages (non-collective, stamped, in order per sender and channel) on ranks as threads, and the
/// scripted transport's delivery rules that the pipelined-training tests rely on.
final class ChannelTests: XCTestCase {

    func testLocalChannelsDeliverInOrderPerSenderAndChannel() throws {
        let received = try LocalTransport.run(worldSize: 3) { t in
            for peer in 0..<3 where peer != t.rank {
                for stamp in 0..<4 {
                    _ = try t.send([UInt8(t.rank), UInt8(stamp)], stamp: stamp, to: peer, on: stamp % 2 == 0 ? a : b)
                }
            }
            try t.barrier()
            var log: [String] = []
            for peer in 0..<3 where peer != t.rank {
                for channel in [a, b] {
                    let messages = try t.takeArrived(from: peer, on: channel, clock: 0)
                    log.append("\(peer)/\(channel.rawValue): " + messages.map { "\($0.stamp)=\($0.bytes)" }.joined(separator: " "))
                    XCTAssertEqual(try t.takeArrived(from: peer, on: channel, clock: 0), [], "taken once")
                }
            }
            return log
        }
        XCTAssertEqual(received[0], ["1/3: 0=[1, 0] 2=[1, 2]", "1/4: 1=[1, 1] 3=[1, 3]",
                                     "2/3: 0=[2, 0] 2=[2, 2]", "2/4: 1=[2, 1] 3=[2, 3]"])
    }

    func testWaitingReceiverGetsAMessageSentLater() throws {
        let got = try LocalTransport.run(worldSize: 2) { t in
            if t.rank == 0 {
                try t.barrier()
                _ = try t.send([7], stamp: 1, to: 1, on: a)
                return [UInt8]()
            }
            XCTAssertEqual(try t.takeArrived(from: 0, on: a, clock: 0), [])
            try t.barrier()
            return try t.waitForMessages(from: 0, on: a, clock: 0).flatMap(\.bytes)
        }
        XCTAssertEqual(got[1], [7])
    }

    func testAllToAllCanBePolledPerPeer() throws {
        let results = try LocalTransport.run(worldSize: 3) { t in
            let pending = try t.startAllToAll((0..<3).map { [UInt8(10 * t.rank + $0)] })
            XCTAssertEqual(try pending.poll(peer: t.rank), [UInt8(11 * t.rank)], "one's own message is there at once")
            let all = try pending.wait()
            for p in 0..<3 { XCTAssertEqual(try pending.poll(peer: p), all[p]) }
            return all
        }
        XCTAssertEqual(results[2], [[2], [12], [22]])
    }

    func testSendingToOneselfIsRefused() throws {
        _ = try LocalTransport.run(worldSize: 2) { t in
            XCTAssertThrowsError(try t.send([], stamp: 0, to: t.rank, on: a))
        }
    }

    /// Runs rank 0 as sender of stamps 0..<n on channel `a` (one per clock tick, after a barrier each) and rank 1
    /// as a receiver that asks once per tick; returns what rank 1 saw per tick.
    private func scriptedTicks(_ rule: DeliveryRule, ticks: Int) throws -> [[Int]] {
        let results = try ScriptedTransport.run(worldSize: 2, rule: rule) { t -> [[Int]] in
            var seen: [[Int]] = []
            for clock in 0..<ticks {
                if t.rank == 0 { _ = try t.send([], stamp: clock, to: 1, on: a) }
                try t.barrier()
                if t.rank == 1 { seen.append(try t.takeArrived(from: 0, on: a, clock: clock).map(\.stamp)) }
                try t.barrier()
            }
            return seen
        }
        return results[1]
    }

    func testScriptedDeliveryRules() throws {
        XCTAssertEqual(try scriptedTicks(.immediate, ticks: 3), [[0], [1], [2]])
        XCTAssertEqual(try scriptedTicks(.late(by: 1), ticks: 3), [[], [0], [1]])
        XCTAssertEqual(try scriptedTicks(.late(by: 2), ticks: 4), [[], [], [0], [1]])
        // Each message is seen at the second ask while pending, and never overtakes an earlier one.
        XCTAssertEqual(try scriptedTicks(.afterAsks(2), ticks: 4), [[], [0], [1], [2]])
        XCTAssertEqual(try scriptedTicks(.onlyWhenWaitedFor, ticks: 3), [[], [], []])
    }

    func testScriptedWaitGetsTheOldestPendingAndSendsCompleteByTheSendersClock() throws {
        let results = try ScriptedTransport.run(worldSize: 2, rule: .late(by: 2)) { t -> [Int] in
            if t.rank == 0 {
                let first = try t.send([], stamp: 0, to: 1, on: a)
                XCTAssertFalse(first.isComplete, "not visible at the sender's clock 0")
                _ = try t.send([], stamp: 1, to: 1, on: a)
                _ = try t.send([], stamp: 2, to: 1, on: a)
                XCTAssertTrue(first.isComplete, "visible at the sender's clock 2")
                try t.barrier()
                return []
            }
            try t.barrier()
            let waited = try t.waitForMessages(from: 0, on: a, clock: 0).map(\.stamp)
            XCTAssertEqual(t.undeliveredCount, 2)
            return waited + (try t.takeArrived(from: 0, on: a, clock: 3).map(\.stamp))
        }
        XCTAssertEqual(results[1], [0, 1])
    }
}
