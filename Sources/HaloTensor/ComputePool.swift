import Dispatch

/// The one parallel-for of Halo: every multithreaded kernel splits its rows through a `ComputePool`.
///
/// A pool is a value, not a global: a rank running as a thread of a multi-rank process gets a pool with its share of
/// the cores, so four in-process ranks on two cores do not oversubscribe the machine. Work is split into at most
/// `threads` contiguous chunks (contiguous rows keep each thread's writes on its own cache lines) and run on
/// Dispatch's shared worker threads, which are started once per process.
public struct ComputePool: Sendable {
    /// How many chunks a loop is split into at most.
    public let threads: Int

    public init(threads: Int) {
        precondition(threads >= 1, "a compute pool needs at least one thread, got \(threads)")
        self.threads = threads
    }

    /// A pool of one thread: everything runs inline on the caller.
    public static let serial = ComputePool(threads: 1)

    /// A pool using every core of the machine.
    public static var allCores: ComputePool { ComputePool(threads: ComputePool.availableCores) }

    /// Cores available to this process.
    public static var availableCores: Int { max(1, onlineProcessorCount()) }

    /// Runs `body` over `0..<count` split into contiguous ranges of at least `grain` items each.
    ///
    /// `body` must only write state owned by its range; that is what makes calls from many chunks safe.
    @inlinable
    public func forEachChunk(of count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threads, max(1, count / max(grain, 1)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        runConcurrently(chunks, body) { c in
            let lo = count * c / chunks
            let hi = count * (c + 1) / chunks
            return lo..<hi
        }
    }

    /// Runs `body` over `0..<count` split into ranges, where the cost of item `i` is `cost(i)`; ranges are cut so
    /// that each holds about the same total cost (for CSR rows of very different lengths).
    public func forEachBalancedChunk(of count: Int, prefixCost: (Int) -> Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let total = prefixCost(count) - prefixCost(0)
        let chunks = min(threads, count)
        if chunks == 1 || total <= 0 {
            forEachChunk(of: count, body)
            return
        }
        // Chunk c starts at the first row whose prefix cost reaches c/chunks of the total (binary search).
        var bounds = [Int](repeating: count, count: chunks + 1)
        bounds[0] = 0
        let base = prefixCost(0)
        for c in 1..<chunks {
            let target = base + total * c / chunks
            var lo = bounds[c - 1], hi = count
            while lo < hi {
                let mid = (lo + hi) / 2
                if prefixCost(mid) < target { lo = mid + 1 } else { hi = mid }
            }
            bounds[c] = lo
        }
        let cuts = bounds
        runConcurrently(chunks, body) { c in cuts[c]..<cuts[c + 1] }
    }
}

/// Runs `body(range(c))` for `c` in `0..<chunks` on Dispatch's worker threads and returns when all are done.
///
/// Dispatch demands a `@Sendable` closure, but Halo's kernels hand in non-escaping closures that write through raw
/// pointers into disjoint row ranges. The closure never escapes this call (concurrentPerform is synchronous), and
/// disjointness is the documented contract of `forEachChunk`, so passing it across threads is sound.
@usableFromInline
func runConcurrently(_ chunks: Int, _ body: (Range<Int>) -> Void, _ range: @escaping @Sendable (Int) -> Range<Int>) {
    withoutActuallyEscaping(body) { escapable in
        let shared = UncheckedSendableBox(escapable)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let r = range(c)
            if !r.isEmpty { shared.value(r) }
        }
    }
}

/// Carries a value into a `@Sendable` closure where the caller guarantees race freedom by construction.
@usableFromInline
struct UncheckedSendableBox<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @usableFromInline init(_ value: Value) { self.value = value }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Processors currently online.
func onlineProcessorCount() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
