import Foundation
import HaloMPI
import HaloTransport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// End-to-end tests of `MPITransport`: they run the built `halo` binary's hidden `transport-selftest` command under
/// `mpirun` (MPI can be initialised once per process, and ranks must be processes), so they need `swift build` to
/// have produced `halo` next to the test bundle, and are skipped when `mpirun` is not on PATH.
final class MPITransportTests: XCTestCase {
    /// Point-to-point over TCP on loopback, as between machines (and independent of shared-memory support).
    static let tcpOverLoopback = ["--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo"]

    func testSelfTestPassesOnOneTwoAndFourRanks() throws {
        let (mpirun, halo) = try tools()
        for ranks in [1, 2, 4] {
            let outcome = try run(
                mpirun,
                launcherArguments(ranks: ranks) + Self.tcpOverLoopback
                    + [halo.path, "transport-selftest", "--transport", "mpi"],
                timeout: 180)
            try assertAllRanksOK(outcome, ranks: ranks, pattern: "ok rank %d/%d: ")
            try assertChannelsChecked(outcome, ranks: ranks)
        }
    }

    /// The self-test's summary line of every rank reports the per-peer poll and, with peers, the channel check.
    private func assertChannelsChecked(_ outcome: Outcome, ranks: Int) throws {
        for rank in 0..<ranks {
            let line = outcome.stdout.split(separator: "\n").first { $0.hasPrefix("ok rank \(rank)/\(ranks): ") }
            guard let line else { continue }  // assertAllRanksOK reported it
            XCTAssertTrue(line.contains("poll of 2 all-to-alls per peer"), "\(line)")
            XCTAssertTrue(
                line.contains(ranks > 1 ? "received in order with stamps" : "channels: none (one rank)"), "\(line)")
        }
    }

    func testChunkingWithSmallPiecesOverTCPAndSharedMemory() throws {
        let (mpirun, halo) = try tools()
        for (ranks, transportArguments) in [(3, Self.tcpOverLoopback), (2, ["--mca", "btl", "self,vader"])] {
            let outcome = try run(
                mpirun,
                launcherArguments(ranks: ranks) + transportArguments
                    + [halo.path, "transport-selftest", "--transport", "mpi", "--chunk-bytes", "1000"],
                timeout: 180)
            try assertAllRanksOK(outcome, ranks: ranks, pattern: "ok rank %d/%d: ")
            // Channel messages of more than 1000 bytes travel as a header and pieces here.
            try assertChannelsChecked(outcome, ranks: ranks)
            try assertAllRanksOK(outcome, ranks: ranks, pattern: "ok rank %d/%d chunking (1000 B pieces)")
        }
    }

    func testFailingRankEndsTheJobAndNamesItself() throws {
        let (mpirun, halo) = try tools()
        let reason = "injected by MPITransportTests"
        let outcome = try run(
            mpirun,
            launcherArguments(ranks: 3) + Self.tcpOverLoopback
                + [halo.path, "transport-selftest", "--transport", "mpi", "--fail-rank", "1", "--fail-mode", "fail",
                   "--fail-reason", reason],
            timeout: 20)
        XCTAssertFalse(outcome.timedOut, "mpirun still running after 20 s\n\(outcome)")
        XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue(outcome.stderr.contains("halo: rank 1 failed: \(reason)"), "\(outcome)")
    }

    func testKilledRankEndsTheJob() throws {
        let (mpirun, halo) = try tools()
        let outcome = try run(
            mpirun,
            launcherArguments(ranks: 3) + Self.tcpOverLoopback
                + [halo.path, "transport-selftest", "--transport", "mpi", "--fail-rank", "1", "--fail-mode", "kill"],
            timeout: 20)
        XCTAssertFalse(outcome.timedOut, "mpirun still running after 20 s\n\(outcome)")
        XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue((outcome.stdout + outcome.stderr).contains("rank 1"), "\(outcome)")
    }

    func testWithoutLauncherExplainsWhatToDo() throws {
        guard let halo = haloBinary() else { throw XCTSkip("halo binary not built next to the tests") }
        let outcome = try run(halo, ["transport-selftest", "--transport", "mpi"], timeout: 30)
        XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue(outcome.stderr.contains("mpirun"), "\(outcome)")
    }

