import DockerEngine
import Foundation

/// Brings the fleet in line with its Docker hosts and with the replica targets:
/// adopts labelled containers it does not know (after a restart), forgets engines
/// whose container vanished or stopped, then creates or removes engines per the
/// scaling policy, replacing long-unhealthy ones make-before-break.
struct EngineReconciler {
    let provisioner: EngineProvisioner

    private var fleet: EngineFleet { provisioner.fleet }
    private var configuration: FleetConfiguration { provisioner.configuration }

    /// Brings the fleet in line with every Docker host: adopts labelled containers
    /// it does not know (after a restart), forgets engines whose container vanished
    /// or stopped, then applies the scaling policy. A host that does not answer is
    /// recorded as such and left out: its engines stay in the fleet (they may well
    /// keep serving) and are checked again next time. Returns what it changed.
    func reconcile() async throws(DockerError) -> (adopted: Int, lost: Int, provisioned: Int, removed: Int) {
        var adopted = 0, lost = 0
        for host in provisioner.hosts.members {
            let containers: [ContainerSummary]
            do {
                containers = try await host.client.listContainers(labels: provisioner.fleetLabels, all: true)
            } catch {
                provisioner.hosts.recordFailure(host, error)
                continue
            }
            provisioner.hosts.recordSuccess(host)
            let changes = await reconcile(containers, on: host)
            adopted += changes.adopted
            lost += changes.lost
        }
        await provisioner.removeDrainedIdle()
        let (provisioned, removed) = await applyScaling()
        return (adopted, lost, provisioned, removed)
    }

    /// Adopts and forgets the engines of one host that answered with `containers`.
    private func reconcile(_ containers: [ContainerSummary], on host: DockerHostPool.Member) async -> (adopted: Int, lost: Int) {
        let now = provisioner.clock.now
        var adopted = 0, lost = 0
        let known = Dictionary(uniqueKeysWithValues: fleet.engines.filter { $0.managed && $0.dockerHost == host.name }.map { ($0.id, $0) })
        for container in containers {
            let hostPort = container.labels["host.http_port"].flatMap(Int.init)
            let apiPort = container.labels["host.api_port"].flatMap(Int.init)
            provisioner.budget.withLock { budget in
                if let hostPort { budget.ports.claim(hostPort) }
                if let apiPort { budget.ports.claim(apiPort) }
            }
            // Adopted on the host it is found on, whatever its label says (a host renamed in DOCKER_HOSTS).
            if container.isRunning, known[container.id] == nil, fleet.engine(id: container.id) == nil, let hostPort {
                let engine = provisioner.makeEngine(id: container.id, name: container.name, hostPort: hostPort, apiPort: apiPort,
                                                    labels: container.labels, on: host.client.host, now: now)
                fleet.register(engine)
                adopted += 1
                await provisioner.persist(engine, event: ("engine_adopted", "found running container \(container.name) on host port \(hostPort) of \(host.name)"))
            } else if !container.isRunning, known[container.id] != nil {
                // Stopped from outside: remove it so a fresh one takes its place.
                try? await host.client.removeContainer(id: container.id, force: true)
                provisioner.forget(containerID: container.id, engine: known[container.id], reason: "container \(container.state.rawValue)")
                lost += 1
                await provisioner.record(kind: "engine_lost", message: "container \(container.name) is \(container.state.rawValue)", containerID: container.id)
            }
        }
        let present = Set(containers.map(\.id))
        for (id, engine) in known where !present.contains(id) {
            provisioner.forget(containerID: id, engine: engine, reason: "container removed")
            lost += 1
            await provisioner.record(kind: "engine_lost", message: "container \(engine.name) disappeared", containerID: id)
        }
        return (adopted, lost)
    }

    /// Creates or removes engines per the scaling policy; replaces long-unhealthy ones.
    private func applyScaling() async -> (Int, Int) {
        let now = provisioner.clock.now
        let managed = fleet.engines.filter(\.managed)
        let policy = ScalingPolicy(minReplicas: configuration.minReplicas, minFreeReplicas: configuration.minFreeReplicas,
                                   maxReplicas: configuration.maxReplicas, maxStreamsPerEngine: configuration.maxStreamsPerEngine,
                                   idleGracePeriod: configuration.engineGracePeriod, autoDelete: configuration.autoDelete)
        let loads = managed.map { EngineLoad(id: $0.id, healthy: $0.health.status != .unhealthy, streams: fleet.playerLoad(of: $0), idleSince: $0.idleSince) }
        let pending = provisioner.budget.withLock { $0.pending }
        var decision = policy.decide(engines: loads, pending: pending, now: now)
        // Make-before-break: an engine unhealthy past the grace period is removed
        // only once a replacement is counted among the engines.
        let failing = managed.filter { engine in
            engine.health.unhealthySince.map { now.timeIntervalSince($0) >= configuration.unhealthyGracePeriod } ?? false
        }
        // While provisioning is blocked from outside (the VPN down), failing probes are the
        // tunnel's doing: replacing engines would not help, and players on them keep playing.
        let blocked = provisioner.blockers.current != nil
        if blocked { decision.provision = 0 }
        // The forwarded engine is kept by ForwardedEngineKeeper, never removed as idle.
        decision.remove.removeAll { id in fleet.engine(id: id)?.forwarded ?? false }
        if !blocked, !failing.isEmpty, decision.provision == 0, managed.count < configuration.maxReplicas + failing.count {
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
                _ = try await provisioner.provision()
                provisioned += 1
            } catch {
                break
            }
        }
        var removed = 0
        for id in decision.remove {
            // A host that does not answer cannot remove anything (a warning per round
            // would only repeat its outage); its engines are decided on once it answers.
            if let host = fleet.engine(id: id)?.dockerHost, !provisioner.hosts.isReachable(host) { continue }
            do {
                try await provisioner.remove(containerID: id, reason: fleet.engine(id: id)?.health.status == .unhealthy ? "unhealthy" : "idle")
                removed += 1
            } catch {
                provisioner.logger.warning("cannot remove engine", metadata: ["fleet.container": "\(id)", "fleet.reason": "\(error)"])
            }
        }
        return (provisioned, removed)
    }
}
