import Foundation
import HaloTransport
import XCTest

final class LocalTransportTests: XCTestCase {
    private struct Boom: Error, CustomStringConvertible {
        var description: String { "boom on purpose" }
    }

    func testAllToAllDeliversEveryMessageToItsAddressee() throws {
        for world in [1, 2, 3, 4] {
            let results = try LocalTransport.run(worldSize: world) { t -> [[UInt8]] in
                // Message from r to p: (p+1)·(r+1) bytes of value r·16+p; empty when r == p+1.
                let messages = (0..<world).map { p in
                    t.rank == p + 1 ? [] : [UInt8](repeating: UInt8(t.rank * 16 + p), count: (p + 1) * (t.rank + 1))
                }
                return try t.allToAll(messages)
            }
            for (p, received) in results.enumerated() {
                for r in 0..<world {
                    let expected = r == p + 1 ? [] : [UInt8](repeating: UInt8(r * 16 + p), count: (p + 1) * (r + 1))
                    XCTAssertEqual(received[r], expected, "world \(world): message \(r)→\(p)")
                }
            }
        }
    }

    func testSeveralAllToAllsInFlightCompleteInAnyWaitOrder() throws {
        let results = try LocalTransport.run(worldSize: 3) { t -> [UInt8] in
            let first = try t.startAllToAll((0..<3).map { _ in [UInt8(t.rank)] })
            let second = try t.startAllToAll((0..<3).map { _ in [UInt8(10 + t.rank)] })
            let b = try second.wait(), a = try first.wait()
            return a.map { $0[0] } + b.map { $0[0] }
        }
        for r in results { XCTAssertEqual(r, [0, 1, 2, 10, 11, 12]) }
    }

    func testStartedAllReducesInterleaveWithOtherCollectivesAndEqualBlockingOnes() throws {
        let results = try LocalTransport.run(worldSize: 3) { t -> [[Float]] in
            let values: (Int) -> [Float] = { k in (0..<5).map { Float(t.rank) * 0.1 + Float(k * $0) } }
            let first = try t.startAllReduceSum(values(1))
            let second = try t.startAllReduceSum(values(2))
            var blocking = values(3)
            try t.allReduceSum(&blocking)
            let exchanged = try t.startAllToAll((0..<3).map { [UInt8($0)] }).wait()
            XCTAssertEqual(exchanged.map { $0[0] }, [UInt8](repeating: UInt8(t.rank), count: 3))
            // Waited for out of start order, after other collectives: each is still its own sum.
            let b = try second.wait(), a = try first.wait()
            XCTAssertNotNil(second.completionTime)
            var reference = (values(1), values(2))
            try t.allReduceSum(&reference.0)
            try t.allReduceSum(&reference.1)
            XCTAssertEqual(a, reference.0)
            XCTAssertEqual(b, reference.1)
            return [a, b, blocking]
        }
        for r in results { XCTAssertEqual(r, results[0], "bit-identical on every rank") }
        XCTAssertEqual(results[0][0][1], 3 * 1 + 0.3, accuracy: 1e-5)
        XCTAssertEqual(results[0][1][4], 3 * 8 + 0.3, accuracy: 1e-5)
    }

    func testAllReduceIsIdenticalOnEveryRankAndBroadcastCopiesRoot() throws {
        let results = try LocalTransport.run(worldSize: 4) { t -> ([Float], [Double], [UInt8]) in
            var f: [Float] = [Float(t.rank) * 0.1, 1, -Float(t.rank)]
            try t.allReduceSum(&f)
            var d: [Double] = [Double(t.rank)]
            try t.allReduceSum(&d)
            var b: [UInt8] = t.rank == 2 ? [7, 8, 9] : []
            try t.broadcast(&b, root: 2)
            try t.barrier()
            return (f, d, b)
        }
        for r in results {
            XCTAssertEqual(r.0, results[0].0, "all-reduce must be bit-identical on every rank")
            XCTAssertEqual(r.0[1], 4)
            XCTAssertEqual(r.0[2], -6)
            XCTAssertEqual(r.1, [6])
            XCTAssertEqual(r.2, [7, 8, 9])
        }
    }

    func testAFailingRankEndsTheGroupWithItsReason() {
        let started = Date()
        XCTAssertThrowsError(try LocalTransport.run(worldSize: 4) { t -> Int in
            if t.rank == 1 { throw Boom() }
            // The others block in a collective rank 1 never joins: they must be released.
            var x: [Float] = [1]
            try t.allReduceSum(&x)
            _ = try t.allToAll((0..<4).map { _ in [] })
            return 0
        }) { error in
            XCTAssertTrue(error is Boom, "the failing rank's own error is reported, got \(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }

    func testPeersSeeWhoFailed() throws {
        let seen = PeerErrors()
        XCTAssertThrowsError(try LocalTransport.run(worldSize: 3) { t -> Int in
            if t.rank == 2 { t.fail(reason: "could not load part 2"); throw Boom() }
            do { try t.barrier() } catch { seen.add(error) }
            return 0
        })
        for e in seen.errors {
            XCTAssertEqual(e as? TransportError, .peerFailed(rank: 2, reason: "could not load part 2"))
        }
    }

    /// A thread of the failing rank itself that waits on a channel or a collective (a gradient reduction's queue)
    /// ends with the failure instead of waiting forever.
    func testTheFailingRanksOwnWaitingThreadsEnd() throws {
        let ended = DispatchSemaphore(value: 0)
        let seen = PeerErrors()
        XCTAssertThrowsError(try LocalTransport.run(worldSize: 2) { t -> Int in
            if t.rank == 0 {
                Thread {
                    do { _ = try t.waitForMessages(from: 1, on: ChannelID(5), clock: 0) } catch { seen.add(error) }
                    ended.signal()
                }.start()
                // Let the thread start waiting, then fail.
                Thread.sleep(forTimeInterval: 0.05)
                throw Boom()
            }
            do { try t.barrier() } catch { seen.add(error) }
            return 0
        })
        XCTAssertEqual(ended.wait(timeout: .now() + 5), .success, "the failed rank's waiting thread is still blocked")
        XCTAssertEqual(seen.errors.count, 2)
        for e in seen.errors {
            guard case .peerFailed(rank: 0, _)? = e as? TransportError else { return XCTFail("expected rank 0's failure, got \(e)") }
        }
    }

    func testMismatchedArgumentsAreRejected() {
        XCTAssertThrowsError(try LocalTransport.run(worldSize: 2) { t -> Int in
            _ = try t.startAllToAll([[]])   // one message for two ranks
            return 0
        })
        XCTAssertThrowsError(try LocalTransport.run(worldSize: 2) { t -> Int in
            var v = [Float](repeating: 0, count: t.rank + 1)
            try t.allReduceSum(&v)
            return 0
        })
    }
}

private final class PeerErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [any Error] = []
    func add(_ e: any Error) { lock.withLock { stored.append(e) } }
    var errors: [any Error] { lock.withLock { stored } }
}
