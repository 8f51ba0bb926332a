import ArgumentParser
import DockerEngine
import EngineFleet
import Foundation
import RelayCore

/// The control plane's options. The fleet itself reads the orchestrator's
/// environment variables (MIN_REPLICAS, MAX_REPLICAS, PORT_RANGE_HOST, ...), so
/// existing deployments keep their settings unchanged. Values may start with a
/// dash (see `RelayOptions`).
struct ControlOptions: ParsableArguments {
    @Option(name: .customLong("api-listen"), parsing: .unconditional, help: "Control port address HOST:PORT (REST API, /ace/getstream redirect). Env ACERELAY_API_LISTEN. Default 0.0.0.0:8000.")
    var apiListen: String?

    @Option(name: .customLong("data-dir"), parsing: .unconditional, help: "Directory of the SQLite store. Env ACERELAY_DATA_DIR; under systemd $STATE_DIRECTORY. Default ./data.")
    var dataDir: String?

    @Option(name: .customLong("provision"), parsing: .unconditional, help: "Start engine containers through Docker: auto (when DOCKER_HOST or DOCKER_HOSTS is set or /var/run/docker.sock exists), on, off. Env ACERELAY_PROVISION. Default auto.")
    var provision: String?

    @Option(name: .customLong("engine-image"), parsing: .unconditional, help: "Engine image for provisioned containers. Env TARGET_IMAGE. Default \(FleetConfiguration.defaultImage).")
    var engineImage: String?

    /// The control port's address; it may not be the stream port's (`relay`), which the relay binds first.
    func apiAddress(environment: [String: String], relay: RelayConfiguration) throws(SettingError) -> (host: String, port: UInt16) {
        let address = try SettingReader(environment: environment).address(apiListen, option: "--api-listen", env: "ACERELAY_API_LISTEN", default: "0.0.0.0:8000")
        let wildcards: Set<String> = ["0.0.0.0", "::"]
        let overlapping = address.host == relay.listenHost || wildcards.contains(address.host) || wildcards.contains(relay.listenHost)
        if address.port != 0, address.port == relay.listenPort, overlapping {
            throw SettingError(option: "--api-listen", environment: "ACERELAY_API_LISTEN", value: "\(address.host):\(address.port)",
                               expected: "a port other than the stream port (--listen \(relay.listenHost):\(relay.listenPort))")
        }
        return address
    }

