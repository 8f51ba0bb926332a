/// A change the tracker saw; the monitor turns each into a log line, an event and hooks.
public enum VPNTransition: Sendable, Equatable {
    /// The tunnel went down (or was down at the first check).
    case wentDown(reason: String)
    /// The tunnel is up: at the first check, or back after an outage.
    case cameUp(publicIP: String, afterOutage: Bool)
    /// Gluetun forwards another port (nil: none).
    case forwardedPortChanged(from: Int?, to: Int?)
    /// Back after an outage and up for `stableChecks` checks in a row.
    case stableAfterOutage
}

extension VPNTransition {
    /// The event log's kind for this transition.
    public var eventKind: String {
        switch self {
        case .wentDown: "vpn_down"
        case .cameUp: "vpn_up"
        case .forwardedPortChanged: "vpn_forwarded_port"
        case .stableAfterOutage: "vpn_stable"
        }
    }

    /// One line for the event log and the panel.
    public var message: String {
        switch self {
        case .wentDown(let reason): "VPN down: \(reason)"
        case .cameUp(let address, let afterOutage): "VPN \(afterOutage ? "back up" : "up"), public IP \(address)"
        case .forwardedPortChanged(let from, let to):
            "forwarded port \(from.map(String.init) ?? "none") → \(to.map(String.init) ?? "none")"
        case .stableAfterOutage: "VPN stable after an outage"
        }
    }
}
