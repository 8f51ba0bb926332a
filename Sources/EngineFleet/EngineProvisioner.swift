import DockerEngine
import Clocks
import Foundation
import Logging
import RelayCore
import Store
import Locking

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

/// Creates, adopts and removes engine containers through the Docker Engine API
/// of one or several Docker hosts, and keeps the fleet at its replica targets.
///
/// Containers carry the orchestrator's labels and `acerelay.docker_host`, so
/// after a restart (of acerelay or of a host) `reconcile()` rebuilds the fleet
/// from the containers alone, host by host, and the ports they hold are never
/// handed out again. Ports come from one range for all hosts, so two engines
/// never share a port even when their hosts are the same machine.
public final class EngineProvisioner: Sendable {
    public let configuration: FleetConfiguration
    /// The container each new engine gets.
    public let template: ContainerTemplate
    /// The label naming the Docker host an engine's container runs on.
    public static let dockerHostLabel = "acerelay.docker_host"
    let hosts: DockerHostPool
    let fleet: EngineFleet
    private let store: Store?
    let clock: any WallClock
    let logger: Logger
    let budget: Locked<ProvisioningBudget>
    /// Outside reasons to wait (the VPN down); checked before the Docker hosts and the budget.
    public let blockers = ProvisioningBlockers()

    /// A provisioner of engines on one Docker host.
    public convenience init(configuration: FleetConfiguration, docker: DockerClient, fleet: EngineFleet, store: Store?,
                            clock: any WallClock = SystemClock(), logger: Logger) {
        self.init(configuration: configuration, dockerHosts: [docker], fleet: fleet, store: store, clock: clock, logger: logger)
    }

    /// A provisioner of engines spread over `dockerHosts` (at least one), each
    /// new engine on the answering host with the fewest.
    public init(configuration: FleetConfiguration, dockerHosts: [DockerClient], fleet: EngineFleet, store: Store?,
                clock: any WallClock = SystemClock(), logger: Logger) {
        self.configuration = configuration
        template = ContainerTemplate(configuration: configuration)
        hosts = DockerHostPool(clients: dockerHosts, clock: clock, logger: logger)
        self.fleet = fleet
        self.store = store
        self.clock = clock
        self.logger = logger
        budget = Locked(ProvisioningBudget(ports: configuration.portRange, breakerThreshold: configuration.circuitBreakerThreshold,
                                          breakerCooldown: configuration.circuitBreakerCooldown,
                                          maxReplicas: configuration.maxReplicas))
    }

    /// Containers started and attempts that failed, since start (for metrics).
    public var provisioningCounts: (succeeded: UInt64, failed: UInt64) {
        budget.withLock { ($0.succeeded, $0.failed) }
    }

    /// The label selector that finds this fleet's containers.
    public var fleetLabels: [String: String] { template.fleetLabels }

    var managedCount: Int { fleet.engines.filter(\.managed).count }

    /// Managed engines per Docker host name.
    var enginesPerHost: [String: Int] {
        fleet.engines.reduce(into: [:]) { counts, engine in
            if engine.managed, let host = engine.dockerHost { counts[host, default: 0] += 1 }
        }
    }

    /// Provisioning state for status pages. An outside blocker (the VPN down) or
    /// no Docker host answering blocks it before the budget: no other limit
    /// matters while nothing can be created.
    public func status() -> (canProvision: Bool, blocked: ProvisioningError?, breaker: CircuitBreaker.State, pending: Int) {
        let now = clock.now
        let managed = managedCount
        let outside = outsideRefusal()
        return budget.withLock { budget in
            let blocked = outside ?? budget.refusal(now: now, managedCount: managed)
            return (blocked == nil, blocked, budget.breaker.state(at: now), budget.pending)
        }
    }

    /// Every Docker host: whether it answers, its engines, its last error.
    public func dockerHosts() -> [DockerHostStatus] { hosts.status(engines: enginesPerHost) }

    /// When a host that does not answer is asked again: the next reconciliation.
    private var recheckSeconds: Int { max(Int(configuration.reconcileInterval.rounded(.up)), 1) }

    /// Why no engine can be created because no Docker host answers, or nil while one may.
    func unreachableRefusal() -> ProvisioningError? {
        let down = hosts.status(engines: [:]).filter { !$0.reachable }
        guard down.count == hosts.members.count else { return nil }
        let reasons = down.map { $0.lastError ?? "cannot reach the Docker daemon at \($0.name)" }
        let message = reasons.count == 1 ? reasons[0] : "no Docker host answers: " + reasons.joined(separator: "; ")
        return ProvisioningError(code: "general_error", message: message + "; engines already running keep serving",
                                 recoveryETASeconds: recheckSeconds, canRetry: true, shouldWait: true)
    }

    /// Why no engine may be created now whatever the budget says: an outside
    /// blocker first (the VPN down: `vpn_disconnected`, since engines behind a
    /// dead tunnel would not help even where a host answers), then no Docker host
    /// answering (`general_error`); nil when neither.
    func outsideRefusal() -> ProvisioningError? { blockers.current ?? unreachableRefusal() }

