import ArgumentParser
import Foundation
import HaloPartition
import HaloTensor

// Options that several subcommands take, declared once so that they are spelled, explained and checked alike.

/// How ranks communicate (`halo train`, `halo transport-selftest`).
enum TransportKind: String, ExpressibleByArgument, CaseIterable {
    /// Threads of this process.
    case local
    /// Processes started by mpirun, on one machine or several.
    case mpi
}

/// The partitioner (`halo partition`, and `halo train` when it partitions a dataset itself).
struct PartitionerOptions: ParsableArguments {
    @Option(name: .customLong("partition-method"),
            help: ArgumentHelp("How nodes are assigned to parts: metis, random or contiguous.", valueName: "method"))
    var method: PartitionMethod = .metis
}

/// Compute threads of a command that is not a training run (`generate`, `partition`, `microbench`, `quantbench`).
struct ComputeThreadsOption: ParsableArguments {
    @Option(name: .customLong("threads"), parsing: .unconditional, help: "Compute threads (default: all cores).")
    var requested: Int?

    func validate() throws {
        if let requested, requested < 1 { throw ValidationError("--threads must be at least 1, got \(requested)") }
    }

    /// The threads to use: as asked, or every core of this machine.
    var count: Int { requested ?? ComputePool.availableCores }
}

/// Where a measuring command writes its results as JSON (`microbench`, `quantbench`); checked before it measures.
struct JSONResultsOption: ParsableArguments {
    @Option(name: .customLong("json-out"), help: ArgumentHelp("Write the results as JSON.", valueName: "file"))
    var path: String?

    /// Refuses a destination that cannot be written, before any work.
    func check() throws {
        if let path { try UserFacingError.checkOutputFile(path) }
    }

    /// Writes `data` there, when a path was given.
    func write(_ data: Data) throws {
        if let path { try UserFacingError.write(data, to: path) }
    }
}
