import ArgumentParser
import HaloTraining

/// `halo train`'s checkpoint options, checked before any work.
struct CheckpointOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Save the run's state into this folder (created if missing; refused if it already holds a checkpoint).",
        discussion: """
        Parameters, Adam's state, the epoch, the method's state across epochs (AdaQP's traced variances and widths, \
        pipelined caches and in-flight messages) and the epochs' records. Saved every --checkpoint-every epochs, \
        after the last one and when the run is stopped by SIGINT/SIGTERM; the previous checkpoint is removed only \
        once the new one is complete. Each rank writes its own file (ranks on several hosts need no shared folder).
        """,
        valueName: "dir"))
    var checkpoint: String?

    @Option(parsing: .unconditional, help: "Epochs between checkpoints.")
    var checkpointEvery: Int = 10

    @Option(help: ArgumentHelp(
        "Continue the run saved in this folder, and go on saving into it.",
        discussion: """
        Give the saved run's settings (data, model, method, seed, number of ranks); --epochs may be raised. \
        Vanilla training resumed gives the same losses and parameters as the uninterrupted run.
        """,
        valueName: "dir"))
    var resume: String?

    func validate() throws {
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1, got \(checkpointEvery)") }
        if let checkpoint, let resume, checkpoint != resume {
            throw ValidationError("--resume \(resume) goes on saving into the folder it resumes from; omit --checkpoint \(checkpoint) or give the same folder")
        }
    }

    /// The folder checked and the plan, or nil without checkpoint options. `managesFolder`: this rank checks the
    /// saved run's settings (rank 0; every rank has its own folder to check). `configuration` and `ranks` are
    /// the run's, compared with a checkpoint it resumes.
    func plan(configuration: TrainingConfiguration, ranks: Int, managesFolder: Bool) throws -> CheckpointPlan? {
        guard let path = resume ?? checkpoint else { return nil }
        // A `CheckpointError` names the folder and what to do; it needs no usage text after it.
        let directory = try CheckpointDirectory(path: path, resuming: resume != nil)
        if resume != nil && managesFolder {
            try directory.readManifest().checkResumable(as: configuration, worldSize: ranks, path: path)
        }
        return CheckpointPlan(directory: directory, every: checkpointEvery, resume: resume != nil)
    }
}
