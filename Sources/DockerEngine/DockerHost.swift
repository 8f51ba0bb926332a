import Foundation

/// Where the Docker Engine API listens, as `DOCKER_HOST` names it.
///
/// Only the two transports acerelay speaks are accepted: a unix socket
/// (`unix:///var/run/docker.sock`, the default) and plain HTTP over TCP
/// (`tcp://host:port`). `ssh://`, `npipe://` and TLS-protected daemons are refused
/// with a message instead of being half supported.
public enum DockerHost: Sendable, Hashable, CustomStringConvertible {
    /// The API on a unix socket at an absolute path.
    case unixSocket(path: String)
    /// The API over plain HTTP on TCP. `host` is a name or an IP address (IPv6 without brackets).
    case tcp(host: String, port: Int)

    /// The socket Docker listens on when `DOCKER_HOST` is not set.
    public static let defaultSocketPath = "/var/run/docker.sock"

    /// Docker's well-known plain-HTTP port, used when `tcp://` names no port.
    public static let defaultTCPPort = 2375

    /// What `DOCKER_HOST` may hold, for error messages.
    static let acceptedForms = "unix:///path/to/docker.sock or tcp://host:port"

    /// Parses a `DOCKER_HOST` value.
    ///
    /// Surrounding whitespace is ignored; an empty value means the default socket,
    /// as it does for the docker CLI.
    /// - Throws: `DockerError.invalidHost` for any other scheme or a malformed value.
    public init(parsing value: String) throws(DockerError) {
        let text = value.trimmingCharacters(in: .whitespaces)
        if text.isEmpty {
            self = .unixSocket(path: Self.defaultSocketPath)
        } else if text.hasPrefix("unix://") {
            let path = String(text.dropFirst("unix://".count))
            guard path.hasPrefix("/"), path.count > 1 else {
                throw .invalidHost(value: value, reason: "the socket path must be absolute")
            }
            // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
            guard path.utf8.count < 108 else {
                throw .invalidHost(value: value, reason: "the socket path is longer than 107 bytes")
            }
            self = .unixSocket(path: path)
        } else if text.hasPrefix("tcp://") {
            self = try Self.parseTCP(String(text.dropFirst("tcp://".count)), original: value)
        } else {
            let reason = text.contains("://") ? "unsupported scheme" : "no scheme"
            throw .invalidHost(value: value, reason: reason)
        }
    }

    /// The host named by `DOCKER_HOST` in `environment`, or the default socket when it is unset or empty.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(DockerError) -> DockerHost {
        try DockerHost(parsing: environment["DOCKER_HOST"] ?? "")
    }

    /// Parses a `DOCKER_HOSTS` value: hosts separated by commas, each in a form
    /// `init(parsing:)` accepts. Blank entries are skipped and a host named twice
    /// counts once, in the order first given.
    /// - Throws: `DockerError.invalidHost` for the first entry that is not a host.
    public static func list(parsing value: String) throws(DockerError) -> [DockerHost] {
        var hosts: [DockerHost] = []
        for entry in value.split(separator: ",") where !entry.trimmingCharacters(in: .whitespaces).isEmpty {
            let host = try DockerHost(parsing: String(entry))
            if !hosts.contains(host) { hosts.append(host) }
        }
        return hosts
    }

    /// The address of the machine a TCP daemon runs on, where the ports of its
    /// containers are published; nil for a unix socket, whose containers run here.
    public var machineAddress: String? {
        switch self {
        case .unixSocket: nil
        case .tcp(let host, _): host
        }
    }

    /// The `DOCKER_HOST` spelling of this host.
    public var description: String {
        switch self {
        case .unixSocket(let path): "unix://\(path)"
        case .tcp(let host, let port): host.contains(":") ? "tcp://[\(host)]:\(port)" : "tcp://\(host):\(port)"
        }
    }

    /// The URL prefix requests go to. For a unix socket the host part is only
    /// what the HTTP `Host` header carries; curl connects to the socket.
    var baseURL: String {
        switch self {
        case .unixSocket: "http://localhost"
        case .tcp(let host, let port): host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
        }
    }

    private static func parseTCP(_ rest: String, original: String) throws(DockerError) -> DockerHost {
        // Docker tolerates a trailing slash ("tcp://host:2375/"); nothing else may follow.
        var authority = Substring(rest)
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else {
            throw .invalidHost(value: original, reason: "expected tcp://host:port")
        }
        let host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw .invalidHost(value: original, reason: "unterminated IPv6 address")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw .invalidHost(value: original, reason: "expected tcp://[address]:port")
                }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw .invalidHost(value: original, reason: "no host name") }
        var port = defaultTCPPort
        if let portText {
            guard let parsed = Int(portText), (1...65535).contains(parsed) else {
                throw .invalidHost(value: original, reason: "the port must be a number from 1 to 65535")
            }
            port = parsed
        }
        return .tcp(host: String(host), port: port)
    }
}
