import Foundation

/// An engine's health as the orchestrator reports it.
public enum EngineHealth: String, Sendable, Codable, Equatable {
    case healthy, unhealthy, unknown
}

/// Turns probe results into a health status: unhealthy only after
/// `failureThreshold` consecutive failures, healthy again on the first success.
public struct HealthTracker: Sendable, Equatable {
    public let failureThreshold: Int
    public private(set) var status: EngineHealth = .unknown
    public private(set) var consecutiveFailures = 0
    public private(set) var lastCheck: Date?
    /// Since when the engine is unhealthy, for make-before-break replacement.
    public private(set) var unhealthySince: Date?

    public init(failureThreshold: Int = 3) { self.failureThreshold = max(failureThreshold, 1) }

    /// Records one probe; returns true when the status changed.
    @discardableResult
    public mutating func record(success: Bool, at now: Date) -> Bool {
        lastCheck = now
        let before = status
        if success {
            consecutiveFailures = 0
            status = .healthy
            unhealthySince = nil
        } else {
            consecutiveFailures += 1
            if consecutiveFailures >= failureThreshold, status != .unhealthy {
                status = .unhealthy
                unhealthySince = now
            }
        }
        return status != before
    }
}
