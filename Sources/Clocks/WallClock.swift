import Foundation
import Locking

/// Where the control plane (fleet, loop detection) reads the time, so tests can move it by hand.
public protocol WallClock: Sendable {
    var now: Date { get }
}

/// The wall clock.
public struct SystemClock: WallClock {
    public init() {}
    public var now: Date { Date() }
}

/// A clock that only moves when told to; for tests of thresholds and timeouts.
public final class ManualClock: WallClock {
    private let current: Locked<Date>

    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { current = Locked(start) }

    public var now: Date { current.withLock { $0 } }

    public func advance(_ seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}
