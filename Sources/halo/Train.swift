import ArgumentParser
import Foundation
import HaloGraph
import HaloNN
import HaloTensor
import HaloTraining
import Logging

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a GCN or GraphSAGE model on a whole graph.",
        discussion: """
            Prints one line per epoch (loss, accuracies, epoch time) and, with --json-out, writes every epoch and the
            summary as JSON. Model selection uses the validation set only: the reported test accuracy is the one at
            the epoch of best validation accuracy.

            Kipf & Welling's GCN on Cora:
              halo train --dataset ../shared/datasets/cora --model gcn --hidden 16 --dropout 0.5 \\
                --input-dropout 0.5 --norm none --normalize-features --lr 0.01 --weight-decay 5e-4 --epochs 200
            """)

    @Option(name: .long, help: ArgumentHelp(
        "A dataset directory (halo-dataset format) or a synthetic spec.", valueName: "dir|synthetic:…"))
    var dataset: String = DatasetSource.defaultSynthetic

    @Option(help: "Model: gcn (symmetric-normalised) or sage (GraphSAGE mean).")
    var model: ModelConfiguration.Kind = .gcn

    @Option(help: "Number of graph layers.")
    var layers: Int = 2

    @Option(help: "Width of hidden layers.")
    var hidden: Int = 256

    @Option(help: "Dropout rate after each hidden layer.")
    var dropout: Float = 0.5

    @Option(help: "Dropout rate on the input features.")
    var inputDropout: Float = 0

    @Option(help: "Normalisation after hidden convolutions: layernorm or none.")
    var norm: ModelConfiguration.Normalization = .layerNorm

    @Flag(help: "Divide each node's features by their sum (Kipf & Welling's preprocessing).")
    var normalizeFeatures = false

    @Option(help: "Adam learning rate.")
    var lr: Float = 0.01

    @Option(help: "L2 weight decay added to the gradient (as torch.optim.Adam).")
    var weightDecay: Float = 0

    @Option(help: "Training epochs.")
    var epochs: Int = 200

    @Option(help: "Seed of every random draw (initialisation, dropout, synthetic data).")
    var seed: UInt64 = 0

    @Option(help: "Evaluate every N epochs (and after the last).")
    var evalEvery: Int = 1

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("Write the run's configuration, every epoch and the summary as JSON.", valueName: "file"))
    var jsonOut: String?

    @Flag(help: "Print only the summary, not one line per epoch.")
    var quiet = false

    func validate() throws {
        guard layers >= 1 else { throw ValidationError("--layers must be at least 1, got \(layers)") }
        guard hidden >= 1 else { throw ValidationError("--hidden must be at least 1, got \(hidden)") }
        guard (0..<1).contains(dropout) else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        guard (0..<1).contains(inputDropout) else { throw ValidationError("--input-dropout must be in [0, 1), got \(inputDropout)") }
        guard lr > 0 else { throw ValidationError("--lr must be positive, got \(lr)") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must be non-negative, got \(weightDecay)") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard evalEvery >= 1 else { throw ValidationError("--eval-every must be at least 1, got \(evalEvery)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        let logger = Logger(label: "halo.train")
        let threads = self.threads ?? ComputePool.availableCores
        let pool = ComputePool(threads: threads)
        BLASRuntime.threads = threads

        let loadWatch = Stopwatch()
        var data = try DatasetSource(dataset).load(pool: pool)
        if normalizeFeatures { data.features = data.features.rowNormalized() }
        logger.info("loaded \(data.name): \(data.nodeCount) nodes, \(data.graph.edgeCount) edges, \(data.featureWidth) features, \(data.classCount) classes in \(String(format: "%.2f", loadWatch.elapsed)) s")

        let config = TrainingConfiguration(
            dataset: dataset,
            model: ModelConfiguration(kind: model, layers: layers, hiddenWidth: hidden, dropout: dropout,
                                      inputDropout: inputDropout, normalization: norm),
            optimizer: Adam.Hyperparameters(learningRate: lr, weightDecay: weightDecay),
            epochs: epochs, seed: seed, evaluateEvery: evalEvery, threads: threads)
        let shard = RankShard.wholeGraph(data, aggregation: model.aggregation)
        let trainer = Trainer(configuration: config, shard: shard, classCount: data.classCount, pool: pool)
        let environment = RunEnvironment(
            ranks: 1, threadsPerRank: threads, blasCore: BLASRuntime.coreName, hostCores: ComputePool.availableCores,
            nodes: data.nodeCount, edges: data.graph.edgeCount, featureWidth: data.featureWidth, classes: data.classCount)

        let progress = ProgressPrinter(totalEpochs: epochs, enabled: !quiet)
        let report = try trainer.train(environment: environment) { progress.show($0) }
        progress.finish()

        print(report.summaryLine)
        if let jsonOut {
            try report.jsonData().write(to: URL(fileURLWithPath: jsonOut))
            logger.info("wrote \(jsonOut)")
        }
    }
}

extension ModelConfiguration.Kind: ExpressibleByArgument {}
extension ModelConfiguration.Normalization: ExpressibleByArgument {}

extension TrainingReport {
    var summaryLine: String {
        func pct(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "n/a" }
        return "best val \(pct(bestValidationAccuracy)) at epoch \(bestValidationEpoch.map(String.init) ?? "n/a")"
            + " | test at best val \(pct(testAccuracyAtBestValidation)) | final test \(pct(finalTestAccuracy))"
            + String(format: " | epoch median %.4f s | peak RSS %.1f MiB", epochTimeMedian, Double(peakRSSBytes) / 1_048_576)
    }
}
