import CMPI
import Foundation
import HaloTransport

/// Why MPI could not be set up in this process.
public enum MPIEnvironmentError: Error, CustomStringConvertible, Equatable {
    /// The process was not started by an MPI launcher (`mpirun`/`mpiexec`), so it has no peers to talk to.
    case notLaunchedByMPI
    /// MPI is already initialised in this process (another `MPIEnvironment` is alive, or someone else called
    /// `MPI_Init`). MPI can be initialised once per process.
    case alreadyInitialized
    /// MPI was finalised in this process; it can never be initialised again.
    case alreadyFinalized
    /// The library cannot give `MPI_THREAD_MULTIPLE`, which the transport's communication thread (and `fail`,
    /// which aborts from any thread) need.
    case insufficientThreadSupport(provided: Int)
    /// `MPI_Init_thread` failed.
    case initFailed(String)

    public var description: String {
        switch self {
        case .notLaunchedByMPI:
            return "the MPI transport needs an MPI launcher: this process was not started by mpirun. "
                + "Run e.g. `mpirun -np 4 --bind-to none halo …` (as root also set OMPI_ALLOW_RUN_AS_ROOT=1 "
                + "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1), or use the in-process transport"
        case .alreadyInitialized: return "MPI is already initialised in this process (it can be initialised once)"
        case .alreadyFinalized: return "MPI was already finalised in this process and cannot be initialised again"
        case .insufficientThreadSupport(let provided):
            return "the MPI library provides thread level \(provided), but MPI_THREAD_MULTIPLE "
                + "(\(halo_mpi_thread_multiple())) is required"
        case .initFailed(let what): return "MPI_Init_thread failed: \(what)"
        }
    }
}

/// This process's membership in the MPI job: initialises MPI (`MPI_Init_thread` with `MPI_THREAD_MULTIPLE`) when
/// created and finalises it in `finalize()`.
///
/// MPI allows one initialisation per process, so at most one environment can ever exist in a process; a second
/// `init` throws rather than corrupting MPI state. The caller owns the object: create it first thing (before
/// spawning threads that may call `fail`), make transports with `makeTransport`, and call `finalize()` on the same
/// thread at the end of a successful run. Every rank must reach `finalize()`; a rank that fails must call
/// `Transport.fail(reason:)` instead (which ends the whole job), or the others would wait forever.
public final class MPIEnvironment: @unchecked Sendable {
    /// This process's rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// The number of processes in `MPI_COMM_WORLD`.
    public let worldSize: Int

    /// Serialises initialisation across threads: MPI's "once per process" is per-process state, not ours.
    private static let initLock = NSLock()

    private let lock = NSLock()
    private var finalized = false
    private var engines: [CommEngine] = []

    /// Environment variables set by the launchers that can start us: Open MPI's `mpirun`, and PMI/PMIx launchers
    /// such as `srun` or Hydra's `mpiexec`.
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"]

