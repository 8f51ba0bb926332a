import Foundation

/// The tunnel's state from one check to the next: pure, driven by the checks
/// and the time they were made, so the rules are tested with a manual clock.
public struct VPNTracker: Sendable, Equatable {
    /// Whether the tunnel works.
    public enum Connection: Sendable, Equatable {
        /// No check has finished yet.
        case unchecked
        case up(publicIP: String, since: Date)
        case down(reason: String, since: Date)
    }

    /// After an outage: how many up checks in a row since it came back.
    private enum Recovery: Sendable, Equatable {
        case none
        case counting(Int)
    }

    public private(set) var connection: Connection = .unchecked
    /// The forwarded port, nil for none or not known yet; a failed port lookup keeps the last one.
    public private(set) var forwardedPort: Int?
    public private(set) var containerHealth: String?
    public private(set) var lastCheck: Date?
    private var recovery: Recovery = .none
    private let stableChecks: Int

    public init(stableChecks: Int = 3) { self.stableChecks = max(stableChecks, 1) }

    public var isUp: Bool { if case .up = connection { true } else { false } }

    /// Judges one check made at `now`; returns what changed, in order.
    public mutating func record(_ check: VPNCheck, at now: Date) -> [VPNTransition] {
        lastCheck = now
        containerHealth = check.containerHealth
        var changes: [VPNTransition] = []
        let before = connection
        if let reason = check.downReason {
            switch before {
            case .down(_, let since): connection = .down(reason: reason, since: since)
            case .unchecked, .up:
                connection = .down(reason: reason, since: now)
                changes.append(.wentDown(reason: reason))
            }
            recovery = .none
        } else if case .success(let address) = check.publicIP {
            switch before {
            case .up(_, let since):
                connection = .up(publicIP: address, since: since)
                if case .counting(let checks) = recovery {
                    recovery = checks + 1 >= stableChecks ? .none : .counting(checks + 1)
                    if checks + 1 >= stableChecks { changes.append(.stableAfterOutage) }
                }
            case .unchecked:
                connection = .up(publicIP: address, since: now)
                changes.append(.cameUp(publicIP: address, afterOutage: false))
            case .down:
                connection = .up(publicIP: address, since: now)
                changes.append(.cameUp(publicIP: address, afterOutage: true))
                // This check is the first up one.
                if stableChecks <= 1 {
                    changes.append(.stableAfterOutage)
                } else {
                    recovery = .counting(1)
                }
            }
        }
        // Only an answer moves the port: a lookup failing while the tunnel restarts says nothing about it.
        if case .success(let port) = check.forwardedPort, port != forwardedPort {
            changes.append(.forwardedPortChanged(from: forwardedPort, to: port))
            forwardedPort = port
        }
        return changes
    }
}
