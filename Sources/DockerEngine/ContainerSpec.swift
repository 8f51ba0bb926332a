/// What a new container runs and how it is wired, in the terms acerelay needs
/// for engine containers. The container's name is given to
/// `DockerClient.createContainer(name:spec:)`, because the API takes it apart
/// from the body.
public struct ContainerSpec: Sendable, Hashable {
    /// Image reference, e.g. `ghcr.io/martinbjeldbak/acestream-http-proxy:latest`.
    /// The daemon never pulls on create: a missing image is `DockerError.notFound`.
    public var image: String
    /// Replaces the image's command; empty keeps the image's own.
    public var command: [String]
    /// Environment variables, sent as `KEY=value` sorted by key.
    public var environment: [String: String]
    /// Labels, which is how acerelay finds its containers again after a restart.
    public var labels: [String: String]
    /// Which network the container joins.
    public var networkMode: NetworkMode
    /// Ports to publish; meaningless (and ignored by the daemon) with `.host`.
    public var portBindings: [PortBinding]
    /// Runs a tiny init as PID 1 so the command gets SIGTERM on stop and zombies
    /// are reaped; without it a stop waits for the full timeout, then kills.
    public var useInit: Bool
    /// What the daemon does when the container exits.
    public var restartPolicy: RestartPolicy

    /// A spec; everything but the image has the daemon's default, except `useInit` (on).
    public init(
        image: String,
        command: [String] = [],
        environment: [String: String] = [:],
        labels: [String: String] = [:],
        networkMode: NetworkMode = .bridge,
        portBindings: [PortBinding] = [],
        useInit: Bool = true,
        restartPolicy: RestartPolicy = .no
    ) {
        self.image = image
        self.command = command
        self.environment = environment
        self.labels = labels
        self.networkMode = networkMode
        self.portBindings = portBindings
        self.useInit = useInit
        self.restartPolicy = restartPolicy
    }
}

/// The network a container joins (`HostConfig.NetworkMode`).
public enum NetworkMode: Sendable, Hashable, CustomStringConvertible {
    /// The host's network stack: the container's ports are the host's ports.
    case host
    /// Docker's default bridge, with published ports.
    case bridge
    /// Another container's network stack, e.g. a VPN container's (`container:<name or id>`).
    case container(String)
    /// A user-defined network by name (also `none`).
    case network(String)

    /// Parses the Engine API's spelling.
    public init(apiValue: String) {
        switch apiValue {
        case "host": self = .host
        case "bridge", "default": self = .bridge
        default:
            if apiValue.hasPrefix("container:") {
                self = .container(String(apiValue.dropFirst("container:".count)))
            } else {
                self = .network(apiValue)
            }
        }
    }

    /// The Engine API's spelling: `host`, `bridge`, `container:<name>`, or the network's name.
    public var description: String {
        switch self {
        case .host: "host"
        case .bridge: "bridge"
        case .container(let name): "container:\(name)"
        case .network(let name): name
        }
    }
}

/// What the daemon does when a container exits (`HostConfig.RestartPolicy`).
public enum RestartPolicy: Sendable, Hashable {
    /// Never restart; acerelay replaces failed engines itself.
    case no
    /// Always restart, also after the daemon restarts.
    case always
    /// Restart unless it was stopped through the API.
    case unlessStopped
    /// Restart after a non-zero exit, at most `maxRetries` times (0: no limit).
    case onFailure(maxRetries: Int)

    var apiName: String {
        switch self {
        case .no: "no"
        case .always: "always"
        case .unlessStopped: "unless-stopped"
        case .onFailure: "on-failure"
        }
    }
}