    func testLauncherDetection() {
        XCTAssertFalse(MPIEnvironment.launchedByMPI(environment: ["PATH": "/usr/bin"]))
        XCTAssertTrue(MPIEnvironment.launchedByMPI(environment: ["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(MPIEnvironment.launchedByMPI(environment: ["PMI_SIZE": "4"]))
        let announced = MPIEnvironment.launcherRankAndSize(
            environment: ["OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4"])
        XCTAssertEqual(announced?.rank, 3)
        XCTAssertEqual(announced?.size, 4)
        XCTAssertTrue(MPIEnvironmentError.notLaunchedByMPI.description.contains("mpirun"))
    }

    /// Halo's Open MPI choices apply only where the user (environment or `mpirun --mca`) made none.
    func testOpenMPIDefaultsNeverOverrideTheUser() {
        let name = "OMPI_MCA_coll_libnbc_iallreduce_algorithm"
        XCTAssertEqual(MPIEnvironment.openMPIDefaults(missingFrom: [:])[name], "1")
        XCTAssertNil(MPIEnvironment.openMPIDefaults(missingFrom: [name: "3"])[name])
        XCTAssertEqual(MPIEnvironment.openMPIDefaults(missingFrom: ["PATH": "/bin"]), MPIEnvironment.openMPIDefaults)
        XCTAssertEqual(MPIEnvironment.openMPIDefaults(missingFrom: [MPIEnvironment.keepOpenMPIDefaultsVariable: "1"]), [:])
    }

    /// The self-test itself, on a one-rank transport: passes on a correct one, and catches a corrupted byte.
    func testSelfTestAcceptsCorrectAndRejectsCorruptTransport() throws {
        let summary = try TransportSelfTest.run(SingleRankTransport(corrupt: false))
        XCTAssertTrue(summary.hasPrefix("ok rank 0/1: "), summary)
        XCTAssertTrue(summary.contains("channels: none (one rank)"), summary)
        XCTAssertTrue(try TransportSelfTest.runChunkingCheck(SingleRankTransport(corrupt: false), chunkBytes: 100)
            .hasPrefix("ok rank 0/1 chunking"))
        XCTAssertThrowsError(try TransportSelfTest.run(SingleRankTransport(corrupt: true))) { error in
            XCTAssertTrue(String(describing: error).contains("byte"), "\(error)")
        }
    }

    /// The self-test holds for any transport: here the in-process one.
    func testSelfTestPassesOnLocalTransport() throws {
        for ranks in 1...4 {
            let lines = try LocalTransport.run(worldSize: ranks) { transport in
                [try TransportSelfTest.run(transport),
                 try TransportSelfTest.runChunkingCheck(transport, chunkBytes: 333)]
            }
            for (rank, summaries) in lines.enumerated() {
                XCTAssertTrue(summaries[0].hasPrefix("ok rank \(rank)/\(ranks): "), summaries[0])
                XCTAssertTrue(summaries[1].hasPrefix("ok rank \(rank)/\(ranks) chunking"), summaries[1])
            }
        }
    }
}

/// A one-rank transport (everything is delivered to oneself), optionally corrupting one byte of each large
/// all-to-all message, to test `TransportSelfTest` without MPI.
private final class SingleRankTransport: Transport, @unchecked Sendable {
    let rank = 0
    let worldSize = 1
    let crossesNetwork = false
    let corrupt: Bool

    init(corrupt: Bool) { self.corrupt = corrupt }

    private final class Done: PendingAllToAll {
        let messages: [[UInt8]]
        init(_ messages: [[UInt8]]) { self.messages = messages }
        func wait() throws -> [[UInt8]] { messages }
        func poll(peer: Int) throws -> [UInt8]? {
            guard messages.indices.contains(peer) else { throw TransportError.invalidArgument("no rank \(peer)") }
            return messages[peer]
        }
        var completionTime: UInt64? { nil }
    }

    func startAllToAll(_ messages: [[UInt8]]) throws -> any PendingAllToAll {
        guard messages.count == 1 else { throw TransportError.invalidArgument("one message expected") }
        var delivered = messages
        if corrupt && delivered[0].count > 1000 { delivered[0][999] &+= 1 }
        return Done(delivered)
    }

    func allReduceSum(_ values: inout [Float]) throws {}
    func allReduceSum(_ values: inout [Double]) throws {}
    func startAllReduceSum(_ values: [Float]) throws -> any PendingAllReduce { Reduced(values) }

    private final class Reduced: PendingAllReduce {
        let values: [Float]
        init(_ values: [Float]) { self.values = values }
        func wait() throws -> [Float] { values }
        var completionTime: UInt64? { nil }
    }
    func broadcast(_ bytes: inout [UInt8], root: Int) throws {}
    func barrier() throws {}
    func fail(reason: String) {}

    // A single rank has no peer to talk to over a channel.

    private func noPeer(_ peer: Int) -> TransportError {
        .invalidArgument("rank 0 of 1 has no channel peer \(peer)")
    }

    func send(_ bytes: [UInt8], stamp: Int, to peer: Int, on channel: ChannelID) throws -> any PendingSend {
        throw noPeer(peer)
    }

    func takeArrived(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage] {
        throw noPeer(peer)
    }

    func waitForMessages(from peer: Int, on channel: ChannelID, clock: Int) throws -> [ChannelMessage] {
        throw noPeer(peer)
    }
}
