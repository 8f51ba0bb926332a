/// A port inside a container with its transport, as the Engine API keys it ("6878/tcp").
public struct ContainerPort: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The transport a port is for.
    public enum Transport: String, Sendable, Hashable, Comparable {
        case tcp, udp, sctp

        /// Orders by name, so sorted port lists are stable.
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The port number inside the container.
    public var port: Int
    /// TCP unless stated otherwise, as in Docker.
    public var transport: Transport

    /// A container port; `transport` defaults to TCP.
    public init(_ port: Int, _ transport: Transport = .tcp) {
        self.port = port
        self.transport = transport
    }

    /// Parses the Engine API's key form, "6878/tcp" (a bare "6878" means TCP).
    public init?(apiKey: String) {
        let parts = apiKey.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let port = Int(parts[0]), (1...65535).contains(port) else { return nil }
        var transport = Transport.tcp
        if parts.count == 2 {
            guard let parsed = Transport(rawValue: String(parts[1]).lowercased()) else { return nil }
            transport = parsed
        }
        self.init(port, transport)
    }

    /// The Engine API's key form, "6878/tcp".
    public var description: String { "\(port)/\(transport.rawValue)" }

    /// Orders by port number, then transport.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.port, lhs.transport) < (rhs.port, rhs.transport)
    }
}

/// A container port published on the host: the request in `ContainerSpec`, and
/// what the daemon reports back in `ContainerDetails` and `ContainerSummary`.
public struct PortBinding: Sendable, Hashable {
    /// The port inside the container.
    public var containerPort: ContainerPort
    /// The host port; nil asks the daemon to choose one (in a spec).
    public var hostPort: Int?
    /// The host address to bind; nil for every address.
    public var hostIP: String?

    /// Publishes `containerPort` on `hostPort` (nil: the daemon chooses) at `hostIP` (nil: all addresses).
    public init(containerPort: ContainerPort, hostPort: Int?, hostIP: String? = nil) {
        self.containerPort = containerPort
        self.hostPort = hostPort
        self.hostIP = hostIP
    }
}
