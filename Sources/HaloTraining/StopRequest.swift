import Foundation

/// A request, from outside the training loop, to end a run early but cleanly (e.g. from a signal handler).
///
/// The trainer does not stop the moment it is set: a rank that left on its own would leave its peers waiting in a
/// collective. Each rank adds whether its request is set into an all-reduce it does every epoch, and every rank
/// stops after the epoch in which any rank's request was seen. Ranks that are threads of one process share one
/// request; MPI ranks each have their own (`mpirun` forwards the signal to all of them).
///
/// Set from any thread; read by the training thread once per epoch. A lock rather than an atomic: it is taken a
/// few times per epoch, and `Synchronization.Atomic` needs macOS 15 while the package supports macOS 13.
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var storedReason: String?

    public init() {}

    /// Asks the run to stop after the current epoch, saying why (e.g. "interrupted by SIGINT"). Returns false, and
    /// keeps the first reason, when a stop was already requested.
    @discardableResult
    public func request(reason: String) -> Bool {
        lock.withLock {
            guard storedReason == nil else { return false }
            storedReason = reason
            return true
        }
    }

    /// Why a stop was requested, or nil while none was.
    public var reason: String? { lock.withLock { storedReason } }

    public var isRequested: Bool { reason != nil }
}
