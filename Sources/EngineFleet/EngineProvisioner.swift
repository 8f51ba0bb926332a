import DockerEngine
import Foundation
import Logging
import RelayCore
import Store
import Synchronization

/// Why provisioning was refused, with the orchestrator's structured fields.
public struct ProvisioningError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `max_capacity`, `circuit_breaker`, `vpn_disconnected` or `general_error`.
    public var code: String
    public var message: String
    public var recoveryETASeconds: Int
    public var canRetry: Bool
    public var shouldWait: Bool

    public var description: String { "\(code): \(message)" }

    public init(code: String, message: String, recoveryETASeconds: Int, canRetry: Bool, shouldWait: Bool) {
        self.code = code
        self.message = message
        self.recoveryETASeconds = recoveryETASeconds
        self.canRetry = canRetry
        self.shouldWait = shouldWait
    }

    var unavailable: EngineUnavailable {
        EngineUnavailable(code: code, message: message, retryAfterSeconds: max(recoveryETASeconds, 1))
    }
}

/// What `provision` created.
public struct ProvisionedEngine: Sendable, Equatable {
    public var containerID: String
    public var containerName: String
    public var hostHTTPPort: Int
    public var containerHTTPPort: Int
    public var containerHTTPSPort: Int?
}

/// Creates, adopts and removes engine containers through the Docker Engine API,
/// and keeps the fleet at its replica targets.
///
/// Containers carry the orchestrator's labels, so after a restart (of acerelay
/// or of the host) `reconcile()` rebuilds the fleet from the containers alone,
/// and the ports they hold are never handed out again.
public final class EngineProvisioner: Sendable {
    private struct State {
        var ports: PortAllocator
        var breaker: CircuitBreaker
        /// Containers being created now; they count as capacity already.
        var pending = 0
        /// Provisions the demand hook asked for that have not begun yet.
        var requested = 0
        var succeeded: UInt64 = 0
        var failed: UInt64 = 0
        var lastError: String?
    }

    public let configuration: FleetConfiguration
    private let docker: DockerClient
    private let fleet: EngineFleet
    private let store: Store?
    private let clock: any FleetClock
    private let logger: Logger
    private let state: Mutex<State>

    public init(configuration: FleetConfiguration, docker: DockerClient, fleet: EngineFleet, store: Store?,
                clock: any FleetClock = SystemClock(), logger: Logger) {
        self.configuration = configuration
        self.docker = docker
        self.fleet = fleet
        self.store = store
        self.clock = clock
        self.logger = logger
        state = Mutex(State(ports: PortAllocator(range: configuration.portRange),
                            breaker: CircuitBreaker(failureThreshold: configuration.circuitBreakerThreshold,
                                                    cooldown: configuration.circuitBreakerCooldown)))
    }

    /// Containers started and attempts that failed, since start (for metrics).
    public var provisioningCounts: (succeeded: UInt64, failed: UInt64) {
        state.withLock { ($0.succeeded, $0.failed) }
    }

    /// The label selector that finds this fleet's containers.
    public var fleetLabels: [String: String] { [configuration.containerLabel.key: configuration.containerLabel.value] }

    /// Provisioning state for status pages.
    public func status() -> (canProvision: Bool, blocked: ProvisioningError?, breaker: CircuitBreaker.State, pending: Int) {
        let now = clock.now
        let blocked = refusal(now: now, managedCount: fleet.engines.filter(\.managed).count)
        return state.withLock { state in (blocked == nil, blocked, state.breaker.state(at: now), state.pending) }
    }

    /// Why a new engine cannot be created now, or nil.
    private func refusal(now: Date, managedCount: Int) -> ProvisioningError? {
        state.withLock { state in
            if state.breaker.state(at: now) == .open {
                let eta = state.breaker.secondsUntilRetry(at: now)
                return ProvisioningError(code: "circuit_breaker",
                                         message: "provisioning paused after \(state.breaker.consecutiveFailures) failures in a row (last: \(state.lastError ?? "unknown")); retrying in \(eta) s",
                                         recoveryETASeconds: eta, canRetry: true, shouldWait: true)
            }
            if managedCount + state.pending >= configuration.maxReplicas {
                return ProvisioningError(code: "max_capacity",
                                         message: "MAX_REPLICAS (\(configuration.maxReplicas)) engines already exist and all are busy",
                                         recoveryETASeconds: 30, canRetry: true, shouldWait: true)
            }
            return nil
        }
    }

