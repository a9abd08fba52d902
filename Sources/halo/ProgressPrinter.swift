import Foundation
import HaloTraining

/// Per-epoch progress: a line rewritten in place on a terminal, one plain line per epoch otherwise (logs, CI).
///
/// Sendable because a job calls back from the thread of its rank 0; the lock keeps a line whole if two threads
/// ever print.
final class ProgressPrinter: @unchecked Sendable {
    private let lock = NSLock()
    private let totalEpochs: Int
    private let enabled: Bool
    /// Rewrite in place only on a real terminal: mpirun forwards a rank's output through a pseudo-terminal that
    /// ends up in a log, where carriage returns would garble the lines.
    private let interactive = isatty(STDOUT_FILENO) != 0 && ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] == nil
    private var wroteInPlace = false

    init(totalEpochs: Int, enabled: Bool) {
        self.totalEpochs = totalEpochs
        self.enabled = enabled
    }

    func show(_ r: EpochRecord) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        func acc(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "  -   " }
        var line = String(format: "epoch %4d/%d  loss %.4f  train %@  val %@  test %@  %.4f s",
                          r.epoch + 1, totalEpochs, r.loss, acc(r.trainAccuracy), acc(r.validationAccuracy),
                          acc(r.testAccuracy), r.time)
        if r.bytesSent > 0 {
            line += String(format: " (compute %.4f, wait %.4f, all-reduce %.4f; %.2f MB sent)",
                           r.computeTime, r.communicationWaitTime, r.allReduceTime, Double(r.bytesSent) / 1e6)
        }
        if let sites = r.pipeline, !sites.isEmpty {
            // Mean age of the halo blocks used and the share of uses that bypassed a late link.
            let uses = sites.reduce(0) { $0 + $1.blockAges.reduce(0, +) }
            let ageSum = sites.reduce(0) { $0 + $1.blockAges.enumerated().reduce(0) { $0 + $1.offset * $1.element } }
            let bypasses = sites.reduce(0) { $0 + $1.bypasses }
            if uses > 0 {
                line += String(format: " staleness %.2f, bypass %.0f%%", Double(ageSum) / Double(uses),
                               100 * Double(bypasses) / Double(uses))
            }
        }
        if interactive {
            // Keep a scroll-back line every 10% so the run's course stays visible.
            let keep = r.epoch == totalEpochs - 1 || (r.epoch + 1) % max(1, totalEpochs / 10) == 0
            write("\r\u{1B}[2K" + line + (keep ? "\n" : ""))
            wroteInPlace = !keep
        } else {
            write(line + "\n")
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if wroteInPlace { write("\n") }
    }

    /// Unbuffered, so progress shows immediately even when stdout is a pipe.
    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
