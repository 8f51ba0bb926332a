import Foundation
import Locking
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Decides whether the service has earned its next `WATCHDOG=1`.
///
/// A watchdog ping from a timer that always fires proves only that the timer
/// thread lives. Here each relay loop reports from its own periodic timer that
/// it turned (`Loop.turned()`, one relaxed atomic store), and a ping is allowed
/// only while every registered loop has turned within `maxAge`. A loop stuck
/// in a syscall or spinning without returning to its event loop stops
/// reporting, the pings stop, and systemd restarts the service.
///
/// Times are nanoseconds of a monotonic clock (injected, so tests drive it by hand).
public final class WatchdogGate: Sendable {
    /// One registered loop's report slot. Hand it to the loop; the loop calls
    /// `turned()` from a timer on its own thread.
    public final class Loop: Sendable {
        /// Shown in logs when this loop goes stale.
        public let name: String
        let lastTurn: Atomic<Int64>
        private let clock: @Sendable () -> Int64

        init(name: String, now: Int64, clock: @escaping @Sendable () -> Int64) {
            self.name = name
            self.clock = clock
            lastTurn = Atomic(now)
        }

        /// The loop made progress now. Cheap: a clock read and an atomic store.
        public func turned() { lastTurn.store(clock(), ordering: .relaxed) }

        /// The loop made progress at `nanoseconds` on the gate's clock.
        public func turned(at nanoseconds: Int64) { lastTurn.store(nanoseconds, ordering: .relaxed) }
    }

    /// The clock every time here is read from, in nanoseconds.
    public let clock: @Sendable () -> Int64
    private let loops = Locked<[Loop]>([])

    /// - Parameter clock: nanoseconds of a monotonic clock; `CLOCK_MONOTONIC` by default.
    public init(clock: @escaping @Sendable () -> Int64 = WatchdogGate.monotonicNanoseconds) {
        self.clock = clock
    }

    /// Registers a loop; it counts as having turned at registration, so a
    /// loop gets a full `maxAge` to start.
    public func register(_ name: String) -> Loop {
        let loop = Loop(name: name, now: clock(), clock: clock)
        loops.withLock { $0.append(loop) }
        return loop
    }

    /// Stops watching `loop` (a loop that ends on purpose must not stop the pings).
    public func unregister(_ loop: Loop) {
        loops.withLock { $0.removeAll { $0 === loop } }
    }

    /// Names of the loops that have not turned within `maxAge`, now.
    public func staleLoops(maxAge: Duration) -> [String] {
        let now = clock()
        let limit = Self.nanoseconds(maxAge)
        return loops.withLock { loops in
            loops.filter { !Self.isFresh(lastTurn: $0.lastTurn.load(ordering: .relaxed), now: now, maxAge: limit) }.map(\.name)
        }
    }

    /// Whether a ping is deserved now: every registered loop turned within `maxAge`.
    public func shouldPing(maxAge: Duration) -> Bool {
        let now = clock()
        let turns = loops.withLock { $0.map { $0.lastTurn.load(ordering: .relaxed) } }
        return Self.shouldPing(lastTurns: turns, now: now, maxAge: Self.nanoseconds(maxAge))
    }

    /// The decision itself, pure: ping only when every last turn is within
    /// `maxAge` of `now` (all in the same unit). No loops registered means
    /// nothing to guard, so the ping goes out.
    public static func shouldPing(lastTurns: [Int64], now: Int64, maxAge: Int64) -> Bool {
        lastTurns.allSatisfy { isFresh(lastTurn: $0, now: now, maxAge: maxAge) }
    }

    static func isFresh(lastTurn: Int64, now: Int64, maxAge: Int64) -> Bool {
        // A turn "in the future" (a clock read racing the store) is fresh.
        now - lastTurn <= maxAge
    }

    /// `CLOCK_MONOTONIC` in nanoseconds: immune to wall-clock steps, so an NTP
    /// correction can neither fake a stall nor hide one.
    @Sendable public static func monotonicNanoseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
