import ArgumentParser
import Foundation
import HaloQuantization
import HaloTensor
import HaloTraining

/// Throughput of the quantized-message kernels next to this machine's copy bandwidth.
struct QuantBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantbench",
        abstract: "Measure stochastic quantize+pack and unpack+dequantize throughput (2/4/8 bits, fp32 rows).",
        discussion: """
            Encode GB/s counts the Float32 input rows read (rows × width × 4 B per second); decode GB/s counts the \
            Float32 rows written.

            Two working sets: 'memory' streams --megabytes of rows (larger than the caches, like a large graph's \
            messages); 'cache' re-encodes 256 KB that stays in L2 (the kernels' arithmetic limit).

            Copy is a STREAM-style copy of --megabytes in the same run, counted as STREAM does (read + write \
            bytes); compare encode GB/s with its read side, half of it.
            """)

    @Option(parsing: .upToNextOption, help: "Row widths to measure.")
    var widths: [Int] = [16, 128, 256, 602]

    @OptionGroup var threads: ComputeThreadsOption

    @Option(help: "Input size of the 'memory' working set, in MiB.")
    var megabytes: Int = 64

    @Option(help: "Repetitions; the best is reported.")
    var repeats: Int = 7

    @Flag(help: "Gather rows through a shuffled index list instead of a contiguous range.")
    var gather = false

    @OptionGroup var results: JSONResultsOption

    struct Result: Codable {
        var threads: [Int]
        var megabytes: Int
        var gather: Bool
        var copyGBps: [String: Double]
        var kernels: [KernelResult]
    }

    struct KernelResult: Codable {
        var threads: Int
        var workingSet: String
        var width: Int
        var bits: Int
        var rows: Int
        var messageBytes: Int
        var encodeSeconds: Double
        var decodeSeconds: Double
        var encodeGBps: Double
        var decodeGBps: Double
    }

    func validate() throws {
        try results.check()
        guard widths.allSatisfy({ $0 > 0 }) else { throw ValidationError("--widths must be positive") }
        guard megabytes > 0, repeats > 0 else { throw ValidationError("--megabytes and --repeats must be positive") }
    }

    func run() throws {
        let many = threads.count
        let threadCounts = many > 1 ? [1, many] : [1]
        let pools = threadCounts.map { ComputePool(threads: $0) }
        let randomness = QuantizationRandomness(seed: 1, epoch: 1, site: QuantizationRandomness.site(layer: 1, backward: false))
        var copy: [String: Double] = [:]
        for pool in pools { copy["\(pool.threads)"] = copyBandwidth(pool: pool) }

        var kernels: [KernelResult] = []
        for (setName, floats) in [("memory", megabytes << 18), ("cache", 1 << 16)] {
            for width in widths {
                let rows = max(1, floats / width)
                let m = Matrix(rows: rows, cols: width) { i, j in Float((i &* 7919 &+ j &* 104_729) % 2001) * 1e-3 - 1 }
                let ids = (0..<rows).map { Int32($0) }
                var selection = RowSelection.range(0..<rows)
                if gather {
                    var order = Array(0..<Int32(rows))
                    var generator = SystemRandomNumberGenerator()
                    order.shuffle(using: &generator)
                    selection = .indices(order)
                }
                // Repeat small working sets so each timing covers at least ~16 MB of rows.
                let inner = max(1, (16 << 20) / (4 * rows * width))
                var out = Matrix(rows: rows, cols: width)
                var buffer = [UInt8]()
                for pool in pools {
                    for bits in BitWidth.allCases {
                        let encode = best {
                            for _ in 0..<inner {
                                RowQuantizer.encode(m, rows: selection, bits: .uniform(bits), nodeIDs: ids,
                                                    randomness: randomness, into: &buffer, pool: pool)
                            }
                        } / Double(inner)
                        let decode = try bestThrowing {
                            for _ in 0..<inner {
                                try RowQuantizer.decode(buffer, bits: .uniform(bits), into: &out, rows: selection, pool: pool)
                            }
                        } / Double(inner)
                        let bytes = 4 * Double(rows * width)
                        kernels.append(KernelResult(
                            threads: pool.threads, workingSet: setName, width: width, bits: bits.rawValue, rows: rows,
                            messageBytes: buffer.count, encodeSeconds: encode, decodeSeconds: decode,
                            encodeGBps: bytes / encode / 1e9, decodeGBps: bytes / decode / 1e9))
                    }
                }
            }
        }

        for t in threadCounts {
            print(String(format: "threads %d: copy %.1f GB/s (read + write; read side %.1f GB/s)", t, copy["\(t)"]!, copy["\(t)"]! / 2))
            print("  set    width |" + BitWidth.allCases.map { " " + "b=\($0.bits) enc / dec".padding(toLength: 15, withPad: " ", startingAt: 0) + " |" }.joined())
            for setName in ["memory", "cache"] {
                for width in widths {
                    var line = "  " + setName.padding(toLength: 6, withPad: " ", startingAt: 0) + String(format: " %5d |", width)
                    for bits in BitWidth.allCases {
                        if let k = kernels.first(where: { $0.threads == t && $0.workingSet == setName && $0.width == width && $0.bits == bits.bits }) {
                            line += String(format: " %6.1f / %6.1f |", k.encodeGBps, k.decodeGBps)
                        }
                    }
                    print(line)
                }
            }
        }
        if results.path != nil {
            let result = Result(threads: threadCounts, megabytes: megabytes, gather: gather, copyGBps: copy, kernels: kernels)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            try results.write(encoder.encode(result))
        }
    }

    /// Best wall time of `body` over `repeats` runs after one warm-up.
    private func best(_ body: () -> Void) -> Double {
        body()
        var fastest = Double.infinity
        for _ in 0..<repeats {
            let w = Stopwatch()
            body()
            fastest = min(fastest, w.elapsed)
        }
        return fastest
    }

    private func bestThrowing(_ body: () throws -> Void) throws -> Double {
        try body()
        var fastest = Double.infinity
        for _ in 0..<repeats {
            let w = Stopwatch()
            try body()
            fastest = min(fastest, w.elapsed)
        }
        return fastest
    }

    /// STREAM copy `a = b` over --megabytes of floats, in GB/s of read + write bytes (write-allocate not counted).
    private func copyBandwidth(pool: ComputePool) -> Double {
        let n = megabytes << 18
        var a = [Float](repeating: 0, count: n)
        let b = [Float](repeating: 1, count: n)
        let t = best {
            a.withUnsafeMutableBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    let ap = UnsafeMutableRawPointer(pa.baseAddress!), bp = UnsafeRawPointer(pb.baseAddress!)
                    pool.forEachChunk(of: n / 16) { chunk in
                        for i in chunk {
                            (ap + 64 * i).storeBytes(of: (bp + 64 * i).loadUnaligned(as: SIMD16<Float>.self),
                                                     as: SIMD16<Float>.self)
                        }
                    }
                }
            }
        }
        return 8 * Double(n) / t / 1e9
    }
}
