import DockerEngine
import Clocks
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
    public let configuration: FleetConfiguration
    /// The container each new engine gets.
    public let template: ContainerTemplate
    let docker: DockerClient
    let fleet: EngineFleet
    private let store: Store?
    let clock: any WallClock
    let logger: Logger
    let budget: Mutex<ProvisioningBudget>
    /// Outside reasons to wait (the VPN down); checked before the budget's own.
    public let blockers = ProvisioningBlockers()

    public init(configuration: FleetConfiguration, docker: DockerClient, fleet: EngineFleet, store: Store?,
                clock: any WallClock = SystemClock(), logger: Logger) {
        self.configuration = configuration
        template = ContainerTemplate(configuration: configuration)
        self.docker = docker
        self.fleet = fleet
        self.store = store
        self.clock = clock
        self.logger = logger
        budget = Mutex(ProvisioningBudget(ports: configuration.portRange, breakerThreshold: configuration.circuitBreakerThreshold,
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

    /// Provisioning state for status pages.
    public func status() -> (canProvision: Bool, blocked: ProvisioningError?, breaker: CircuitBreaker.State, pending: Int) {
        let now = clock.now
        let managed = managedCount
        let outside = blockers.current
        return budget.withLock { budget in
            let blocked = outside ?? budget.refusal(now: now, managedCount: managed)
            return (blocked == nil, blocked, budget.breaker.state(at: now), budget.pending)
        }
    }

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
    private func provision(labels extraLabels: [String: String], environment: [String: String], hostPort requestedPort: Int?,
                           image: String?, p2pPort: Int? = nil, forDemand: Bool) async throws(ProvisioningError) -> ProvisionedEngine {
        let now = clock.now
        let managed = managedCount
        if let blocked = blockers.current {
            if forDemand { budget.withLock { $0.cancelRequest() } }
            throw blocked
        }
        let reservation = try budget.withLock { budget in
            budget.reserve(requestedPort: requestedPort, forDemand: forDemand, managedCount: managed, now: now)
        }.get()
        let container = template.container(hostHTTPPort: reservation.httpPort, hostAPIPort: reservation.apiPort,
                                           labels: extraLabels, environment: environment, image: image, p2pPort: p2pPort)
        let name = container.name
        var created: String?
        do {
            let id = try await docker.createContainer(name: name, spec: container.spec)
            created = id
            try await docker.startContainer(id: id)
            let engine = makeEngine(id: id, name: name, hostPort: reservation.httpPort, apiPort: reservation.apiPort,
                                    labels: container.spec.labels, now: clock.now)
            fleet.register(engine)
            // Committed once registered, so the engine is always counted, pending or managed.
            budget.withLock { $0.commit(reservation) }
            await persist(engine, event: ("engine_provisioned", "started \(name) on host port \(reservation.httpPort)"))
            logger.info("engine provisioned", metadata: ["fleet.container": "\(name)", "fleet.port": "\(reservation.httpPort)"])
            return ProvisionedEngine(containerID: id, containerName: name, hostHTTPPort: reservation.httpPort,
                                     containerHTTPPort: container.containerHTTPPort, containerHTTPSPort: nil)
        } catch {
            if let created { try? await docker.removeContainer(id: created, force: true) }
            budget.withLock { $0.rollback(reservation, error: error.description, now: clock.now) }
            logger.error("engine provisioning failed", metadata: ["fleet.reason": "\(error)"])
            await record(kind: "provisioning_failed", message: error.description)
            throw ProvisioningError(code: "general_error", message: "cannot start an engine container: \(error.description)",
                                    recoveryETASeconds: 30, canRetry: true, shouldWait: false)
        }
    }

    func makeEngine(id: String, name: String, hostPort: Int, apiPort: Int?, labels: [String: String], now: Date) -> FleetEngine {
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
            if let blocked = blockers.current { return blocked.unavailable }
            let decision = budget.withLock { budget -> Result<Bool, ProvisioningError> in
                if let refused = budget.refusal(now: now, managedCount: managed) { return .failure(refused) }
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
