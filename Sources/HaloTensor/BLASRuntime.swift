import CBLAS
import Foundation

/// Process-level settings of the OpenBLAS library.
///
/// OpenBLAS chooses its kernels when the shared library loads, before `main` runs. On AVX-512 hosts whose CPU it
/// does not recognise as such (AMD Zen 4 in OpenBLAS 0.3.21 is taken for Haswell) it runs AVX2 kernels at half
/// the sgemm speed (measured here: 60 vs 153 GFLOP/s); the environment variable `OPENBLAS_CORETYPE` overrides the
/// choice but must be set before the process starts. A program calls `relaunchWithTunedCoreIfNeeded()` first thing
/// in `main`: on such a host, if the variable is unset or names an AVX2-only family (machine images preset
/// `Haswell`), it sets `SKYLAKEX` and `exec`s itself so the new image loads OpenBLAS with AVX-512 kernels.
/// `HALO_KEEP_OPENBLAS_CORETYPE=1` keeps whatever the environment says.
public enum BLASRuntime {
    /// The environment variable OpenBLAS reads at load time.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"
    /// Marks a relaunched process so that a failed relaunch can never loop.
    static let relaunchMarker = "HALO_BLAS_RELAUNCHED"
    /// Set to keep the environment's `OPENBLAS_CORETYPE` untouched.
    public static let keepVariable = "HALO_KEEP_OPENBLAS_CORETYPE"
    /// Kernel families without AVX-512, which an AVX-512 host should not be held to.
    static let avx2OnlyFamilies: Set<String> = ["HASWELL", "ZEN", "SANDYBRIDGE", "NEHALEM", "CORE2", "PRESCOTT", "ATOM"]

    /// Whether the process should relaunch with `recommendedCoreType()`, given its environment.
    public static func shouldOverride(environment env: [String: String], recommended: String?) -> Bool {
        guard recommended != nil, env[relaunchMarker] == nil, env[keepVariable] == nil else { return false }
        guard let current = env[coreTypeVariable], !current.isEmpty else { return true }
        return avx2OnlyFamilies.contains(current.uppercased())
    }

    /// The core type to request on this host, or nil if OpenBLAS's own detection is fine.
    public static func recommendedCoreType() -> String? {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        guard flags.contains("avx512f"), flags.contains("avx512bw"), flags.contains("avx512vl") else { return nil }
        return "SKYLAKEX"
    }

    /// Re-executes the current program with `OPENBLAS_CORETYPE` set when the host needs it. Returns normally
    /// (doing nothing) when no override is needed or exec is impossible.
    public static func relaunchWithTunedCoreIfNeeded() {
        let core = recommendedCoreType()
        guard shouldOverride(environment: ProcessInfo.processInfo.environment, recommended: core), let core else { return }
        setenv(coreTypeVariable, core, 1)
        setenv(relaunchMarker, "1", 1)
        let args = CommandLine.arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cArgs.append(nil)
        execv("/proc/self/exe", cArgs)
        // exec failed (e.g. no /proc): carry on with the default kernels.
        for p in cArgs { free(p) }
    }

    /// The kernel family OpenBLAS selected, e.g. "SkylakeX" or "Zen".
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// How the kernel family was chosen, so a report can tell a forced family from a detected one: "detected",
    /// "OPENBLAS_CORETYPE=Zen (environment)" or "OPENBLAS_CORETYPE=SKYLAKEX (set by Halo's relaunch)".
    public static var coreChoice: String {
        let env = ProcessInfo.processInfo.environment
        guard let value = env[coreTypeVariable], !value.isEmpty else { return "detected" }
        let origin = env[relaunchMarker] != nil ? "set by Halo's relaunch" : "environment"
        return "\(coreTypeVariable)=\(value) (\(origin))"
    }

    /// OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64".
    public static var config: String {
        guard let text = openblas_get_config() else { return "unknown" }
        return String(cString: text)
    }

    /// Makes OpenBLAS run each call on the calling thread, once per process. `gemm` calls this on every pool: it
    /// already runs one BLAS call per pool thread, OpenBLAS threads inside each would oversubscribe, and on a
    /// one-thread pool OpenBLAS's own split would change a piece of rows' sums (see `gemm`).
    public static func useCallerThreadsOnly() { _ = singleThreaded }
    private static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    /// Threads OpenBLAS may use inside one call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }
}
