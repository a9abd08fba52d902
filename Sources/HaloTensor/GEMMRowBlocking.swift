#if canImport(Glibc)
import Glibc
#endif

/// Cutting a tall product's rows into blocks that fit the L2 cache, one OpenBLAS call per block.
///
/// With `beta = 0` OpenBLAS first clears C and then adds the micro-kernel's tiles into it, so a call over all
/// rows streams C through memory three times; when the inner dimension is short (a first layer with 100
/// features) that traffic is a visible share of the time. Calls over blocks whose rows of A and C fit in half
/// the L2 cache keep it in cache. Whether that pays depends on the kernel family, so it is a measured decision:
/// on a Zen 4 host, m × 256 × 100 with OpenBLAS 0.3.21's Haswell and Zen kernels ran 7–13 % faster in blocks of
/// 256–1024 rows, and with its SkylakeX kernels 1–4 % slower (docs/gemm.md). `gemm` blocks only when told to
/// (`rowsPerCall`); `worthwhile(wholeRate:blockedRate:)` is the decision from two measured rates, which a host
/// calibration can make once and pass on.
public enum GEMMRowBlocking {
    /// Rows per call such that the rows of op(A) (k floats each) and of C (n floats each) fill at most half of
    /// an L2 cache of `cacheBytes` (the other half for OpenBLAS's packed op(B)), in multiples of
    /// `GEMMPartition.minimumBlock` so every block fills whole register tiles. Nil when the cache size is unknown
    /// or fewer than `minimumRows` fit: every call packs all of op(B) again, and calls of 32 rows ran 2048³ at
    /// 55 % of one call's rate (Zen 4, SkylakeX kernels).
    public static func rowsPerCall(n: Int, k: Int, cacheBytes: Int?) -> Int? {
        guard let cacheBytes, cacheBytes > 0, n + k > 0 else { return nil }
        let rows = cacheBytes / 2 / (MemoryLayout<Float>.size * (n + k))
        let tile = GEMMPartition.minimumBlock
        guard rows >= minimumRows else { return nil }
        return rows / tile * tile
    }

    /// Four register tiles of rows: fewer rows per call would repack op(B) for too little work.
    public static let minimumRows = 4 * GEMMPartition.minimumBlock

    /// Whether blocking is worth it, from the rates of the same product measured whole and in blocks: only when
    /// the blocked calls are faster by more than `margin` (a repeat measurement's spread on a shared machine), so
    /// noise never switches the call pattern.
    public static func worthwhile(wholeRate: Double, blockedRate: Double, margin: Double = 0.03) -> Bool {
        guard wholeRate > 0, blockedRate.isFinite else { return false }
        return blockedRate > wholeRate * (1 + margin)
    }
}
