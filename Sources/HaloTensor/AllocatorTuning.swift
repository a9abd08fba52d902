import CSystem

/// Process-level tuning of the C allocator for training loops.
///
/// Every epoch allocates and frees the same large activation matrices. glibc serves blocks above its mmap
/// threshold with fresh `mmap`s and returns them on free, so each epoch pays a page fault per 4 KiB touched again
/// (measured: ~15% of an epoch on Coauthor-Physics). Raising the thresholds keeps freed blocks in the heap for reuse.
public enum AllocatorTuning {
    /// Call once at program start, before large allocations.
    public static func keepLargeBlocksForReuse() {
        #if os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, 512 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
        _ = mallopt(M_TOP_PAD, 64 << 20)
        #endif
    }
}
