/// How `gemm` cuts one product `op(A)·op(B)` (m × k times k × n) into single-threaded OpenBLAS calls.
///
/// Every OpenBLAS call copies ("packs") each element of both of its operands into cache-sized panels before its
/// micro-kernel runs, so a cut that hands the same operand to every thread packs that operand once per thread.
/// The tall-skinny products of training make that copy a large share of the work: a weight gradient Xᵀ·G
/// (F × 256 × nodes) cut into column blocks packed all of X on both threads, and with F = 100 it ran at 70–71 % of
/// the square rate on two threads against 75–80 % on one (OpenBLAS 0.3.21's SkylakeX, Haswell and Zen kernels on a
/// Zen 4, see docs/gemm.md). Cutting the inner dimension instead packs every element once and pays for it with a
/// reduction of the m × n partial products.
///
/// The choice counts elements moved (packing and reduction), not time, so it holds whatever the kernel family:
/// every family packs, and packing and reduction are both one pass over memory per element.
public enum GEMMPartition: Equatable, Sendable {
    /// Contiguous rows of C: each thread packs its rows of op(A) and all of op(B).
    case rows
    /// Contiguous columns of C: each thread packs all of op(A) and its columns of op(B).
    case columns
    /// Contiguous ranges of the inner dimension: each thread packs its slices of both operands into a partial
    /// product of its own, and the partials are added into C.
    case inner

    /// Pieces narrower than this waste most of a micro-kernel's register tile (OpenBLAS's tiles are 4–16 wide
    /// in every x86 family), so smaller products are not cut that way.
    public static let minimumBlock = 32

    /// The cut that moves the fewest elements for an m × n × k product on `threads` threads, among the cuts
    /// whose pieces are at least `minimumBlock` wide. With one thread (or nothing worth cutting) the answer is
    /// `.rows`, which with one piece is the plain call.
    public static func choose(m: Int, n: Int, k: Int, threads: Int) -> GEMMPartition {
        guard threads > 1 else { return .rows }
        var candidates: [(GEMMPartition, Double)] = []
        for cut in [GEMMPartition.rows, .columns, .inner] {
            let pieces = cut.pieces(m: m, n: n, k: k, threads: threads)
            guard pieces > 1 else { continue }
            candidates.append((cut, cut.elementsMoved(m: m, n: n, k: k, pieces: pieces)))
        }
        // Ties keep the earlier cut: rows before columns before inner, the order of least extra memory.
        return candidates.min { $0.1 < $1.1 }?.0 ?? .rows
    }

    /// How many pieces this cut makes of the dimension it cuts.
    func pieces(m: Int, n: Int, k: Int, threads: Int) -> Int {
        let length: Int
        switch self {
        case .rows: length = m
        case .columns: length = n
        case .inner: length = k
        }
        return min(threads, max(1, length / GEMMPartition.minimumBlock))
    }

    /// Elements read by packing over all pieces, plus the reduction's traffic for `.inner` (each partial is
    /// written once and read once when added into C).
    func elementsMoved(m: Int, n: Int, k: Int, pieces: Int) -> Double {
        let a = Double(m) * Double(k), b = Double(k) * Double(n), c = Double(m) * Double(n)
        let p = Double(pieces)
        switch self {
        case .rows: return a + p * b
        case .columns: return p * a + b
        case .inner: return a + b + 2 * (p - 1) * c
        }
    }
}
