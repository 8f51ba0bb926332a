import Foundation

/// One container as `GET /containers/{id}/json` describes it.
public struct ContainerDetails: Sendable, Hashable {
    /// The full 64-hex id.
    public var id: String
    /// The name, without Docker's leading `/`.
    public var name: String
    /// The image reference the container was created from (`Config.Image`).
    public var image: String
    /// The image's id (`sha256:...`).
    public var imageID: String
    /// The daemon's state word.
    public var state: ContainerState
    /// True while the command runs (also while paused or restarting).
    public var isRunning: Bool
    /// The labels it was created with, including the image's own.
    public var labels: [String: String]
    /// The command and arguments the container was given (`Config.Cmd`).
    public var command: [String]
    /// `KEY=value` strings, including the image's own variables.
    public var environment: [String]
    /// The network mode it was created with.
    public var networkMode: NetworkMode
    /// Ports the daemon actually bound on the host, sorted; empty with host networking.
    public var publishedPorts: [PortBinding]
    /// When it was created.
    public var created: Date?
    /// When it last started; nil when it never started.
    public var startedAt: Date?
    /// When it last stopped; nil while it has not stopped since its last start.
    public var finishedAt: Date?
    /// The command's exit status once it stopped (143 after SIGTERM); 0 before.
    public var exitCode: Int
    /// Its healthcheck's verdict (`starting`, `healthy`, `unhealthy`); nil when it has no healthcheck.
    public var health: String?

    package init(decoding body: [UInt8]) throws(DockerError) {
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(body))
        } catch {
            throw .decoding(what: "container inspect", error: error)
        }
        id = wire.Id
        name = wire.Name.hasPrefix("/") ? String(wire.Name.dropFirst()) : wire.Name
        image = wire.Config?.Image ?? wire.Image
        imageID = wire.Image
        state = ContainerState(rawValue: wire.State.Status)
        isRunning = wire.State.Running
        labels = wire.Config?.Labels ?? [:]
        command = wire.Config?.Cmd ?? []
        environment = wire.Config?.Env ?? []
        networkMode = NetworkMode(apiValue: wire.HostConfig?.NetworkMode ?? "default")
        publishedPorts = PortBinding.fromPortMap(wire.NetworkSettings?.Ports ?? [:])
        created = wire.Created.flatMap(EngineTimestamp.parse)
        startedAt = wire.State.StartedAt.flatMap(EngineTimestamp.parse)
        finishedAt = wire.State.FinishedAt.flatMap(EngineTimestamp.parse)
        exitCode = wire.State.ExitCode ?? 0
        health = wire.State.Health.flatMap { $0.Status.isEmpty ? nil : $0.Status }
    }

    // Field names are the Engine API's.
    private struct Wire: Decodable {
        struct State: Decodable {
            var Status: String
            var Running: Bool
            var ExitCode: Int?
            var StartedAt: String?
            var FinishedAt: String?
            var Health: Health?
        }
        struct Health: Decodable {
            var Status: String
        }
        struct Config: Decodable {
            var Image: String?
            var Labels: [String: String]?
            var Cmd: [String]?
            var Env: [String]?
        }
        struct HostConfig: Decodable {
            var NetworkMode: String?
        }
        struct NetworkSettings: Decodable {
            var Ports: [String: [PortBinding.HostBindingWire]?]?
        }
        var Id: String
        var Name: String
        var Image: String
        var Created: String?
        var State: State
        var Config: Config?
        var HostConfig: HostConfig?
        var NetworkSettings: NetworkSettings?
    }
}

extension PortBinding {
    /// One element of the Engine API's `{"6878/tcp": [{"HostIp": "", "HostPort": "19000"}]}`.
    struct HostBindingWire: Decodable {
        var HostIp: String?
        var HostPort: String?
    }

    /// Flattens the Engine API's port map; a port exposed but not published (null) is skipped.
    static func fromPortMap(_ map: [String: [HostBindingWire]?]) -> [PortBinding] {
        var result: [PortBinding] = []
        for (key, bindings) in map {
            guard let port = ContainerPort(apiKey: key), let bindings else { continue }
            for binding in bindings {
                let ip = binding.HostIp.flatMap { $0.isEmpty ? nil : $0 }
                result.append(PortBinding(containerPort: port, hostPort: binding.HostPort.flatMap { Int($0) }, hostIP: ip))
            }
        }
        return result.sorted { ($0.containerPort, $0.hostIP ?? "") < ($1.containerPort, $1.hostIP ?? "") }
    }
}