    // MARK: Creating

    /// Creates and starts one engine container and registers it with the fleet.
    /// `labels` and `environment` are added to the defaults; `hostPort` asks for a specific port.
    public func provision(labels extraLabels: [String: String] = [:], environment: [String: String] = [:],
                          hostPort requestedPort: Int? = nil, image: String? = nil) async throws(ProvisioningError) -> ProvisionedEngine {
        try await provision(labels: extraLabels, environment: environment, hostPort: requestedPort, image: image, forDemand: false)
    }

    /// `forDemand`: the demand hook counted this engine as requested; it becomes pending here.
    private func provision(labels extraLabels: [String: String], environment: [String: String], hostPort requestedPort: Int?,
                           image: String?, forDemand: Bool) async throws(ProvisioningError) -> ProvisionedEngine {
        var countedAsPending = false
        defer { if forDemand, !countedAsPending { state.withLock { $0.requested -= 1 } } }
        let now = clock.now
        if let refused = refusal(now: now, managedCount: fleet.engines.filter(\.managed).count) { throw refused }
        let ports: (http: Int, api: Int)? = state.withLock { state in
            guard state.breaker.allowAttempt(at: now) else { return nil }
            var allocator = state.ports
            if let requestedPort, !allocator.claim(requestedPort) { return nil }
            guard let http = requestedPort ?? allocator.allocate(), let api = allocator.allocate() else { return nil }
            state.ports = allocator
            state.pending += 1
            if forDemand {
                // Counted once: from requested to pending in the same step.
                state.requested -= 1
            }
            return (http, api)
        }
        countedAsPending = ports != nil
        guard let ports else {
            throw ProvisioningError(code: "general_error",
                                    message: requestedPort != nil ? "host port \(requestedPort!) is already in use" : "no free host port left in PORT_RANGE_HOST \(configuration.portRange)",
                                    recoveryETASeconds: 30, canRetry: true, shouldWait: false)
        }
        defer { state.withLock { $0.pending -= 1 } }
        let name = "acestream-\(ports.http)"
        let hostNetwork = configuration.networkMode == "host" || configuration.networkMode.hasPrefix("container:")
        // On the host network the engine binds the allocated port itself; with
        // published ports it keeps its default port inside the container.
        let httpPort = hostNetwork ? ports.http : configuration.containerHTTPPort
        let apiPort = hostNetwork ? ports.api : 62062
        var labels = fleetLabels.merging(extraLabels) { _, new in new }
        labels["acestream.http_port"] = String(httpPort)
        labels["acestream.api_port"] = String(apiPort)
        labels["host.http_port"] = String(ports.http)
        labels["host.api_port"] = String(ports.api)
        labels["acestream.forwarded"] = "false"
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
        spec.command = configuration.engineCommand(httpPort: httpPort, apiPort: apiPort, p2pPort: nil)
        spec.environment = environment
        spec.labels = labels
        spec.networkMode = network
        spec.useInit = true
        if !hostNetwork {
            spec.portBindings = [PortBinding(containerPort: ContainerPort(httpPort, .tcp), hostPort: ports.http, hostIP: nil),
                                 PortBinding(containerPort: ContainerPort(apiPort, .tcp), hostPort: ports.api, hostIP: nil)]
        }
        var created: String?
        do {
            let id = try await docker.createContainer(name: name, spec: spec)
            created = id
            try await docker.startContainer(id: id)
            state.withLock { state in
                state.breaker.recordSuccess()
                state.succeeded += 1
            }
            let engine = makeEngine(id: id, name: name, hostPort: ports.http, apiPort: ports.api, labels: labels, now: clock.now)
            fleet.register(engine)
            await persist(engine, event: ("engine_provisioned", "started \(name) on host port \(ports.http)"))
            logger.info("engine provisioned", metadata: ["fleet.container": "\(name)", "fleet.port": "\(ports.http)"])
            return ProvisionedEngine(containerID: id, containerName: name, hostHTTPPort: ports.http,
                                     containerHTTPPort: httpPort, containerHTTPSPort: nil)
        } catch {
            if let created { try? await docker.removeContainer(id: created, force: true) }
            state.withLock { state in
                state.failed += 1
                state.breaker.recordFailure(at: clock.now)
                state.lastError = error.description
                state.ports.release(ports.http)
                state.ports.release(ports.api)
            }
            logger.error("engine provisioning failed", metadata: ["fleet.reason": "\(error)"])
            await record(kind: "provisioning_failed", message: error.description)
            throw ProvisioningError(code: "general_error", message: "cannot start an engine container: \(error.description)",
                                    recoveryETASeconds: 30, canRetry: true, shouldWait: false)
        }
    }

