import Foundation

/// Keeps exactly one managed engine on the VPN's forwarded P2P port.
///
/// When the forwarded port changes, the new forwarded engine is started first;
/// the old one keeps serving until the new one answers its health probes, and
/// only then drains (no new streams, removed once its last stream ends), so
/// players on it finish undisturbed. Two engines never share a P2P port: an
/// engine still draining on the port Gluetun forwards again is taken back into
/// service instead of a second one being started.
public struct ForwardedEngineKeeper: Sendable {
    /// What one pass did, for logs and tests.
    public enum Outcome: Sendable, Equatable {
        /// Nothing forwarded, the forwarded engine already serves the port, or
        /// the new one is not healthy yet (the old one keeps serving meanwhile).
        case unchanged
        /// A new forwarded engine was started; the old one drains once it is healthy.
        case started(containerID: String)
        /// The engine on the forwarded port took over (new and healthy, or taken back
        /// from draining); the others (ids) drain.
        case switched(containerID: String, draining: [String])
        /// A new engine could not be started; the old one keeps serving.
        case failed(ProvisioningError)
    }

    let provisioner: EngineProvisioner

    public init(provisioner: EngineProvisioner) { self.provisioner = provisioner }

    /// Brings the fleet in line with `forwardedPort` (nil: nothing forwarded, nothing changes).
    public func reconcile(forwardedPort: Int?) async -> Outcome {
        let fleet = provisioner.fleet
        await provisioner.removeDrainedIdle()
        guard let port = forwardedPort else { return .unchanged }
        let managed = fleet.engines.filter(\.managed)
        let onPort = managed.filter { $0.p2pPort == port }
        guard let keep = onPort.first(where: { !$0.draining }) ?? onPort.first else {
            do {
                let created = try await provisioner.provision(p2pPort: port)
                await provisioner.record(kind: "forwarded_engine_started", message: "\(created.containerName) runs on forwarded port \(port)",
                                         containerID: created.containerID)
                return .started(containerID: created.containerID)
            } catch {
                return .failed(error)
            }
        }
        // Anything else that claims to be forwarded, or holds a forwarded port, gives way.
        let stale = managed.filter { $0.id != keep.id && !$0.draining && ($0.forwarded || $0.p2pPort != nil) }
        if !keep.draining, keep.forwarded, stale.isEmpty { return .unchanged }
        // Make before break: a new engine takes over only once it answers; one taken back from draining already did.
        if !keep.draining, keep.health.status != .healthy, !stale.isEmpty { return .unchanged }
        fleet.undrain(id: keep.id, forwarded: true)
        for engine in stale { fleet.drain(id: engine.id) }
        await provisioner.record(kind: "forwarded_engine_switched",
                                 message: "\(keep.name) serves forwarded port \(port)"
                                     + (stale.isEmpty ? "" : "; draining \(stale.map(\.name).joined(separator: ", "))"),
                                 containerID: keep.id)
        return .switched(containerID: keep.id, draining: stale.map(\.id))
    }
}
