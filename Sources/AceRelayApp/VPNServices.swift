import ControlAPI
import DockerEngine
import EngineFleet
import Foundation
import Logging
import ServiceLifecycle
import Store
import VPN

/// The VPN's part of the composition: the Gluetun monitor, its link to the
/// fleet (`VPNFleetLink`: provisioning blocked while the tunnel is down, the
/// forwarded engine, restarts after a reconnect), and transitions told to the
/// event log and the panel.
enum VPNServices {
    /// The monitor and its periodic check, or nothing without `GLUETUN_CONTAINER_NAME`.
    static func make(settings: VPNSettings?, docker: DockerClient?, provisioner: EngineProvisioner?, store: Store,
                     live: LiveUpdates, logger: Logger) -> (VPNMonitor?, [ServiceGroupConfiguration.ServiceConfiguration]) {
        guard let settings else { return (nil, []) }
        let container = settings.containerName
        let monitor = VPNMonitor(settings: settings, containerHealth: {
            // No Docker, or no such container to Docker: the control server's answer decides alone.
            guard let docker else { return nil }
            return try? await docker.inspectContainer(id: container).health
        }, logger: logger)
        monitor.onTransition { change, status in
            live.announceVPN(kind: change.eventKind, message: change.message, connected: status.isUp, forwardedPort: status.forwardedPort)
            do {
                try await store.record(EventRecord(kind: change.eventKind, message: change.message, containerID: nil))
            } catch {
                logger.warning("cannot record a VPN event", metadata: ["vpn.reason": "\(error)"])
            }
        }
        let link = provisioner.map { VPNFleetLink(monitor: monitor, provisioner: $0) }
        let service = PeriodicService(description: "VPN checks", interval: settings.checkInterval, logger: logger) {
            guard let link else {
                await monitor.checkOnce()
                return
            }
            switch await link.checkOnce() {
            case .unchanged: break
            case .started(let id):
                logger.notice("forwarded engine started", metadata: ["vpn.engine": "\(id)", "vpn.port": "\(monitor.status.forwardedPort ?? 0)"])
            case .switched(let id, let draining):
                logger.notice("forwarded engine in place", metadata: ["vpn.engine": "\(id)", "vpn.port": "\(monitor.status.forwardedPort ?? 0)",
                                                                      "vpn.draining": "\(draining.count)"])
            case .failed(let error):
                logger.warning("cannot start the forwarded engine; retrying at the next check", metadata: ["vpn.reason": "\(error)"])
            }
        }
        return (monitor, [ServicePolicy.auxiliary(service)])
    }
}
