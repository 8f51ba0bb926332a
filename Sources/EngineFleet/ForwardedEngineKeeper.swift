import Foundation

/// Keeps exactly one managed engine on the VPN's forwarded P2P port.
///
/// When the forwarded port changes, the new forwarded engine is started first
/// and the old one drained (no new streams, removed once its last stream ends),
/// so players on it finish undisturbed. Two engines never share a P2P port: an
/// engine still draining on the port Gluetun forwards again is taken back into
/// service instead of a second one being started.
public struct ForwardedEngineKeeper: Sendable {
    /// What one pass did, for logs and tests.
    public enum Outcome: Sendable, Equatable {
        /// Nothing forwarded, or the forwarded engine already runs on the port.
        case unchanged
        /// A new forwarded engine runs; the old ones (ids) drain.
        case started(containerID: String, draining: [String])
        /// A draining engine on the port was taken back; the others (ids) drain.
        case reused(containerID: String, draining: [String])
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
        // Anything else that claims to be forwarded, or holds a forwarded port, gives way.
        func others(than keep: String) -> [FleetEngine] {
            managed.filter { $0.id != keep && !$0.draining && ($0.forwarded || $0.p2pPort != nil) }
        }
        if let keep = onPort.first(where: { !$0.draining }) ?? onPort.first {
            let stale = others(than: keep.id)
            if !keep.draining, keep.forwarded, stale.isEmpty { return .unchanged }
            fleet.undrain(id: keep.id, forwarded: true)
            for engine in stale { fleet.drain(id: engine.id) }
            await provisioner.record(kind: "forwarded_engine_reused",
                                     message: "\(keep.name) serves forwarded port \(port)", containerID: keep.id)
            return .reused(containerID: keep.id, draining: stale.map(\.id))
        }
        let created: ProvisionedEngine
        do {
            created = try await provisioner.provision(p2pPort: port)
        } catch {
            return .failed(error)
        }
        let stale = others(than: created.containerID)
        for engine in stale { fleet.drain(id: engine.id) }
        await provisioner.record(kind: "forwarded_engine_started",
                                 message: "\(created.containerName) runs on forwarded port \(port)"
                                     + (stale.isEmpty ? "" : "; draining \(stale.map(\.name).joined(separator: ", "))"),
                                 containerID: created.containerID)
        return .started(containerID: created.containerID, draining: stale.map(\.id))
    }
}
