import Foundation
import HaloTraining

/// The TensorBoard log of one run (`halo train --tensorboard DIR`): one event file, written by the rank that
/// writes the JSON report, one batch of records per epoch as the epoch finishes.
///
/// Epochs arrive through the trainer's non-throwing per-epoch callback, so a failed write is kept and thrown by
/// the next call that can throw (`record(_: TrainingReport)`, `finish`), as `ReportFile` does with its
/// background writes. Calls may come from a rank's thread and then from the main thread: a lock orders them.
public final class TrainingEventLog: @unchecked Sendable {
    private let file: EventFile
    private let clock: @Sendable () -> Double
    private let lock = NSLock()
    /// AdaQP re-assignments already written (reports repeat every earlier cycle). Guarded by `lock`.
    private var cyclesWritten = 0
    /// The first write that failed. Guarded by `lock`.
    private var failure: (any Error)?
    /// Whether an epoch has been written. Guarded by `lock`.
    private var holdsEpochs = false

    /// The event file's path.
    public var path: String { file.path }

    /// Creates the event file in `folder` (see `EventFile`), so a folder that cannot take it fails before a run.
    /// `clock` gives the wall time in seconds since 1970.
    public init(folder: String, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        self.clock = clock
        file = try EventFile(folder: folder, wallTime: clock())
    }

    /// Writes an epoch's scalars; a failure is thrown by the next `record(_: TrainingReport)` or `finish`.
    public func record(_ epoch: EpochRecord) {
        lock.withLock {
            guard failure == nil else { return }
            do {
                try file.append([TensorBoardEvent(wallTime: clock(), step: TrainingScalars.step(of: epoch),
                                                  content: .scalars(TrainingScalars.scalars(of: epoch)))])
                holdsEpochs = true
            } catch {
                failure = error
            }
        }
    }

    /// Writes what a report adds to the epochs: AdaQP's re-assignments not yet written. Reports of a run in
    /// progress and its final report can all be passed; each cycle is written once.
    public func record(_ report: TrainingReport) throws {
        try lock.withLock {
            if let failure { throw failure }
            let cycles = report.assignmentCycles ?? []
            guard cycles.count > cyclesWritten else { return }
            let now = clock()
            var events: [TensorBoardEvent] = []
            if cyclesWritten == 0, cycles[0].epoch > 0 {
                events.append(TensorBoardEvent(wallTime: now, step: 1, content: .scalars(TrainingScalars.initialAssignmentScalars)))
            }
            events += cycles[cyclesWritten...].map {
                TensorBoardEvent(wallTime: now, step: TrainingScalars.step(of: $0),
                                 content: .scalars(TrainingScalars.scalars(of: $0)))
            }
            try file.append(events)
            cyclesWritten = cycles.count
        }
    }

    /// After a run that failed: deletes the file if it holds no epoch (the run was refused or failed before its
    /// first epoch ended), so TensorBoard does not show an empty run; otherwise closes it with what it holds.
    public func abandon() {
        lock.withLock {
            if holdsEpochs { file.close() } else { file.remove() }
        }
    }

    /// Writes the final report's additions, flushes the file to disk and closes it.
    public func finish(_ report: TrainingReport) throws {
        try record(report)
        lock.withLock { file.close() }
    }
}
