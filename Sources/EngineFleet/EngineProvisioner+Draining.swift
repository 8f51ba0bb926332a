import Foundation

extension EngineProvisioner {
    /// Removes drained engines whose last stream ended; those on a Docker host that
    /// does not answer wait until it does (a warning per round would only repeat its outage).
    public func removeDrainedIdle() async {
        for engine in fleet.engines where engine.managed && engine.draining && engine.load == 0
            && engine.dockerHost.map(hosts.isReachable) ?? true {
            do {
                try await remove(containerID: engine.id, reason: "drained")
            } catch {
                logger.warning("cannot remove a drained engine", metadata: ["fleet.container": "\(engine.name)", "fleet.reason": "\(error)"])
            }
        }
    }

    /// Restarts the managed engines make-before-break (after a VPN reconnect): a
    /// fresh engine is started for each, and only once it answers its health
    /// probes (within `STARTUP_TIMEOUT_S`) does the old one drain. The forwarded
    /// engine is left to `ForwardedEngineKeeper`, since a second engine may not
    /// take its port. Returns how many were replaced; stops at the first failure.
    @discardableResult
    public func restartEngines() async -> Int {
        let old = fleet.engines.filter { $0.managed && !$0.draining && !$0.forwarded && $0.p2pPort == nil }
        var replaced = 0
        for engine in old {
            let replacement: ProvisionedEngine
            do {
                replacement = try await provision()
            } catch {
                logger.warning("cannot start a replacement engine; the old one keeps serving",
                               metadata: ["fleet.container": "\(engine.name)", "fleet.reason": "\(error)"])
                break
            }
            guard await becomesHealthy(replacement.containerID) else {
                logger.warning("a replacement engine did not turn healthy; the old one keeps serving",
                               metadata: ["fleet.container": "\(engine.name)", "fleet.replacement": "\(replacement.containerName)"])
                break
            }
            fleet.drain(id: engine.id)
            replaced += 1
        }
        if replaced > 0 { await record(kind: "engines_restarted", message: "\(replaced) engines restarted after the VPN reconnected") }
        return replaced
    }

    /// Waits (polling the fleet, which the health monitor updates) until the engine is probed healthy.
    private func becomesHealthy(_ id: String) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(configuration.startupTimeout * 1000))
        while ContinuousClock.now < deadline {
            guard let engine = fleet.engine(id: id) else { return false }
            if engine.health.status == .healthy { return true }
            try? await Task.sleep(for: .milliseconds(250))
        }
        return fleet.engine(id: id)?.health.status == .healthy
    }
}
