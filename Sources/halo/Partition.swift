import ArgumentParser
import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import HaloTraining

extension PartitionMethod: ExpressibleByArgument {}

/// `halo partition`: cut a dataset into per-rank parts once, ahead of distributed training.
struct Partition: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Split a dataset into per-rank parts (inner nodes, halo, send lists) and write them to a directory.",
        discussion: """
            Each of the P parts is what one rank loads: its inner nodes (numbered central first — no in-neighbour \
            on another rank — then marginal), its halo (the in-neighbours owned by other ranks, grouped by owner), \
            the in-edges of its inner nodes in local numbering, global degrees so that normalisation matches a \
            single-machine run, the rows it must send to every peer, and the features, labels and split masks of \
            its inner nodes.

            Methods (--partition-method):
              metis       METIS k-way, minimising the edge cut (the default)
              random      uniform random parts: balanced, cuts ~(P-1)/P of all edges
              contiguous  blocks of consecutive ids: balanced; cut follows id order
            The cut is what crosses ranks every layer; random is the worst-case baseline.

            The output directory holds manifest.json (dataset fingerprint, partitioning id, method, seed, edge cut, \
            per-part counts, a size and XXH64 checksum for every file) and part-0/ … part-<P-1>/ with little-endian \
            binaries. A rank reads the manifest and only its own part, and refuses files whose size or checksum is \
            off, parts cut from a different dataset, or parts of another partitioning; `halo train` then checks the \
            parts against each other (ownership, split totals, degrees).

            The output is checked before anything is computed, and locked (.<name>.lock beside it) so that a second \
            `halo partition` into it fails at once. The parts are written into .<name>.tmp-<pid> beside it and \
            renamed into place when complete: an existing partition directory is replaced in one step, and a run \
            killed at any point leaves the previous partition intact. A directory holding only partition files \
            without a readable manifest (half-written) is replaced only with --force; any other non-empty directory \
            or a file is refused.

            Examples:
              halo partition --dataset ../shared/datasets/cora --parts 4 --out /tmp/cora-p4
              halo partition --dataset synthetic:nodes=1000000 --parts 8 --out /tmp/s8
              halo partition --dataset ../shared/datasets/cora --parts 4 --partition-method random
            Without --out only the statistics are printed.
            """)

    @Option(help: ArgumentHelp("The dataset: a directory in the halo-dataset format or a synthetic spec.", valueName: "dir|synthetic:…"))
    var dataset: String = DatasetSource.defaultSynthetic

    @Option(help: ArgumentHelp("Number of parts, one per rank.", valueName: "P"))
    var parts: Int

    @OptionGroup var partitioner: PartitionerOptions

    /// The option's name before it was shared with `halo train` (where `--method` is the training method); kept
    /// so that existing scripts go on working.
    @Option(name: .customLong("method"), help: .hidden)
    var legacyMethod: PartitionMethod?

    /// The partitioner asked for, by either name.
    var method: PartitionMethod { legacyMethod ?? partitioner.method }

    @Option(help: "Seed of METIS's randomised steps or of the random assignment (same seed, same parts).")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Directory to write the parts to (omit to print the statistics only).", valueName: "dir"))
    var out: String?

    @Flag(help: "Replace a half-written partition directory at --out (one without a readable manifest, e.g. left by a killed run of an older Halo).")
    var force = false

    @Flag(help: "After writing, load every part back as a rank would (all checks) and compare it with what was written.")
    var verify = false

    @OptionGroup var threads: ComputeThreadsOption

    func validate() throws {
        guard parts >= 1 else { throw ValidationError("--parts must be at least 1, got \(parts)") }
        if force && out == nil { throw ValidationError("--force replaces the output directory; it needs --out") }
    }

    func run() throws {
        // Checked and locked before any work, so a bad --out or a concurrent writer costs nothing.
        let output = try out.map { try PartitionOutput(URL(fileURLWithPath: $0), force: force) }
        defer { output?.release() }
        let pool = ComputePool(threads: threads.count)
        var watch = Stopwatch()
        let data = try DatasetSource(dataset).load(pool: pool, note: noteOnStandardError)
        print("loaded \(data.summary) (\(seconds(watch.elapsed)))")

        watch.restart()
        let memory = ResidentMemorySampler()
        let partitioning = try Partitioner.partition(graph: data.graph, parts: parts, method: method, seed: seed)
        let partitionTime = watch.elapsed
        let quality = partitioning.quality(of: data.graph)
        watch.restart()
        let built = Part.build(dataset: data, partitioning: partitioning)
        let buildTime = watch.elapsed
        let peak = Double(memory.stop()) / 1_073_741_824

        let undirected = data.graph.isSymmetric ? data.graph.edgeCount / 2 : nil
        print("\(method) into \(parts) part\(parts == 1 ? "" : "s") (seed \(seed)): partitioned in \(seconds(partitionTime)), "
              + "parts built in \(seconds(buildTime)), process peak " + String(format: "%.2f GiB", peak) + " resident")
        print("edge cut \(quality.cutEdges)" + (undirected.map { " of \($0) undirected edges" } ?? " node pairs")
              + String(format: " (%.2f%%)", 100 * quality.cutFraction)
              + " | \(quality.cutDirectedEdges) of \(quality.directedEdgeCount) directed edges cross parts"
              + String(format: " | balance %.3f (largest part / mean)", quality.balance))
        printTable(built)

        guard let out, let output else { return }
        watch.restart()
        let fingerprint = DatasetFingerprint(data)
        let manifest = try output.write(parts: built, partitioning: partitioning, quality: quality, fingerprint: fingerprint)
        let bytes = manifest.partList.reduce(0) { $0 + $1.files.reduce(0) { $0 + $1.bytes } }
        print("wrote \(out): manifest.json and part-0 … part-\(parts - 1), "
              + String(format: "%.1f MiB", Double(bytes) / 1_048_576)
              + ", dataset fingerprint \(fingerprint) (\(seconds(watch.elapsed)))")

        guard verify else { return }
        for part in built {
            watch.restart()
            let loaded = try PartitionStore.read(directory: out, rank: part.rank)
            guard loaded == part else { throw ValidationError("part \(part.rank) read back differs from the part written") }
            print("verified part-\(part.rank): loaded and checked in \(seconds(watch.elapsed)), identical to the part written")
        }
    }

    private func printTable(_ built: [Part]) {
        let header = ["rank", "inner", "central", "marginal", "halo", "in-edges", "sent rows"]
        var rows = built.map { p in
            [p.rank, p.innerCount, p.centralCount, p.marginalCount, p.haloCount, p.edgeCount, p.sendCount].map(String.init)
        }
        let total = [built.reduce(0) { $0 + $1.innerCount }, built.reduce(0) { $0 + $1.centralCount },
                     built.reduce(0) { $0 + $1.marginalCount }, built.reduce(0) { $0 + $1.haloCount },
                     built.reduce(0) { $0 + $1.edgeCount }, built.reduce(0) { $0 + $1.sendCount }]
        rows.append(["total"] + total.map(String.init))
        let widths = header.indices.map { c in max(header[c].count, rows.map { $0[c].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, s in String(repeating: " ", count: widths[c] - s.count) + s }.joined(separator: "  ")
        }
        print(line(header))
        for row in rows { print(line(row)) }
    }

    private func seconds(_ t: Double) -> String { String(format: "%.2f s", t) }
}
