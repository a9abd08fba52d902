import CSystem

/// Process-level tuning of the C allocator for training loops.
///
/// Every epoch allocates and frees the same large activation matrices. glibc serves blocks above its mmap
/// threshold with fresh `mmap`s and returns them on free, so each epoch pays a page fault per 4 KiB touched again
/// (measured: ~15% of an epoch on Coauthor-Physics). Raising the thresholds keeps freed blocks in the heap for reuse.
///
/// Both thresholds are as high as `mallopt`'s `int` argument allows (2 GiB): a 1M-node graph's 1M × 256 activations
/// are 1 GiB each, and at the former 512 MiB every one of them was a fresh mapping. On this project's Zen 3 VM a
/// fresh GiB costs ~0.9 s of page faults; raising the thresholds made that graph's GCN 3 × 256 epoch 15.2 s instead
/// of 19.9 (24.3 s against 30.3 with evaluation), with a lower peak (4,615 against 4,813 MiB).
///
/// Only the main thread's arena grows without bound: blocks another thread's arena cannot hold in its heap (64 MiB
/// in glibc) are mapped afresh whatever the thresholds (measured for 1 GiB). Ranks as threads allocate their
/// activations on their own threads, so every thread shares the main arena (`M_ARENA_MAX` 1): two ranks as threads
/// on the 1M-node graph then stepped in 25.0 s instead of 28.7 (8.1 M page faults in the run instead of 14.2 M),
/// and four on Amazon-Photo were no slower for the shared lock (60.0–68.8 against 66.8–70.4 ms a step).
public enum AllocatorTuning {
    /// Call once at program start, before large allocations.
    public static func keepLargeBlocksForReuse() {
        #if os(Linux)
        // Older glibc releases refuse a threshold above 32 MiB (half their largest arena heap) and would keep the
        // default; then the largest it takes.
        if mallopt(M_MMAP_THRESHOLD, Int32.max) == 0 { _ = mallopt(M_MMAP_THRESHOLD, 32 << 20) }
        _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
        _ = mallopt(M_TOP_PAD, 64 << 20)
        _ = mallopt(M_ARENA_MAX, 1)
        #endif
    }
}