    // MARK: Creating

    /// Creates and starts one engine container and registers it with the fleet.
    /// `labels` and `environment` are added to the defaults; `hostPort` asks for a specific port.
    /// `p2pPort` starts the engine with that P2P port (`--port`), as the forwarded engine.
    public func provision(labels extraLabels: [String: String] = [:], environment: [String: String] = [:],
                          hostPort requestedPort: Int? = nil, image: String? = nil,
                          p2pPort: Int? = nil) async throws(ProvisioningError) -> ProvisionedEngine {
        try await provision(labels: extraLabels, environment: environment, hostPort: requestedPort, image: image,
                            p2pPort: p2pPort, forDemand: false)
    }

    /// `forDemand`: the demand hook counted this engine as requested; it stops being requested here.
    ///
    /// Hosts are tried fewest engines first until one starts the engine; one that
    /// does not answer is marked so. The breaker counts the attempt only when a
    /// host answered and every host failed. The forwarded engine (`p2pPort`) goes
    /// only to the first host listed: the port Gluetun forwards reaches the
    /// network stack of the host Gluetun runs on, and no other.
    private func provision(labels extraLabels: [String: String], environment: [String: String], hostPort requestedPort: Int?,
                           image: String?, p2pPort: Int? = nil, forDemand: Bool) async throws(ProvisioningError) -> ProvisionedEngine {
        let now = clock.now
        let managed = managedCount
        let outside = outsideRefusal()
        let reservation = try budget.withLock { budget -> Result<ProvisioningBudget.Reservation, ProvisioningError> in
            if let outside {
                if forDemand { budget.cancelRequest() }
                return .failure(outside)
            }
            return budget.reserve(requestedPort: requestedPort, forDemand: forDemand, managedCount: managed, now: now)
        }.get()
        let elsewhere: Set<String> = p2pPort == nil ? [] : Set(hosts.members.dropFirst().map(\.name))
        var tried: Set<String> = []
        // Failures of hosts that answered: the next host is tried (one host may lack
        // the image), and only when every host failed does the breaker count it.
        var failures: [String] = []
        while let host = hosts.claim(engines: enginesPerHost, excluding: tried.union(elsewhere)) {
            tried.insert(host.name)
            let outcome = await start(reservation, on: host, labels: extraLabels, environment: environment, image: image,
                                      p2pPort: p2pPort)
            hosts.finished(host)
            switch outcome {
            case .started(let engine):
                return engine
            case .unreachable(let error):
                hosts.recordFailure(host, error)
            case .failed(let error):
                // It answered (an error status), unless it went away between create and start.
                if case .daemonUnreachable = error { hosts.recordFailure(host, error) } else { hosts.recordSuccess(host) }
                failures.append(hosts.members.count > 1 ? "\(host.name): \(error.description)" : error.description)
            }
        }
        guard failures.isEmpty else {
            let reason = failures.joined(separator: "; ")
            budget.withLock { $0.rollback(reservation, error: reason, now: clock.now) }
            logger.error("engine provisioning failed", metadata: ["fleet.reason": "\(reason)"])
            await record(kind: "provisioning_failed", message: reason)
            throw ProvisioningError(code: "general_error", message: "cannot start an engine container: \(reason)",
                                    recoveryETASeconds: 30, canRetry: true, shouldWait: false)
        }
        budget.withLock { $0.rollback(reservation, error: "no Docker host answers", countedByBreaker: false, now: clock.now) }
        throw unreachableRefusal() ?? ProvisioningError(
            code: "general_error", message: "no Docker host answered: \((tried.isEmpty ? [hosts.members[0].name] : tried.sorted()).joined(separator: ", "))",
            recoveryETASeconds: recheckSeconds, canRetry: true, shouldWait: true)
    }

    /// How one attempt on one host ended.
    private enum StartOutcome {
        case started(ProvisionedEngine)
        /// The host did not answer: the next host may be tried.
        case unreachable(DockerError)
        /// The host answered and refused or failed.
        case failed(DockerError)
    }

    /// Creates and starts the reserved engine's container on `host` and registers it.
    private func start(_ reservation: ProvisioningBudget.Reservation, on host: DockerHostPool.Member, labels extraLabels: [String: String],
                       environment: [String: String], image: String?, p2pPort: Int?) async -> StartOutcome {
        var labels = extraLabels
        labels[Self.dockerHostLabel] = host.name
        let container = template.container(hostHTTPPort: reservation.httpPort, hostAPIPort: reservation.apiPort,
                                           labels: labels, environment: environment, image: image, p2pPort: p2pPort)
        let name = container.name
        var created: String?
        do {
            let id = try await host.client.createContainer(name: name, spec: container.spec)
            created = id
            try await host.client.startContainer(id: id)
            let engine = makeEngine(id: id, name: name, hostPort: reservation.httpPort, apiPort: reservation.apiPort,
                                    labels: container.spec.labels, on: host.client.host, now: clock.now)
            fleet.register(engine)
            // Committed once registered, so the engine is always counted, pending or managed.
            budget.withLock { $0.commit(reservation) }
            hosts.recordSuccess(host)
            await persist(engine, event: ("engine_provisioned", "started \(name) on host port \(reservation.httpPort) of \(host.name)"))
            logger.info("engine provisioned", metadata: ["fleet.container": "\(name)", "fleet.port": "\(reservation.httpPort)",
                                                         "docker.host": "\(host.name)"])
            return .started(ProvisionedEngine(containerID: id, containerName: name, hostHTTPPort: reservation.httpPort,
                                              containerHTTPPort: container.containerHTTPPort, containerHTTPSPort: nil))
        } catch {
            if let created { try? await host.client.removeContainer(id: created, force: true) }
            if case .daemonUnreachable = error, created == nil { return .unreachable(error) }
            return .failed(error)
        }
    }