    private func makeEngine(id: String, name: String, hostPort: Int, apiPort: Int?, labels: [String: String], now: Date) -> FleetEngine {
        FleetEngine(endpoint: EngineEndpoint(id: id, baseURL: "http://\(configuration.engineHost):\(hostPort)"),
                    name: name, host: configuration.engineHost, port: hostPort, apiPort: apiPort, labels: labels,
                    managed: true, forwarded: labels["acestream.forwarded"] == "true",
                    failureThreshold: configuration.healthFailureThreshold, now: now)
    }

    // MARK: Removing

    /// Stops and removes a managed engine's container and forgets it.
    public func remove(containerID: String, reason: String) async throws(DockerError) {
        let engine = fleet.engine(id: containerID)
        do {
            try await docker.stopContainer(id: containerID, timeoutSeconds: 5)
        } catch .notFound {
            // Already gone: forgetting it is all that is left.
        }
        do {
            try await docker.removeContainer(id: containerID, force: true)
        } catch .notFound {}
        forget(containerID: containerID, engine: engine, reason: reason)
        await record(kind: "engine_removed", message: "\(engine?.name ?? containerID): \(reason)", containerID: containerID)
    }

    private func forget(containerID: String, engine: FleetEngine?, reason: String) {
        fleet.remove(id: containerID)
        if let engine {
            state.withLock { state in
                state.ports.release(engine.port)
                if let api = engine.apiPort { state.ports.release(api) }
            }
        }
        if let store {
            Task {
                _ = try? await store.deleteEngine(id: containerID)
                _ = try? await store.endStreams(containerID: containerID, reason: reason)
            }
        }
    }

    // MARK: Reconciling

    /// Brings the fleet in line with Docker: adopts labelled containers it does not
    /// know (after a restart), forgets engines whose container vanished or stopped,
    /// then applies the scaling policy. Returns what it changed, for logs and tests.
    @discardableResult
    public func reconcile() async throws(DockerError) -> (adopted: Int, lost: Int, provisioned: Int, removed: Int) {
        let containers = try await docker.listContainers(labels: fleetLabels, all: true)
        let now = clock.now
        var adopted = 0, lost = 0
        let known = Dictionary(uniqueKeysWithValues: fleet.engines.filter(\.managed).map { ($0.id, $0) })
        for container in containers {
            let hostPort = container.labels["host.http_port"].flatMap(Int.init)
            let apiPort = container.labels["host.api_port"].flatMap(Int.init)
            state.withLock { state in
                if let hostPort { state.ports.claim(hostPort) }
                if let apiPort { state.ports.claim(apiPort) }
            }
            if container.isRunning, known[container.id] == nil, let hostPort {
                let engine = makeEngine(id: container.id, name: container.name, hostPort: hostPort, apiPort: apiPort,
                                        labels: container.labels, now: now)
                fleet.register(engine)
                adopted += 1
                await persist(engine, event: ("engine_adopted", "found running container \(container.name) on host port \(hostPort)"))
            } else if !container.isRunning, known[container.id] != nil {
                // Stopped from outside: remove it so a fresh one takes its place.
                try? await docker.removeContainer(id: container.id, force: true)
                forget(containerID: container.id, engine: known[container.id], reason: "container \(container.state.rawValue)")
                lost += 1
                await record(kind: "engine_lost", message: "container \(container.name) is \(container.state.rawValue)", containerID: container.id)
            }
        }
        let present = Set(containers.map(\.id))
        for (id, engine) in known where !present.contains(id) {
            forget(containerID: id, engine: engine, reason: "container removed")
            lost += 1
            await record(kind: "engine_lost", message: "container \(engine.name) disappeared", containerID: id)
        }
        let (provisioned, removed) = await applyScaling()
        return (adopted, lost, provisioned, removed)
    }

