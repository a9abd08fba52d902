import Dispatch
import Foundation
import HaloTraining

/// SIGINT and SIGTERM during `halo train`: the first asks the run to stop after the current epoch (the trainer
/// agrees the stop with every rank, then the report is written); a second ends the process at once.
///
/// The signals are ignored at the process level and delivered through dispatch sources, so the reaction runs as
/// ordinary code on a dispatch queue instead of inside an async-signal handler, where printing is unsafe.
final class InterruptHandling: @unchecked Sendable {
    /// Shared by every rank of this process; the trainer polls it once per epoch.
    let stopRequest = StopRequest()
    private let lock = NSLock()
    private var received: Int32?
    private var sources: [any DispatchSourceSignal] = []

    /// Starts listening for SIGINT and SIGTERM. `announce` is false on MPI ranks other than 0, so that one line,
    /// not one per rank, tells the user what happens.
    init(announce: Bool) {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [unowned self] in
                // Signals that arrive before the handler runs are merged into one event: `data` counts them.
                for _ in 0..<max(1, source.data) { self.receive(signalNumber, announce: announce) }
            }
            source.resume()
            sources.append(source)
        }
    }

    private func receive(_ signalNumber: Int32, announce: Bool) {
        let first = lock.withLock {
            defer { received = received ?? signalNumber }
            return received == nil
        }
        guard first else {
            // The user does not want to wait for the epoch to end: nothing more is saved.
            _exit(Self.exitStatus(signalNumber))
        }
        stopRequest.request(reason: "interrupted by \(Self.name(signalNumber))")
        if announce {
            FileHandle.standardError.write(Data("\nhalo: \(Self.name(signalNumber)) received: stopping after this epoch; Ctrl-C again to quit now\n".utf8))
        }
    }

    /// The exit status of a run stopped by a signal, as shells report a process killed by it: 128 + its number
    /// (130 for SIGINT, 143 for SIGTERM). A rank stopped only because a peer was signalled reports SIGINT's.
    var exitStatus: Int32 {
        Self.exitStatus(lock.withLock { received } ?? SIGINT)
    }

    private static func exitStatus(_ signalNumber: Int32) -> Int32 { 128 + signalNumber }

    private static func name(_ signalNumber: Int32) -> String {
        switch signalNumber {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(signalNumber)"
        }
    }
}
