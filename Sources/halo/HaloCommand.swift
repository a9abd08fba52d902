import ArgumentParser
import HaloTensor

@main
struct HaloCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "halo",
        abstract: "Distributed full-graph GNN training with quantized, overlapped and pipelined messages.",
        discussion: """
            Datasets are named by a directory in the halo-dataset format, or generated on the fly from a spec:
              synthetic:nodes=100000,classes=8,features=64,degree=16,homophily=0.8,seed=1
            Start with `halo train --help`.
            """,
        subcommands: [Train.self, Report.self, Partition.self, Generate.self, Import.self, Microbench.self, Calibrate.self, QuantBench.self, TransportSelfTestCommand.self],
        defaultSubcommand: nil)

    static func main() {
        // OpenBLAS picks its kernels when it loads; on some AVX-512 hosts that needs an environment variable set
        // before the process starts, so this may re-execute the program once.
        BLASRuntime.relaunchWithTunedCoreIfNeeded()
        AllocatorTuning.keepLargeBlocksForReuse()
        // `ParsableCommand.main`, with errors made readable before ArgumentParser prints them.
        do {
            // `halo train --config/--recipe`: the file's options go before the command line's, which override them.
            let arguments = try TrainOptionsFile.expand(Array(CommandLine.arguments.dropFirst()))
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            exit(withError: UserFacingError.readable(error))
        }
    }
}