    /// Creates or removes engines per the scaling policy; replaces long-unhealthy ones.
    private func applyScaling() async -> (Int, Int) {
        let now = clock.now
        let managed = fleet.engines.filter(\.managed)
        let policy = ScalingPolicy(minReplicas: configuration.minReplicas, minFreeReplicas: configuration.minFreeReplicas,
                                   maxReplicas: configuration.maxReplicas, maxStreamsPerEngine: configuration.maxStreamsPerEngine,
                                   idleGracePeriod: configuration.engineGracePeriod, autoDelete: configuration.autoDelete)
        let loads = managed.map { EngineLoad(id: $0.id, healthy: $0.health.status != .unhealthy, streams: $0.load, idleSince: $0.idleSince) }
        let pending = state.withLock { $0.pending }
        var decision = policy.decide(engines: loads, pending: pending, now: now)
        // Make-before-break: an engine unhealthy past the grace period is removed
        // only once a replacement is counted among the engines.
        let failing = managed.filter { engine in
            engine.health.unhealthySince.map { now.timeIntervalSince($0) >= configuration.unhealthyGracePeriod } ?? false
        }
        if !failing.isEmpty, decision.provision == 0, managed.count < configuration.maxReplicas + failing.count {
            let healthyFree = managed.filter { $0.health.status == .healthy && $0.load == 0 }.count
            if healthyFree >= failing.count {
                decision.remove += failing.map(\.id)
            } else {
                decision.provision = max(decision.provision, min(failing.count, configuration.maxReplicas - managed.count))
            }
        }
        var provisioned = 0
        for _ in 0..<decision.provision {
            do {
                _ = try await provision()
                provisioned += 1
            } catch {
                break
            }
        }
        var removed = 0
        for id in decision.remove {
            do {
                try await remove(containerID: id, reason: fleet.engine(id: id)?.health.status == .unhealthy ? "unhealthy" : "idle")
                removed += 1
            } catch {
                logger.warning("cannot remove engine", metadata: ["fleet.container": "\(id)", "fleet.reason": "\(error)"])
            }
        }
        return (provisioned, removed)
    }

    /// The fleet's demand hook: start provisioning, or say why it cannot help.
    ///
    /// Capacity already on its way counts: engines being created each take
    /// `maxStreamsPerEngine` of the waiting requests, so a burst of new contents
    /// starts only the engines it needs, not one per content.
    public func demandHook() -> @Sendable () -> EngineUnavailable? {
        { [self] in
            let now = clock.now
            if let refused = refusal(now: now, managedCount: fleet.engines.filter(\.managed).count) { return refused.unavailable }
            let perEngine = configuration.maxStreamsPerEngine
            let waiting = fleet.waiting + 1
            let start = state.withLock { state -> Bool in
                let coming = state.pending + state.requested
                let enough = perEngine <= 0 ? coming > 0 : coming * perEngine >= waiting
                if enough { return false }
                state.requested += 1
                return true
            }
            guard start else { return nil }
            Task { [self] in
                do {
                    _ = try await provision(labels: [:], environment: [:], hostPort: nil, image: nil, forDemand: true)
                } catch {
                    // The waiting request times out with the startup timeout; the breaker counts the failure.
                }
            }
            return nil
        }
    }

    // MARK: Store

    private func persist(_ engine: FleetEngine, event: (kind: String, message: String)) async {
        guard let store else { return }
        do {
            try await store.saveEngine(engine.record)
        } catch {
            logger.warning("cannot save engine to the store", metadata: ["fleet.reason": "\(error)"])
        }
        await record(kind: event.kind, message: event.message, containerID: engine.id)
    }

    private func record(kind: String, message: String, containerID: String? = nil) async {
        do {
            try await store?.record(EventRecord(kind: kind, message: message, containerID: containerID))
        } catch {
            logger.warning("cannot record an event", metadata: ["fleet.reason": "\(error)"])
        }
    }
}
