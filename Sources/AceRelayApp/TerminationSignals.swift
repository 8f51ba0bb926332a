#if canImport(Glibc)
import Glibc
#endif

/// The one place that owns SIGTERM and SIGINT.
///
/// `block()` runs before any thread starts, so every thread inherits the mask
/// and the signals stay pending until `wait()` takes them on the main thread:
/// no handler runs at an arbitrary point inside a relay loop.
enum TerminationSignals {
    private static var set: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        return set
    }

    static func block() {
        var mask = set
        pthread_sigmask(SIG_BLOCK, &mask, nil)
    }

    /// Blocks until SIGTERM or SIGINT arrives, or `timeout` seconds pass; returns the signal, or nil on timeout.
    static func wait(timeout: Double? = nil) -> Int32? {
        var mask = set
        guard let timeout else {
            var signal: Int32 = 0
            while sigwait(&mask, &signal) != 0 {}
            return signal
        }
        var spec = timespec(tv_sec: Int(timeout), tv_nsec: Int((timeout - timeout.rounded(.down)) * 1e9))
        while true {
            let signal = sigtimedwait(&mask, nil, &spec)
            if signal > 0 { return signal }
            if errno == EINTR { continue }
            return nil
        }
    }
}
