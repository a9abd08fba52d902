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

    /// OpenBLAS's x86 kernels work through a call's rows of C in blocks (12 rows in the Haswell and Zen families) and
    /// sum the rows of a block in one order, a partial block's in another. So a row's bits depend on where its call
    /// starts, unless every call starts on a block boundary of the whole product: a multiple of this count from row
    /// 0 (a multiple of 4, 8, 12, 16 and 24 rows). `gemm` cuts its calls there, and a selection of rows that starts
    /// there gets exactly the whole product's rows (measured: 64-row pieces of a 300-row Aᵀ·B differed from the
    /// whole product in 128 rows on the Zen kernels, 12-, 24- and 48-row pieces in none).
    public static let rowQuantum = 48

    /// `rows` cut into `pieces` contiguous ranges, as equal as the cuts allow, each inner cut rounded down to a
    /// multiple of `rowQuantum` (counted from row 0, not from the range's start); some ranges may be empty.
    static func alignedCuts(of rows: Range<Int>, pieces: Int) -> [Range<Int>] {
        guard pieces > 1 else { return [rows] }
        var bounds = [rows.lowerBound]
        for p in 1..<pieces {
            let ideal = rows.lowerBound + rows.count * p / pieces
            bounds.append(max(ideal / rowQuantum * rowQuantum, bounds[p - 1]))
        }
        bounds.append(rows.upperBound)
        return zip(bounds, bounds.dropFirst()).map { $0..<max($0, $1) }
    }

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
