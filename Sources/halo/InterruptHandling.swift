import Dispatch
import Foundation
import HaloTraining

#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM during `halo train`: the first asks the run to stop after the current epoch (the trainer
/// agrees the stop with every rank, then the report is written); a second ends the process at once.
///
/// The signal handler only writes the signal's number into a pipe (the self-pipe pattern); a dispatch source on the
/// pipe's other end reacts as ordinary code, where printing and locking are safe. Not
/// `DispatchSource.makeSignalSource` with the signal ignored: on Linux, libdispatch reads signals through a
/// signalfd, which sees a signal only if every thread blocks it, and the compute, transport and BLAS threads do
/// not. The kernel hands the signal to one of them, which discards it as ignored: about one run in eight went on
/// training after SIGTERM in testing. A handler runs in whichever thread receives the signal.
final class InterruptHandling: @unchecked Sendable {
    /// Shared by every rank of this process; the trainer polls it once per epoch.
    let stopRequest = StopRequest()
    private let lock = NSLock()
    private var received: Int32?
    private let source: any DispatchSourceRead

    /// Starts listening for SIGINT and SIGTERM. `announce` is false on MPI ranks other than 0, so that one line,
    /// not one per rank, tells the user what happens.
    init(announce: Bool) throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw UserFacingError(description: "cannot create the pipe that carries signals: \(String(cString: strerror(errno)))")
        }
        // Non-blocking at both ends: the handler must never wait, and the reader drains what is there.
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        let readEnd = ends[0]
        source = DispatchSource.makeReadSource(fileDescriptor: readEnd, queue: .global())
        source.setEventHandler { [self] in
            // Holds `self` strongly, on purpose: a signal may arrive after the command's scope ends (while the
            // report is flushed and the process exits), and must still find its handler.
            var numbers = [UInt8](repeating: 0, count: 16)
            while true {
                let count = read(readEnd, &numbers, numbers.count)
                guard count > 0 else { break }
                for number in numbers[..<count] { receive(Int32(number), announce: announce) }
            }
        }
        source.resume()
        SignalPipe.writeEnd = ends[1]
        for signalNumber in [SIGINT, SIGTERM] {
            _ = signal(signalNumber) { number in
                // Async-signal-safe: one write(2) of one byte.
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(SignalPipe.writeEnd, &byte, 1)
            }
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

/// Where the signal handler writes. A C signal handler receives no context, so this one descriptor is the only
/// process-wide state; everything else lives in the `InterruptHandling` the command owns.
private enum SignalPipe {
    nonisolated(unsafe) static var writeEnd: Int32 = -1
}
