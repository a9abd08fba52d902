#if canImport(Glibc)
import Glibc
#endif

/// The cache sizes this host reports, for kernels that size their blocks to them instead of to a constant measured
/// on one machine (the project's hosts range from 512 KiB to 1 MiB of L2 per core).
public enum CacheSizes {
    /// This host's per-core L2 cache in bytes, or nil where the system does not say.
    public static var level2Bytes: Int? {
        #if canImport(Glibc)
        let bytes = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
        return bytes > 0 ? bytes : nil
        #else
        return nil
        #endif
    }
}
