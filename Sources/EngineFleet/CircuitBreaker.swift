import Foundation

/// Stops provisioning after repeated failures, so a broken image or a refusing
/// Docker daemon is not hammered; lets one trial through after a cooldown.
///
/// closed (normal) → open after `failureThreshold` consecutive failures →
/// half-open once `cooldown` passed (one attempt allowed) → closed on success,
/// open again on failure.
public struct CircuitBreaker: Sendable {
    public enum State: String, Sendable, Equatable {
        case closed
        case open
        case halfOpen = "half_open"
    }

    public let failureThreshold: Int
    public let cooldown: TimeInterval
    public private(set) var consecutiveFailures = 0
    private var openedAt: Date?
    private var trialInFlight = false

    public init(failureThreshold: Int = 5, cooldown: TimeInterval = 60) {
        self.failureThreshold = max(failureThreshold, 1)
        self.cooldown = cooldown
    }

    public func state(at now: Date) -> State {
        guard let openedAt else { return .closed }
        return now.timeIntervalSince(openedAt) >= cooldown ? .halfOpen : .open
    }

    /// Seconds until a trial is allowed; 0 when closed or half-open.
    public func secondsUntilRetry(at now: Date) -> Int {
        guard let openedAt else { return 0 }
        return max(0, Int((cooldown - now.timeIntervalSince(openedAt)).rounded(.up)))
    }

    /// True when an attempt may start now; in half-open, only one at a time.
    public mutating func allowAttempt(at now: Date) -> Bool {
        switch state(at: now) {
        case .closed: return true
        case .open: return false
        case .halfOpen:
            if trialInFlight { return false }
            trialInFlight = true
            return true
        }
    }

    public mutating func recordSuccess() {
        consecutiveFailures = 0
        openedAt = nil
        trialInFlight = false
    }

    public mutating func recordFailure(at now: Date) {
        consecutiveFailures += 1
        let wasTrial = trialInFlight
        trialInFlight = false
        if wasTrial || consecutiveFailures >= failureThreshold { openedAt = now }
    }
}
