import Foundation

/// CPU time this process has used, all threads together: on a machine shared with other jobs it counts only the
/// time the process actually ran, where wall-clock time also counts the time it waited for a core.
enum ProcessCPUClock {
    static func seconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