    func dataDirectory(environment: [String: String]) -> String {
        dataDir ?? environment["ACERELAY_DATA_DIR"] ?? environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) } ?? "./data"
    }

    /// Whether to provision, resolved against the environment and the default socket.
    func provisioningEnabled(environment: [String: String]) throws(SettingError) -> Bool {
        let text = (SettingReader(environment: environment).raw(provision, env: "ACERELAY_PROVISION") ?? "auto").lowercased()
        switch text {
        case "on", "true", "yes", "1": return true
        case "off", "false", "no", "0": return false
        case "auto":
            if environment["DOCKER_HOSTS"].map({ !$0.isEmpty }) == true { return true }
            return environment["DOCKER_HOST"].map { !$0.isEmpty } ?? FileManager.default.fileExists(atPath: "/var/run/docker.sock")
        default: throw SettingError(option: "--provision", environment: "ACERELAY_PROVISION", value: text, expected: "auto, on or off")
        }
    }

    /// `DOCKER_HOSTS`: the Docker hosts engines are spread over, or nil when it is
    /// unset and `DOCKER_HOST` names the one host. Setting both is refused: which
    /// one was meant cannot be guessed, and silently ignoring one hides engines.
    func dockerHosts(environment: [String: String]) throws(SettingError) -> [DockerHost]? {
        guard let value = environment["DOCKER_HOSTS"], !value.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        if let single = environment["DOCKER_HOST"], !single.isEmpty {
            throw SettingError(option: "DOCKER_HOSTS", environment: nil, value: value,
                               expected: "DOCKER_HOST unset (it is \"\(single)\"): DOCKER_HOSTS lists every host, DOCKER_HOST is the one-host form")
        }
        do {
            return try DockerHost.list(parsing: value)
        } catch {
            var problem = error.description
            if case .invalidHost(let entry, let reason) = error { problem = "\"\(entry.trimmingCharacters(in: .whitespaces))\": \(reason)" }
            throw SettingError(option: "DOCKER_HOSTS", environment: nil, value: value,
                               expected: "unix:///path/to/docker.sock or tcp://host:port entries separated by commas (\(problem))")
        }
    }

    /// The fleet configuration from the orchestrator's variables, validated.
    func fleetConfiguration(environment: [String: String], relay: RelayOptions) throws(SettingError) -> FleetConfiguration {
        let read = SettingReader(environment: environment)
        var c = FleetConfiguration()
        c.image = engineImage ?? environment["TARGET_IMAGE"].flatMap { $0.isEmpty ? nil : $0 } ?? c.image
        if let label = environment["CONTAINER_LABEL"], !label.isEmpty {
            let parts = label.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw SettingError(option: "CONTAINER_LABEL", environment: nil, value: label, expected: "key=value")
            }
            c.containerLabel = (parts[0], parts[1])
        }
        c.minReplicas = try read.int(nil, option: "MIN_REPLICAS", env: "MIN_REPLICAS", default: 2, range: 0...100)
        c.minFreeReplicas = try read.int(nil, option: "MIN_FREE_REPLICAS", env: "MIN_FREE_REPLICAS", default: 1, range: 0...100)
        c.maxReplicas = try read.int(nil, option: "MAX_REPLICAS", env: "MAX_REPLICAS", default: 6, range: 1...500)
        c.maxStreamsPerEngine = try read.int(relay.maxStreamsPerEngine, option: "--max-streams-per-engine", env: "MAX_STREAMS_PER_ENGINE", default: 3, range: 0...1_000)
        c.engineGracePeriod = try read.double(nil, option: "ENGINE_GRACE_PERIOD_S", env: "ENGINE_GRACE_PERIOD_S", default: 30, range: 0...86_400)
        let autoDelete = (environment["AUTO_DELETE"] ?? "true").lowercased()
        guard ["true", "false", "1", "0", "yes", "no"].contains(autoDelete) else {
            throw SettingError(option: "AUTO_DELETE", environment: nil, value: autoDelete, expected: "true or false")
        }
        c.autoDelete = ["true", "1", "yes"].contains(autoDelete)
        if let range = environment["PORT_RANGE_HOST"], !range.isEmpty {
            guard let parsed = PortAllocator.parseRange(range), parsed.count >= 2 else {
                throw SettingError(option: "PORT_RANGE_HOST", environment: nil, value: range, expected: "LOW-HIGH, e.g. 19000-19999")
            }
            c.portRange = parsed
        }
        c.startupTimeout = try read.double(relay.startTimeout, option: "--start-timeout", env: "STARTUP_TIMEOUT_S", default: 25, range: 1...600)
        c.healthCheckInterval = try read.double(nil, option: "HEALTH_CHECK_INTERVAL_S", env: "HEALTH_CHECK_INTERVAL_S", default: 20, range: 1...3_600)
        c.healthFailureThreshold = try read.int(nil, option: "HEALTH_FAILURE_THRESHOLD", env: "HEALTH_FAILURE_THRESHOLD", default: 3, range: 1...100)
        c.unhealthyGracePeriod = try read.double(nil, option: "HEALTH_UNHEALTHY_GRACE_PERIOD_S", env: "HEALTH_UNHEALTHY_GRACE_PERIOD_S", default: 60, range: 0...86_400)
        c.reconcileInterval = try read.double(nil, option: "ACERELAY_RECONCILE_INTERVAL_S", env: "ACERELAY_RECONCILE_INTERVAL_S", default: 10, range: 0.2...3_600)
        if let network = environment["DOCKER_NETWORK"], !network.isEmpty { c.networkMode = network }
        guard c.minReplicas <= c.maxReplicas else {
            throw SettingError(option: "MIN_REPLICAS", environment: nil, value: String(c.minReplicas), expected: "at most MAX_REPLICAS (\(c.maxReplicas))")
        }
        return c
    }
}
