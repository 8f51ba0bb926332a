import Foundation

/// What the API, the panel and the metrics show of the VPN: a copy, read without waiting on Gluetun.
public struct VPNStatus: Sendable, Equatable {
    public var containerName: String
    public var connection: VPNTracker.Connection
    public var forwardedPort: Int?
    /// Docker's health of the container, nil where it reports none.
    public var containerHealth: String?
    public var lastCheck: Date?

    public var isUp: Bool { if case .up = connection { true } else { false } }

    /// The public IP while up.
    public var publicIP: String? { if case .up(let address, _) = connection { address } else { nil } }

    /// The orchestrator's health word: `healthy`, `unhealthy`, or `unknown` before the first check.
    public var health: String {
        switch connection {
        case .unchecked: "unknown"
        case .up: "healthy"
        case .down: "unhealthy"
        }
    }

    /// Why the tunnel is down, nil while up.
    public var downReason: String? {
        switch connection {
        case .unchecked: "the VPN has not been checked yet"
        case .up: nil
        case .down(let reason, _): reason
        }
    }
}
