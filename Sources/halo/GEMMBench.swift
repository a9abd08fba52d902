import Foundation
import HaloTensor
import HaloTraining

/// The GEMM part of `halo microbench`: the products training runs (tall-skinny, one dimension the node count)
/// next to a square product, each on one thread and on the pool, and each as a fraction of the square rate on
/// the same threads, the figure that says whether a shape loses to OpenBLAS's blocking.
struct GEMMBench {
    /// m × n × k with the transposes of `gemm`.
    struct Shape {
        var m: Int, n: Int, k: Int
        var transposeA = false, transposeB = false
        var role: String
    }

    /// Side of the square product every shape is compared with.
    static let squareSide = 2048

    /// The products of a GCN layer of width `width` on `rows` nodes, and of a first layer on `features` input
    /// columns (when given and different from `width`), then the square product.
    static func shapes(rows: Int, width: Int, features: Int?) -> [Shape] {
        var shapes = [
            Shape(m: rows, n: width, k: width, role: "hidden layer forward X·W"),
            Shape(m: rows, n: width, k: width, transposeB: true, role: "input gradient G·Wᵀ"),
            Shape(m: width, n: width, k: rows, transposeA: true, role: "weight gradient Xᵀ·G"),
        ]
        if let features, features != width {
            shapes.append(Shape(m: rows, n: width, k: features, role: "first layer forward X·W"))
            shapes.append(Shape(m: features, n: width, k: rows, transposeA: true, role: "first layer weight gradient Xᵀ·G"))
        }
        shapes.append(Shape(m: squareSide, n: squareSide, k: squareSide, role: "square"))
        return shapes
    }

    var shapes: [Shape]
    var repeats: Int

    /// Every shape on every pool; the square product's rates are the denominators of the same pool's fractions.
    func run(pools: [ComputePool]) -> [Microbench.GEMMResult] {
        var results: [Microbench.GEMMResult] = []
        var measuredThreads = Set<Int>()
        for pool in pools where measuredThreads.insert(pool.threads).inserted {
            var measured = shapes.map { measure($0, pool: pool) }
            if let square = measured.last(where: { $0.m == Self.squareSide && $0.n == Self.squareSide && $0.k == Self.squareSide }) {
                for i in measured.indices {
                    measured[i].fractionOfSquare = measured[i].gflops / square.gflops
                    measured[i].fractionOfSquareByCPUTime = measured[i].gflopsByCPUTime / square.gflopsByCPUTime
                }
            }
            results += measured
        }
        return results
    }

    private func measure(_ shape: Shape, pool: ComputePool) -> Microbench.GEMMResult {
        let a = shape.transposeA ? Matrix(rows: shape.k, cols: shape.m, repeating: 0.5)
                                 : Matrix(rows: shape.m, cols: shape.k, repeating: 0.5)
        let b = shape.transposeB ? Matrix(rows: shape.n, cols: shape.k, repeating: 0.25)
                                 : Matrix(rows: shape.k, cols: shape.n, repeating: 0.25)
        var c = Matrix(rows: shape.m, cols: shape.n)
        let (wall, cpu) = times {
            gemm(a, b, into: &c, transposeA: shape.transposeA, transposeB: shape.transposeB, pool: pool)
        }
        let flops = 2 * Double(shape.m) * Double(shape.n) * Double(shape.k)
        let partition = GEMMPartition.choose(m: shape.m, n: shape.n, k: shape.k, threads: pool.threads)
        var result = Microbench.GEMMResult(
            m: shape.m, n: shape.n, k: shape.k, transposeA: shape.transposeA, transposeB: shape.transposeB,
            role: shape.role, threads: pool.threads, partition: "\(partition)",
            seconds: wall.min()!, medianSeconds: wall.median, cpuSeconds: cpu.min()!,
            gflops: flops / wall.min()! / 1e9, medianGflops: flops / wall.median / 1e9,
            gflopsByCPUTime: flops * Double(pool.threads) / cpu.min()! / 1e9)
        // Products cut by rows into several L2-sized blocks per thread are also timed in blocks: the measurement
        // `GEMMRowBlocking.worthwhile` decides from.
        if partition == .rows,
           let rows = GEMMRowBlocking.rowsPerCall(n: shape.n, k: shape.k, cacheBytes: CacheSizes.level2Bytes),
           shape.m >= 4 * rows * pool.threads {
            let (_, blockedCPU) = times {
                gemm(a, b, into: &c, transposeA: shape.transposeA, transposeB: shape.transposeB, pool: pool,
                     rowsPerCall: rows)
            }
            let blockedRate = flops * Double(pool.threads) / blockedCPU.min()! / 1e9
            result.blockedRowsPerCall = rows
            result.blockedGflopsByCPUTime = blockedRate
            // The margin training's decision uses (`KernelRates.forwardRowBlockingPays`).
            result.blockedWorthwhile = GEMMRowBlocking.worthwhile(wholeRate: result.gflopsByCPUTime, blockedRate: blockedRate,
                                                                  margin: KernelRates.rowBlockingMargin)
        }
        return result
    }

