import Foundation
import Logging
import Locking

/// Sends `WATCHDOG=1` at half of systemd's watchdog interval, on its own
/// thread, each time only if the `WatchdogGate` says every loop turned within
/// the interval. A dedicated thread (not a Swift task or a dispatch timer)
/// keeps the pings independent of a busy cooperative pool: what stops them is
/// a stuck relay loop, nothing else.
public final class WatchdogPinger: Sendable {
    /// The interval systemd enforces (`$WATCHDOG_USEC`).
    public let interval: Duration
    private let notifier: SystemdNotifier
    private let gate: WatchdogGate
    private let logger: Logger
    private let stopSignal = DispatchSemaphore(value: 0)
    private let state = Locked<(started: Bool, withholding: Bool)>((false, false))

    /// Nil when systemd set no watchdog for this process (no `$WATCHDOG_USEC`,
    /// another process's `$WATCHDOG_PID`, or no `$NOTIFY_SOCKET`).
    public init?(notifier: SystemdNotifier, gate: WatchdogGate, logger: Logger) {
        guard notifier.isEnabled, let interval = notifier.watchdogInterval else { return nil }
        self.interval = interval
        self.notifier = notifier
        self.gate = gate
        self.logger = logger
    }

    /// Starts the pinging thread (once).
    public func start() {
        let first = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started
        }
        guard first else { return }
        let thread = Thread { [self] in
            let period = Double(WatchdogGate.nanoseconds(interval)) / 2e9
            repeat {
                check()
            } while stopSignal.wait(timeout: .now() + period) == .timedOut
        }
        thread.name = "watchdog"
        thread.start()
    }

    /// Stops pinging (call on shutdown, after `STOPPING=1`).
    public func stop() { stopSignal.signal() }

    /// One decision: sends `WATCHDOG=1` when every loop is fresh; returns whether it did.
    @discardableResult
    public func check() -> Bool {
        if gate.shouldPing(maxAge: interval) {
            let recovered = state.withLock { state -> Bool in
                defer { state.withholding = false }
                return state.withholding
            }
            if recovered { logger.notice("every relay loop turns again; watchdog pings resumed") }
            return notifier.watchdog()
        }
        let firstMiss = state.withLock { state -> Bool in
            defer { state.withholding = true }
            return !state.withholding
        }
        if firstMiss {
            // Said once per stall: systemd will restart the service unless the loop recovers.
            logger.critical("relay loop stuck: withholding watchdog pings",
                            metadata: ["watchdog.stale": "\(gate.staleLoops(maxAge: interval).joined(separator: ","))",
                                       "watchdog.interval_s": "\(Double(WatchdogGate.nanoseconds(interval)) / 1e9)"])
        }
        return false
    }
}
