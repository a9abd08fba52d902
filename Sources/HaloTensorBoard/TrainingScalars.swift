import HaloTraining

/// The TensorBoard scalars of a training run: what `--json-out` records, under tags grouped the way people compare
/// runs (loss, accuracy, time, bytes, bit widths, staleness).
///
/// Steps are epochs counted from 1, as `halo train` prints them (the JSON's `epoch` is 0-based).
public enum TrainingScalars {
    /// The step of the epoch a record describes.
    public static func step(of record: EpochRecord) -> Int64 { Int64(record.epoch + 1) }

    /// One epoch's scalars. Accuracies appear on evaluated epochs only; the communication figures whenever the
    /// run has them (with one rank they are zero, and written as such so every run has the same charts).
    public static func scalars(of record: EpochRecord) -> [TensorBoardScalar] {
        var scalars: [TensorBoardScalar] = [TensorBoardScalar(tag: "loss/train", value: Float(record.loss))]
        let accuracies: [(String, Double?)] = [
            ("accuracy/train", record.trainAccuracy), ("accuracy/validation", record.validationAccuracy),
            ("accuracy/test", record.testAccuracy),
        ]
        for (tag, value) in accuracies {
            if let value { scalars.append(TensorBoardScalar(tag: tag, value: Float(value))) }
        }
        scalars += [
            TensorBoardScalar(tag: "time/epoch_s", value: Float(record.time)),
            TensorBoardScalar(tag: "time/compute_s", value: Float(record.computeTime)),
            TensorBoardScalar(tag: "time/halo_wait_s", value: Float(record.communicationWaitTime)),
            TensorBoardScalar(tag: "time/allreduce_s", value: Float(record.allReduceTime)),
            TensorBoardScalar(tag: "time/quantize_s", value: Float(record.quantizeTime)),
            TensorBoardScalar(tag: "bytes/sent", value: Float(record.bytesSent)),
            TensorBoardScalar(tag: "bytes/halo_forward", value: Float(record.forwardBytesSent)),
            TensorBoardScalar(tag: "bytes/halo_backward", value: Float(record.backwardBytesSent)),
        ]
        if let span = record.gradientReductionSpan {
            scalars.append(TensorBoardScalar(tag: "time/grad_allreduce_span_s", value: Float(span)))
        }
        if let hidden = record.hiddenCommunicationFraction {
            scalars.append(TensorBoardScalar(tag: "communication/hidden_fraction", value: Float(hidden)))
        }
        if let sites = record.pipeline, !sites.isEmpty {
            scalars += pipelineScalars(sites)
        }
        return scalars
    }

    /// The widths a message or row can travel at, in the order charts list them.
    static let widths = ["2", "4", "8", "32"]

    /// Pipelined methods: the share of messages sent at each bit width (PipeQS moves them per link), the mean age
    /// of the halo blocks used and the share of uses that bypassed a late link.
    static func pipelineScalars(_ sites: [PipelineSiteRecord]) -> [TensorBoardScalar] {
        var scalars: [TensorBoardScalar] = []
        var messages: [String: Int] = [:]
        for site in sites { messages.merge(site.messagesByBits, uniquingKeysWith: +) }
        let sent = messages.values.reduce(0, +)
        if sent > 0 {
            for width in widths {
                scalars.append(TensorBoardScalar(tag: "bit_width/messages_\(width)bit_share",
                                                 value: Float(Double(messages[width] ?? 0) / Double(sent))))
            }
        }
        let uses = sites.reduce(0) { $0 + $1.blockAges.reduce(0, +) }
        if uses > 0 {
            let ageSum = sites.reduce(0) { $0 + $1.blockAges.enumerated().reduce(0) { $0 + $1.offset * $1.element } }
            let bypasses = sites.reduce(0) { $0 + $1.bypasses }
            scalars.append(TensorBoardScalar(tag: "staleness/mean_age_epochs", value: Float(Double(ageSum) / Double(uses))))
            scalars.append(TensorBoardScalar(tag: "staleness/bypass_fraction", value: Float(Double(bypasses) / Double(uses))))
        }
        return scalars
    }

    /// The step an AdaQP assignment takes effect at: the first epoch it holds for, counted from 1.
    public static func step(of cycle: AssignmentCycleReport) -> Int64 { Int64(cycle.epoch + 1) }

    /// The widths before AdaQP's first re-assignment, which the report does not hold as a cycle: every row at 8
    /// bits while variances are traced (`AdaptivePrecision`). Written at step 1, before that re-assignment's.
    public static let initialAssignmentScalars: [TensorBoardScalar] = widths.filter { $0 != "32" }.map {
        TensorBoardScalar(tag: "bit_width/rows_\($0)bit_share", value: $0 == "8" ? 1 : 0)
    }

    /// An AdaQP re-assignment: the share of halo rows given each bit width (over every layer and direction) and
    /// the solver's time.
    public static func scalars(of cycle: AssignmentCycleReport) -> [TensorBoardScalar] {
        var rows: [String: Int] = [:]
        for site in cycle.sites { rows.merge(site.rowsByBits, uniquingKeysWith: +) }
        let total = rows.values.reduce(0, +)
        var scalars = [TensorBoardScalar(tag: "adaqp/solve_s", value: Float(cycle.solveSeconds))]
        if total > 0 {
            for width in widths where width != "32" {
                scalars.append(TensorBoardScalar(tag: "bit_width/rows_\(width)bit_share",
                                                 value: Float(Double(rows[width] ?? 0) / Double(total))))
            }
        }
        return scalars
    }
}