    /// Wall and process CPU seconds of each of `repeats` runs of `body`, after one warm-up run (first-touch page
    /// faults and OpenBLAS's buffers).
    private func times(_ body: () -> Void) -> (wall: [Double], cpu: [Double]) {
        body()
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<max(repeats, 1) {
            let cpuStart = ProcessCPUClock.seconds()
            let watch = Stopwatch()
            body()
            wall.append(watch.elapsed)
            cpu.append(ProcessCPUClock.seconds() - cpuStart)
        }
        return (wall, cpu)
    }

    /// One line per result: the rates and the fractions of the square rate on the same threads.
    static func lines(_ results: [Microbench.GEMMResult]) -> [String] {
        results.map { g in
            var line = String(format: "GEMM %d×%d×%d%@%@, %d thread%@ (%@ cut): %.1f GFLOP/s best, %.1f median, %.1f by CPU time",
                              g.m, g.n, g.k, g.transposeA ? " Aᵀ" : "", g.transposeB ? " Bᵀ" : "", g.threads,
                              g.threads == 1 ? "" : "s", g.partition, g.gflops, g.medianGflops, g.gflopsByCPUTime)
            if let wall = g.fractionOfSquare, let cpu = g.fractionOfSquareByCPUTime {
                line += String(format: " | %.0f%% of square (%.0f%% by CPU time)", 100 * wall, 100 * cpu)
            }
            if let rows = g.blockedRowsPerCall, let rate = g.blockedGflopsByCPUTime, let worthwhile = g.blockedWorthwhile {
                line += String(format: " | in calls of %d rows %.1f by CPU time (%@)", rows, rate,
                               worthwhile ? "worth it here" : "not worth it here")
            }
            return line + " — " + g.role
        }
    }
}

extension Microbench {
    struct GEMMResult: Codable {
        var m: Int, n: Int, k: Int
        var transposeA: Bool, transposeB: Bool
        /// Which product of training this shape is.
        var role: String
        var threads: Int
        /// How `gemm` cut the product over the threads (`GEMMPartition`).
        var partition: String
        /// Best and median wall time over the repetitions.
        var seconds: Double
        var medianSeconds: Double
        /// The least process CPU time of one repetition (all threads).
        var cpuSeconds: Double
        /// From the best wall time.
        var gflops: Double
        var medianGflops: Double
        /// FLOPs per CPU second times the threads: the rate with the cores to itself. On a machine shared with
        /// other jobs the wall-clock rate counts the time spent waiting for a core; this does not.
        var gflopsByCPUTime: Double
        /// This shape's rate over the square product's on the same threads (wall clock, and by CPU time).
        var fractionOfSquare: Double?
        var fractionOfSquareByCPUTime: Double?
        /// The same product in calls of `blockedRowsPerCall` rows (`GEMMRowBlocking`), its rate by CPU time, and
        /// whether `GEMMRowBlocking.worthwhile` takes it; absent for shapes not cut by rows into several blocks.
        var blockedRowsPerCall: Int?
        var blockedGflopsByCPUTime: Double?
        var blockedWorthwhile: Bool?
    }
}