    /// Whether this process was started by an MPI launcher. Checked before initialising MPI so that running
    /// `--transport mpi` without `mpirun` gives a clear error instead of a silent single-process "job".
    public static func launchedByMPI(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Bool {
        launcherVariables.contains { environment[$0] != nil }
    }

    /// The rank and world size the launcher announced in the environment (before MPI is initialised), if any.
    public static func launcherRankAndSize(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> (rank: Int, size: Int)? {
        guard let rank = environment["OMPI_COMM_WORLD_RANK"].flatMap({ Int($0) }),
              let size = environment["OMPI_COMM_WORLD_SIZE"].flatMap({ Int($0) })
        else { return nil }
        return (rank, size)
    }

    /// Open MPI parameters Halo chooses unless the user already did (`mpirun --mca NAME VALUE` and the
    /// environment both arrive as `OMPI_MCA_NAME` variables, which Open MPI reads during initialisation).
    ///
    /// - `coll_libnbc_iallreduce_algorithm = 1` (ring): the gradient all-reduce of every epoch is an in-place
    ///   `MPI_Iallreduce` of the whole model, for which Open MPI 4.1's default picks a reduce + broadcast tree that
    ///   moves the vector over the root's link about 2× (P = 2) to 5× (P = 4) more than a ring. Measured on the
    ///   100 Mbit/s emulated network (Coauthor-Physics, AdaQP, 8.6 MB of gradients): all-reduce 1.43 → 0.72 s per
    ///   epoch at P = 2 and 3.60 → 1.18 s at P = 4 (docs/multi-host.md).
    ///
    /// Environment variables outrank Open MPI's parameter files, so a site setting in `openmpi-mca-params.conf` is
    /// overridden too; `HALO_KEEP_OPENMPI_DEFAULTS=1` leaves every parameter to Open MPI and its files.
    public static let openMPIDefaults = ["OMPI_MCA_coll_libnbc_iallreduce_algorithm": "1"]
    /// Set (to anything) to leave Open MPI's parameters alone.
    public static let keepOpenMPIDefaultsVariable = "HALO_KEEP_OPENMPI_DEFAULTS"

    /// The entries of `openMPIDefaults` that `environment` does not set already (none if it asks to keep Open MPI's).
    public static func openMPIDefaults(missingFrom environment: [String: String]) -> [String: String] {
        guard environment[keepOpenMPIDefaultsVariable] == nil else { return [:] }
        return openMPIDefaults.filter { environment[$0.key] == nil }
    }

    static func applyOpenMPIDefaults() {
        for (name, value) in openMPIDefaults(missingFrom: ProcessInfo.processInfo.environment) { setenv(name, value, 0) }
    }

    /// Initialises MPI with `MPI_THREAD_MULTIPLE` and sets `MPI_ERRORS_RETURN` on `MPI_COMM_WORLD`.
    /// - Parameter requireLauncher: throw `notLaunchedByMPI` unless `launchedByMPI()`; pass false to allow an MPI
    ///   "singleton" (a one-rank job started without a launcher).
    public init(requireLauncher: Bool = true) throws {
        if requireLauncher && !Self.launchedByMPI() { throw MPIEnvironmentError.notLaunchedByMPI }
        Self.initLock.lock()
        defer { Self.initLock.unlock() }
        var flag: Int32 = 0
        MPI_Finalized(&flag)
        if flag != 0 { throw MPIEnvironmentError.alreadyFinalized }
        MPI_Initialized(&flag)
        if flag != 0 { throw MPIEnvironmentError.alreadyInitialized }

        Self.applyOpenMPIDefaults()
        var provided: Int32 = 0
        let rc = MPI_Init_thread(nil, nil, halo_mpi_thread_multiple(), &provided)
        guard rc == MPI_SUCCESS else { throw MPIEnvironmentError.initFailed(mpiErrorString(rc)) }
        guard provided >= halo_mpi_thread_multiple() else {
            MPI_Finalize()
            throw MPIEnvironmentError.insufficientThreadSupport(provided: Int(provided))
        }
        let world = halo_mpi_comm_world()
        MPI_Comm_set_errhandler(world, halo_mpi_errors_return())
        var rank: Int32 = 0
        var size: Int32 = 0
        MPI_Comm_rank(world, &rank)
        MPI_Comm_size(world, &size)
        self.rank = Int(rank)
        self.worldSize = Int(size)
    }

    deinit {
        finalize()
    }

    /// Whether `finalize()` has run.
    public var isFinalized: Bool {
        lock.lock()
        defer { lock.unlock() }
        return finalized
    }

    /// A transport over a private duplicate of `MPI_COMM_WORLD`. Collective: every rank makes its transports in the
    /// same order.
    public func makeTransport(maxChunkBytes: Int = MPITransport.defaultMaxChunkBytes) throws -> MPITransport {
        try MPITransport(environment: self, maxChunkBytes: maxChunkBytes)
    }

    /// Stops every transport made from this environment (their communication threads finish the operations
    /// already queued, then exit) and finalises MPI. Idempotent. Call it on the thread that created the
    /// environment, on every rank, after the last collective operation.
    public func finalize() {
        lock.lock()
        defer { lock.unlock() }
        guard !finalized else { return }
        finalized = true
        for engine in engines { engine.shutdown() }
        engines.removeAll()
        MPI_Finalize()
    }

    /// Adopts a transport's engine so that `finalize()` stops it before MPI goes away.
    func register(_ engine: CommEngine) throws {
        lock.lock()
        defer { lock.unlock() }
        guard !finalized else { throw TransportError.backend("MPI environment already finalised") }
        engines.append(engine)
    }
}

/// The text MPI gives for an error code.
func mpiErrorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: Int(halo_mpi_max_error_string()) + 1)
    var length: Int32 = 0
    guard MPI_Error_string(code, &buffer, &length) == MPI_SUCCESS else { return "MPI error \(code)" }
    let bytes = buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }
    return "\(String(decoding: bytes, as: UTF8.self)) (MPI error \(code))"
}
