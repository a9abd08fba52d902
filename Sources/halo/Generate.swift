import ArgumentParser
import Foundation
import HaloGraph
import HaloTensor
import HaloTraining

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a dataset (e.g. a synthetic graph) to a directory in the halo-dataset format.",
        discussion: """
            halo generate --dataset synthetic:nodes=1000000,degree=16 --out data/synth-1m
            """)

    @Option(help: ArgumentHelp("The dataset to write: a synthetic spec or a dataset directory.", valueName: "spec|dir"))
    var dataset: String = DatasetSource.defaultSynthetic

    @Option(help: ArgumentHelp("Output directory (created; must not hold a dataset already).", valueName: "dir"))
    var out: String

    @OptionGroup var threads: ComputeThreadsOption

    func run() throws {
        let pool = ComputePool(threads: threads.count)
        let watch = Stopwatch()
        let data = try DatasetSource(dataset).load(pool: pool, note: noteOnStandardError)
        try DatasetFormat.write(data, to: URL(fileURLWithPath: out))
        print("wrote \(data.name) to \(out): \(data.nodeCount) nodes, \(data.graph.edgeCount) directed edges, "
              + "\(data.featureWidth) features, \(data.classCount) classes (\(String(format: "%.2f", watch.elapsed)) s)")
    }
}
