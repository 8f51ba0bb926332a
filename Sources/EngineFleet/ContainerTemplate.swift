import DockerEngine

/// The container an engine gets, from configuration alone: its name, labels,
/// command, network and published ports for a pair of host ports.
///
/// Pure: nothing here talks to Docker or reads state, so the container acerelay
/// would create is known (and tested) without a daemon.
public struct ContainerTemplate: Sendable {
    public let configuration: FleetConfiguration

    public init(configuration: FleetConfiguration) {
        self.configuration = configuration
    }

    /// The label holding a forwarded engine's P2P port, so the port is known again after a restart.
    public static let p2pPortLabel = "acestream.p2p_port"

    /// The label selector that finds this fleet's containers.
    public var fleetLabels: [String: String] { [configuration.containerLabel.key: configuration.containerLabel.value] }

    /// The container for an engine on host ports `hostHTTPPort` and `hostAPIPort`.
    /// `labels` and `environment` are added to the defaults; `image` replaces the configured one.
    /// `p2pPort` makes it the forwarded engine: `--port <p2pPort>`, labelled `acestream.forwarded=true`.
    public func container(hostHTTPPort: Int, hostAPIPort: Int, labels extraLabels: [String: String] = [:],
                          environment: [String: String] = [:], image: String? = nil, p2pPort: Int? = nil) -> EngineContainer {
        let hostNetwork = configuration.networkMode == "host" || configuration.networkMode.hasPrefix("container:")
        // On the host network the engine binds the allocated port itself; with
        // published ports it keeps its default port inside the container.
        let httpPort = hostNetwork ? hostHTTPPort : configuration.containerHTTPPort
        let apiPort = hostNetwork ? hostAPIPort : 62062
        var labels = fleetLabels.merging(extraLabels) { _, new in new }
        labels["acestream.http_port"] = String(httpPort)
        labels["acestream.api_port"] = String(apiPort)
        labels["host.http_port"] = String(hostHTTPPort)
        labels["host.api_port"] = String(hostAPIPort)
        labels["acestream.forwarded"] = p2pPort == nil ? "false" : "true"
        if let p2pPort { labels[Self.p2pPortLabel] = String(p2pPort) }
        if configuration.networkMode.hasPrefix("container:") {
            labels["acestream.vpn_container"] = String(configuration.networkMode.dropFirst("container:".count))
        }
        let network: NetworkMode = switch configuration.networkMode {
        case "host": .host
        case "bridge": .bridge
        case let mode where mode.hasPrefix("container:"): .container(String(mode.dropFirst("container:".count)))
        case let mode: .network(mode)
        }
        var spec = ContainerSpec(image: image ?? configuration.image)
        spec.command = configuration.engineCommand(httpPort: httpPort, apiPort: apiPort, p2pPort: p2pPort)
        spec.environment = environment
        spec.labels = labels
        spec.networkMode = network
        spec.useInit = true
        if !hostNetwork {
            spec.portBindings = [PortBinding(containerPort: ContainerPort(httpPort, .tcp), hostPort: hostHTTPPort, hostIP: nil),
                                 PortBinding(containerPort: ContainerPort(apiPort, .tcp), hostPort: hostAPIPort, hostIP: nil)]
        }
        return EngineContainer(name: "acestream-\(hostHTTPPort)", spec: spec, containerHTTPPort: httpPort, containerAPIPort: apiPort)
    }
}

/// One engine container as `ContainerTemplate` describes it.
public struct EngineContainer: Sendable, Hashable {
    /// The container name, from the host HTTP port (`acestream-19000`).
    public var name: String
    public var spec: ContainerSpec
    /// The engine's HTTP and API ports inside the container.
    public var containerHTTPPort: Int
    public var containerAPIPort: Int
}
