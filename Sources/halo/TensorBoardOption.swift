import ArgumentParser
import HaloTensorBoard

/// `halo train --tensorboard DIR`: where the run's TensorBoard events go.
struct TensorBoardOption: ParsableArguments {
    @Option(name: .customLong("tensorboard"), help: ArgumentHelp(
        "Write TensorBoard events (loss, accuracies, epoch time and its parts, bytes, bit widths, staleness) to a new event file in this folder.",
        discussion: """
        The folder is created if missing and the file is created before any work, so a folder that cannot take it \
        fails at once; a run that fails before its first epoch ends deletes the file again. One file per run, \
        written by rank 0 after every epoch. View with: tensorboard --logdir DIR
        """,
        valueName: "dir"))
    var folder: String?

    /// The run's event log, created now; nil without --tensorboard.
    func openLog() throws -> TrainingEventLog? {
        guard let folder else { return nil }
        do {
            return try TrainingEventLog(folder: folder)
        } catch let error as EventFileError {
            throw ValidationError("--tensorboard \(error.path): \(error.reason)")
        }
    }
}