    /// The fleet's view of a container on `dockerHost`: a TCP daemon's engines are
    /// reached at that daemon's address (their ports are published there); a local
    /// socket's at `engineHost`.
    func makeEngine(id: String, name: String, hostPort: Int, apiPort: Int?, labels: [String: String],
                    on dockerHost: DockerHost, now: Date) -> FleetEngine {
        let address = dockerHost.machineAddress ?? configuration.engineHost
        let authority = address.contains(":") ? "[\(address)]" : address
        return FleetEngine(endpoint: EngineEndpoint(id: id, baseURL: "http://\(authority):\(hostPort)"),
                           name: name, host: address, port: hostPort, apiPort: apiPort, labels: labels,
                           managed: true, forwarded: labels["acestream.forwarded"] == "true", dockerHost: dockerHost.description,
                           failureThreshold: configuration.healthFailureThreshold, now: now)
    }

    // MARK: Removing

    /// Stops and removes a managed engine's container (on whichever Docker host holds it) and forgets it.
    public func remove(containerID: String, reason: String) async throws(DockerError) {
        let engine = fleet.engine(id: containerID)
        let host = await self.host(holding: containerID, engine: engine)
        do {
            try await host.client.stopContainer(id: containerID, timeoutSeconds: 5)
        } catch .notFound {
            // Already gone: forgetting it is all that is left.
        }
        do {
            try await host.client.removeContainer(id: containerID, force: true)
        } catch .notFound {}
        forget(containerID: containerID, engine: engine, reason: reason)
        await record(kind: "engine_removed", message: "\(engine?.name ?? containerID): \(reason)", containerID: containerID)
    }

    /// The host an engine runs on; for a container the fleet does not know, the
    /// first answering host that has it, else the first host (which answers "not found").
    private func host(holding containerID: String, engine: FleetEngine?) async -> DockerHostPool.Member {
        if let member = hosts.member(named: engine?.dockerHost) { return member }
        if hosts.members.count > 1 {
            for member in hosts.members where hosts.isReachable(member.name) {
                if (try? await member.client.inspectContainer(id: containerID)) != nil { return member }
            }
        }
        return hosts.members[0]
    }

    func forget(containerID: String, engine: FleetEngine?, reason: String) {
        fleet.remove(id: containerID)
        if let engine {
            budget.withLock { budget in
                budget.ports.release(engine.port)
                if let api = engine.apiPort { budget.ports.release(api) }
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
        try await EngineReconciler(provisioner: self).reconcile()
    }

    /// The fleet's demand hook: start provisioning, or say why it cannot help.
    ///
    /// Capacity already on its way counts: engines being created each take
    /// `maxStreamsPerEngine` of the waiting requests, so a burst of new contents
    /// starts only the engines it needs, not one per content.
    public func demandHook() -> @Sendable () -> EngineUnavailable? {
        { [self] in
            let now = clock.now
            let managed = managedCount
            let perEngine = configuration.maxStreamsPerEngine
            let waiting = fleet.waiting + 1
            let outside = outsideRefusal()
            let decision = budget.withLock { budget -> Result<Bool, ProvisioningError> in
                if let refused = outside ?? budget.refusal(now: now, managedCount: managed) { return .failure(refused) }
                let coming = budget.pending + budget.requested
                let enough = perEngine <= 0 ? coming > 0 : coming * perEngine >= waiting
                if enough { return .success(false) }
                budget.request()
                return .success(true)
            }
            switch decision {
            case .failure(let refused): return refused.unavailable
            case .success(let start): if !start { return nil }
            }
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

    func persist(_ engine: FleetEngine, event: (kind: String, message: String)) async {
        guard let store else { return }
        do {
            try await store.saveEngine(engine.record)
        } catch {
            logger.warning("cannot save engine to the store", metadata: ["fleet.reason": "\(error)"])
        }
        await record(kind: event.kind, message: event.message, containerID: engine.id)
    }

    func record(kind: String, message: String, containerID: String? = nil) async {
        do {
            try await store?.record(EventRecord(kind: kind, message: message, containerID: containerID))
        } catch {
            logger.warning("cannot record an event", metadata: ["fleet.reason": "\(error)"])
        }
    }
}
