import ArgumentParser
import Foundation
import HaloGraph
import HaloImport
import HaloTraining

extension EdgeDirection: ExpressibleByArgument {}

/// `halo import`: convert a dataset someone already has (an OGB download, a gnn-benchmark .npz) to the
/// halo-dataset format, once, so that `halo train --dataset DIR` and `halo partition` read it.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert an OGB node-property directory or a NumPy .npz graph to a halo-dataset directory.",
        discussion: """
            The output is what `halo train --dataset DIR` reads: checked as the dataset reader checks (ids in range, \
            finite features, labels, disjoint split masks), with an XXH64 checksum for every file. It is written \
            into .<name>.tmp-<host>-<pid> beside --out and renamed into place when complete, so a failed import leaves \
            nothing half-written; --out must not exist yet or be an empty directory.

            Edges (--edges): `undirected` (the default) stores every edge both ways and merges duplicates, as OGB's \
            loader does for ogbn-products and ogbn-proteins and OGB's examples do for ogbn-arxiv and \
            ogbn-papers100M (`to_symmetric`); `as-stored` keeps the direction of the source. Self loops are dropped \
            either way (normalisation adds one per node).

            Where the source has no split, one is generated from --split and --seed: stratified by class for \
            single-label data, random for multi-label data. See docs/importing.md for the formats and for a \
            few-line Python recipe that writes an .npz from a PyG or DGL graph.

            Examples:
              halo import ogb dataset/ogbn_arxiv --out data/arxiv
              halo import ogb dataset/ogbn_products --out data/products
              halo import npz cora_ml.npz --out data/cora-ml --split 0.6,0.2,0.2 --seed 1
              halo train --dataset data/arxiv --model sage --epochs 100
            """,
        subcommands: [ImportOGB.self, ImportNPZ.self])
}

/// The options every importer takes.
struct ImportOutputOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Output directory in the halo-dataset format (must not exist yet, or be empty).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("How edges are stored: undirected (both ways; the default) or as-stored.", valueName: "undirected|as-stored"))
    var edges: EdgeDirection = .undirected

    @Option(help: ArgumentHelp("Train,validation,test fractions of the labelled nodes for a generated split, used only when the source has none.",
                               valueName: "train,val,test"))
    var split: String = SplitFractions.standard.description

    @Option(help: "Seed of a generated split (same seed, same split on every machine).")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Dataset name recorded in meta.json (default: the source's file or directory name).", valueName: "name"))
    var name: String?

    func fractions() throws -> SplitFractions {
        guard let fractions = SplitFractions(parsing: split) else {
            throw ValidationError("--split \(split): expected three fractions train,val,test in [0, 1] with train > 0 and a sum of at most 1, e.g. 0.6,0.2,0.2")
        }
        return fractions
    }

    /// Checks --out before anything is read, converts, writes beside --out and renames the result into place.
    func run(_ convert: () throws -> ImportedDataset) throws {
        let output = try ImportDestination(path: out)
        for leftover in output.removedLeftovers {
            print("removed \(leftover), the staging folder of an import that did not finish")
        }
        let watch = Stopwatch()
        let imported = try convert()
        for note in imported.notes { print(note) }
        try output.write(imported)
        print("wrote \(out): \(imported.dataset.summary) (\(String(format: "%.2f", watch.elapsed)) s)")
    }
}

struct ImportOGB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ogb",
        abstract: "Convert an OGB node-property-prediction directory, in OGB's CSV layout (ogbn-arxiv, ogbn-products, …) or binary layout (ogbn-papers100M).",
        discussion: """
            DIR is the folder OGB's downloader unpacks (e.g. dataset/ogbn_arxiv), holding
              raw/num-node-list.csv.gz   the node count
              raw/edge.csv.gz            one `source,destination` per line
              raw/node-feat.csv.gz       one row of features per node (dense)
              raw/node-label.csv.gz      one class per node (NaN or -1: unlabelled), or 0/1 per task (multi-label)
              split/<scheme>/{train,valid,test}.csv.gz   node ids (optional: without it a split is generated)
            Each file may be gzip-compressed or plain. raw/num-edge-list is checked when present. Files are streamed \
            through fixed buffers: the memory needed is about that of the dataset itself plus its edge list.

            OGB's binary layout (as ogbn-papers100M ships) is read instead when raw/data.npz exists and raw/edge.csv \
            does not:
              raw/data.npz        num_nodes_list (1,), edge_index (2, E) integers,
                                  node_feat (N, F) float16/32/64, num_edges_list
                                  (checked when present); other members unread
              raw/node-label.npz  node_label (N, 1): classes, NaN unlabelled;
                                  or (N, tasks): 0/1 targets
              split/<scheme>/{train,valid,test}.csv.gz   as above
            edge_index and node_feat are inflated and converted 1 MiB at a time, into the edge lists and straight \
            into the float32 features; node_label is inflated whole (see docs/importing.md for the memory).

            Examples:
              halo import ogb dataset/ogbn_arxiv --out data/arxiv
              halo import ogb dataset/ogbn_products --out data/products --split-scheme sales_ranking
              halo import ogb mytree --out data/mine --edges as-stored --split 0.8,0.1,0.1 --seed 3
            """)

    @Argument(help: ArgumentHelp("The OGB dataset directory (holding raw/ and split/).", valueName: "dir"))
    var directory: String

    @Option(help: ArgumentHelp("The split/ subfolder to use (default: the only one there).", valueName: "scheme"))
    var splitScheme: String?

    @OptionGroup var output: ImportOutputOptions

    func run() throws {
        var options = OGBImporter.Options()
        options.direction = output.edges
        options.splitScheme = splitScheme
        options.generatedSplit = try output.fractions()
        options.seed = output.seed
        options.name = output.name
        try output.run { try OGBImporter.importDataset(directory: URL(fileURLWithPath: directory), options: options) }
    }
}

struct ImportNPZ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "npz",
        abstract: "Convert a NumPy .npz graph in the gnn-benchmark layout (adj_*, attr_* or attr_matrix, labels).",
        discussion: """
            FILE is an .npz (numpy.savez or savez_compressed) holding SciPy CSR arrays:
              adj_indptr, adj_indices, adj_shape [, adj_data]        the adjacency (row i: the nodes i links to)
              attr_matrix  or  attr_indptr, attr_indices, attr_data, attr_shape   dense or sparse features
              labels                                                 (n,) class ids, or (n, c) 0/1 targets
              train_mask, val_mask, test_mask                        optional booleans; else --split/--seed
            as in Shchur et al.'s gnn-benchmark files (cora_ml.npz, amazon_electronics_computers.npz, …). Other \
            members are ignored. Arrays are little-endian bool, integer or float; anything else is refused with \
            the member named. docs/importing.md has a tested recipe writing such a file from PyG or DGL.

            Examples:
              halo import npz cora_ml.npz --out data/cora-ml
              halo import npz amazon_electronics_computers.npz --out data/computers --split 0.1,0.1,0.8 --seed 2
            """)

    @Argument(help: ArgumentHelp("The .npz file.", valueName: "file"))
    var file: String

    @OptionGroup var output: ImportOutputOptions

    func run() throws {
        var options = NPZImporter.Options()
        options.direction = output.edges
        options.generatedSplit = try output.fractions()
        options.seed = output.seed
        options.name = output.name
        try output.run { try NPZImporter.importDataset(file: URL(fileURLWithPath: file), options: options) }
    }
}
