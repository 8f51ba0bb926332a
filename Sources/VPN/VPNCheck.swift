/// What one round of checks found, before it is judged.
public struct VPNCheck: Sendable, Equatable {
    /// The container's Docker health (`healthy`, `unhealthy`, `starting`), nil where Docker reports none.
    public var containerHealth: String?
    /// The public IP answer: an address ("" while the tunnel is down) or why there is none.
    public var publicIP: Result<String, GluetunControlServer.Failure>
    /// The forwarded-port answer: a port, nil for none, or why it is unknown.
    public var forwardedPort: Result<Int?, GluetunControlServer.Failure>

    public init(containerHealth: String?, publicIP: Result<String, GluetunControlServer.Failure>,
                forwardedPort: Result<Int?, GluetunControlServer.Failure>) {
        self.containerHealth = containerHealth
        self.publicIP = publicIP
        self.forwardedPort = forwardedPort
    }

    /// Why this check says the tunnel is down, or nil when it is up: Docker's
    /// health (where it reports one) must be healthy and the public IP non-empty.
    public var downReason: String? {
        if let containerHealth, containerHealth != "healthy" { return "the Gluetun container is \(containerHealth)" }
        switch publicIP {
        case .failure(let failure): return failure.description
        case .success(let address) where address.isEmpty: return "Gluetun reports no public IP (tunnel down)"
        case .success: return nil
        }
    }
}
