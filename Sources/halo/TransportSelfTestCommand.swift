import ArgumentParser
import Foundation
import HaloMPI
import HaloTransport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Hidden: checks a transport end to end (every rank prints one "ok rank r/P …" line), optionally measures the
/// all-to-all, or injects a failure to check that the job ends. Run under mpirun, e.g.
///   mpirun --oversubscribe --bind-to none -np 4 halo transport-selftest --transport mpi
struct TransportSelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transport-selftest",
        abstract: "Check a transport end to end (collective: run on every rank).",
        shouldDisplay: false)

    enum FailMode: String, ExpressibleByArgument, CaseIterable {
        /// `Transport.fail(reason:)`: prints the reason and aborts the job.
        case fail
        /// `_exit(3)` without a word, as a crashing rank would.
        case exit
        /// SIGKILL to itself, as the OOM killer would.
        case kill
    }

    @Option(help: "Transport to test: mpi (run under mpirun) or local (--ranks threads in this process).")
    var transport: TransportKind = .mpi

    @Option(help: "Ranks for --transport local.")
    var ranks: Int = 4

    @Option(help: "Largest payload per MPI call; up to 1 MiB also runs the chunking check with pieces of this size.")
    var chunkBytes: Int?

    @Flag(help: "Also time all-to-alls of --bench-bytes to every other rank.")
    var bench = false

    @Option(parsing: .upToNextOption, help: "Message sizes for --bench.")
    var benchBytes: [Int] = [1024, 64 << 20]

    @Option(help: "Iterations per --bench size.")
    var benchIterations: Int = 20

    @Option(help: "Communication-thread polling: poll without pause this long after the last progress (µs).")
    var spinMicroseconds: UInt32 = MPIPollingPolicy.default.spinMicroseconds

    @Option(help: "Communication-thread polling: then poll with sched_yield until this long after it (µs).")
    var yieldMicroseconds: UInt32 = MPIPollingPolicy.default.yieldMicroseconds

    @Option(help: "Communication-thread polling: then the sleep between polls while data moves, in microseconds.")
    var sleepMicroseconds: UInt32 = MPIPollingPolicy.default.sleepMicroseconds

    @Option(help: "Communication-thread polling: the longest sleep while waiting for other ranks, in microseconds.")
    var maxSleepMicroseconds: UInt32 = MPIPollingPolicy.default.maxSleepMicroseconds

    @Option(help: "Rank that sleeps --delay-seconds before an all-to-all; every rank reports its CPU time while waiting.")
    var delayRank: Int?

    @Option(help: "Sleep of --delay-rank.")
    var delaySeconds: Double = 5

    @Option(help: "Rank that fails after the first barrier instead of running the test.")
    var failRank: Int?

    @Option(help: "How --fail-rank fails: fail, exit or kill.")
    var failMode: FailMode = .fail

    @Option(help: "Reason given by --fail-rank with --fail-mode fail.")
    var failReason: String = "injected failure"

    func run() throws {
        switch transport {
        case .local:
            guard ranks >= 1 else { throw ValidationError("--ranks must be at least 1") }
            let chunkBytes = self.chunkBytes
            let lines = try LocalTransport.run(worldSize: ranks) { local in
                var lines = [try TransportSelfTest.run(local)]
                if let chunkBytes, chunkBytes <= TransportSelfTest.maxCheckedChunkBytes {
                    lines.append(try TransportSelfTest.runChunkingCheck(local, chunkBytes: chunkBytes))
                }
                return lines
            }
            print(lines.joined().joined(separator: "\n"))
        case .mpi:
            try runMPI()
        }
    }

    private func runMPI() throws {
        // Throws MPIEnvironmentError.notLaunchedByMPI, with instructions, unless started by mpirun.
        let environment = try MPIEnvironment()
        let mpi = try MPITransport(
            environment: environment, maxChunkBytes: chunkBytes ?? MPITransport.defaultMaxChunkBytes,
            polling: MPIPollingPolicy(
                spinMicroseconds: spinMicroseconds, yieldMicroseconds: yieldMicroseconds,
                sleepMicroseconds: sleepMicroseconds, maxSleepMicroseconds: maxSleepMicroseconds))
        do {
            let lines = try runChecks(mpi)
            // Written unbuffered so that nothing is lost if another rank aborts the job later.
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        } catch {
            // The other ranks may be waiting in a collective: end the whole job rather than hang.
            mpi.fail(reason: String(describing: error))
        }
        environment.finalize()
    }

    private func runChecks(_ mpi: MPITransport) throws -> [String] {
        if let failRank {
            try mpi.barrier()
            if mpi.rank == failRank {
                Thread.sleep(forTimeInterval: 0.2)  // let the others enter the self-test's first all-to-all
                switch failMode {
                case .fail: mpi.fail(reason: failReason)
                case .exit: _exit(3)
                case .kill: kill(getpid(), SIGKILL)
                }
            }
        }
        var lines: [String] = []
        if let delayRank {
            lines.append(try measureWaiting(mpi, delayRank: delayRank))
        }
        lines.append(try TransportSelfTest.run(mpi))
        if let chunkBytes, chunkBytes <= TransportSelfTest.maxCheckedChunkBytes {
            lines.append(try TransportSelfTest.runChunkingCheck(mpi, chunkBytes: chunkBytes))
        }
        if bench {
            for bytes in benchBytes {
                let result = try TransportSelfTest.measureAllToAll(mpi, messageBytes: bytes, iterations: benchIterations)
                lines.append(String(
                    format: "bench rank %d/%d: all-to-all %d B to each peer: %.1f µs per call, %.3f GB/s sent per rank",
                    mpi.rank, mpi.worldSize, bytes, result.secondsPerCall * 1e6, result.sendBytesPerSecond / 1e9))
            }
        }
        if bench, let largest = benchBytes.max() {
            let overlap = try TransportSelfTest.measureOverlap(mpi, messageBytes: largest, computeSeconds: 1)
            lines.append(String(
                format: "bench rank %d/%d: overlap: %d B all-to-all takes %.1f ms blocking; started before 1 s of "
                    + "compute on this thread, wait() then took %.1f ms",
                mpi.rank, mpi.worldSize, largest, overlap.blockingSeconds * 1e3, overlap.waitAfterComputeSeconds * 1e3))
        }
        return lines
    }

    /// One rank sleeps while the others wait in an all-to-all: the CPU the waiting ranks spend is the cost of the
    /// communication thread's polling.
    private func measureWaiting(_ mpi: MPITransport, delayRank: Int) throws -> String {
        try mpi.barrier()
        let cpuBefore = ProcessCPUClock.seconds()
        let start = Date()
        if mpi.rank == delayRank { Thread.sleep(forTimeInterval: delaySeconds) }
        _ = try mpi.allToAll([[UInt8]](repeating: [1], count: mpi.worldSize))
        let wall = Date().timeIntervalSince(start)
        let cpu = ProcessCPUClock.seconds() - cpuBefore
        return String(
            format: "wait rank %d/%d: %.2f s in all-to-all (rank %d slept %.1f s), process CPU %.3f s (%.1f%% of a core)",
            mpi.rank, mpi.worldSize, wall, delayRank, delaySeconds, cpu, 100 * cpu / wall)
    }
}
