import Foundation
import Hummingbird
import VPN

/// `GET /vpn/status` and `GET /vpn/publicip`: what the VPN monitor last saw,
/// read without asking Gluetun (a slow control server never slows these).
struct VPNController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("vpn/status") { _, _ in Response.json(VPNJSON(plane.vpn?.status)) }
        open.get("vpn/publicip") { _, _ in
            guard let status = plane.vpn?.status else { throw APIError.notFound("no VPN configured: set GLUETUN_CONTAINER_NAME") }
            return Response.json(PublicIPJSON(public_ip: status.publicIP, connected: status.isUp, last_check: status.lastCheck))
        }
    }

    private struct PublicIPJSON: Encodable {
        var public_ip: String?
        var connected: Bool
        var last_check: Date?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(public_ip, forKey: .public_ip)
            try container.encode(connected, forKey: .connected)
            try container.encode(last_check, forKey: .last_check)
        }

        private enum CodingKeys: String, CodingKey { case public_ip, connected, last_check }
    }
}

/// The orchestrator's `/vpn/status` shape, also the panel snapshot's `vpn`:
/// `{enabled, status, container_name, health, connected, forwarded_port, last_check}`, plus `public_ip`.
struct VPNJSON: Encodable {
    var enabled: Bool
    /// `running` while up, `down` while not, `unknown` before the first check, `disabled` without a VPN.
    var status: String
    var container_name: String?
    var health: String
    var connected: Bool
    var forwarded_port: Int?
    var public_ip: String?
    var last_check: Date?
    /// Why it is down, nil while up.
    var reason: String?

    init(_ status: VPNStatus?) {
        guard let status else {
            self.enabled = false
            self.status = "disabled"
            health = "unknown"
            connected = false
            return
        }
        enabled = true
        switch status.connection {
        case .unchecked: self.status = "unknown"
        case .up: self.status = "running"
        case .down: self.status = "down"
        }
        container_name = status.containerName
        health = status.health
        connected = status.isUp
        forwarded_port = status.forwardedPort
        public_ip = status.publicIP
        last_check = status.lastCheck
        reason = status.downReason
    }

    private enum CodingKeys: String, CodingKey {
        case enabled, status, container_name, health, connected, forwarded_port, public_ip, last_check, reason
    }

    // Absent values are `null`, as the orchestrator sends them, not left out.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(enabled, forKey: .enabled)
        try container.encode(status, forKey: .status)
        try container.encode(container_name, forKey: .container_name)
        try container.encode(health, forKey: .health)
        try container.encode(connected, forKey: .connected)
        try container.encode(forwarded_port, forKey: .forwarded_port)
        try container.encode(public_ip, forKey: .public_ip)
        try container.encode(last_check, forKey: .last_check)
        try container.encode(reason, forKey: .reason)
    }
}
