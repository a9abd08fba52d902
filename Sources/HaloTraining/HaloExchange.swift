import HaloNN
import HaloTensor

/// A rank's halo exchange over a whole training run: the `BoundaryExchange` a layer talks to, plus the lifecycle
/// the trainer drives. Built by `ExchangeFactory` from a schedule and a precision policy, so the trainer never needs
/// to know which method it runs.
///
/// Every lifecycle call is collective: all ranks make it at the same point of training.
public protocol HaloExchange: BoundaryExchange {
    /// Before each training epoch (AdaQP's assignment cycles communicate here).
    func beginEpoch(_ epoch: Int) throws
    /// This rank's communication accounting since the last call, then reset.
    func takeStatistics() -> CommunicationStatistics
    /// After each training step, told where this rank's time went in it: the schedule's per-site record of the
    /// epoch, summed over ranks (nil for schedules that have none).
    func endEpoch(_ epoch: Int, timing: EpochTiming) throws -> [PipelineSiteRecord]?
    /// After the last epoch: every message still in flight is received (pipelined schedules), so no rank ends
    /// with traffic outstanding.
    func finish() throws
    /// Adds what the exchange decided over the run (assignment cycles, …) to the report.
    func contribute(to report: inout TrainingReport)
    /// Writes what the exchange carries from one epoch to the next (cached blocks, bit widths, traced variances)
    /// into a checkpoint. Collective, after the same epoch on every rank: a pipelined exchange first receives every
    /// message still in flight, so that what it writes is all there is.
    func saveState(into writer: inout ByteWriter) throws
    /// Takes back what `saveState` wrote after `epochsDone` epochs, before the first epoch of a resumed run (after
    /// any layer-0 precomputation). Throws on bytes that do not fit this exchange (the checkpoint's checksum makes
    /// that a mismatch of settings or a forged file, not corruption).
    func restoreState(from reader: inout ByteReader, epochsDone: Int) throws
    /// Counts what the exchange keeps between epochs: send lists (graph structure), caches and early messages.
    func tally(into tally: inout MemoryTally)
}

/// A single rank has nothing to exchange.
extension NoBoundaryExchange: HaloExchange {
    public func beginEpoch(_ epoch: Int) throws {}
    public func takeStatistics() -> CommunicationStatistics { CommunicationStatistics() }
    public func endEpoch(_ epoch: Int, timing: EpochTiming) throws -> [PipelineSiteRecord]? { nil }
    public func finish() throws {}
    public func contribute(to report: inout TrainingReport) {}
    public func saveState(into writer: inout ByteWriter) throws {}
    public func restoreState(from reader: inout ByteReader, epochsDone: Int) throws {}
    public func tally(into tally: inout MemoryTally) {}
}
