import Foundation
import VPN

/// What the fleet does with the VPN monitor's view: no engine is created while
/// the tunnel is down (`vpn_disconnected`, the provisioner's one blocker
/// provider), the forwarded engine follows Gluetun's port after every check
/// while the tunnel is up, and with `VPN_RESTART_ENGINES_ON_RECONNECT` the
/// engines are restarted make-before-break once the tunnel is stable again.
public struct VPNFleetLink: Sendable {
    public let monitor: VPNMonitor
    public let provisioner: EngineProvisioner
    private let keeper: ForwardedEngineKeeper

    /// Adds the blocker and the reconnect listener; call once.
    public init(monitor: VPNMonitor, provisioner: EngineProvisioner) {
        self.monitor = monitor
        self.provisioner = provisioner
        keeper = ForwardedEngineKeeper(provisioner: provisioner)
        let container = monitor.settings.containerName
        let retry = max(Int(monitor.settings.checkInterval.rounded(.up)), 1)
        provisioner.blockers.add("vpn") {
            guard let reason = monitor.status.downReason else { return nil }
            return ProvisioningError(code: "vpn_disconnected",
                                     message: "the VPN (\(container)) is down: \(reason); engines start again once it is back",
                                     recoveryETASeconds: retry, canRetry: true, shouldWait: true)
        }
        if monitor.settings.restartEnginesOnReconnect {
            monitor.onTransition { change, _ in
                // Provisioning takes seconds per engine: the checks go on meanwhile.
                if change == .stableAfterOutage { Task { await provisioner.restartEngines() } }
            }
        }
    }

    /// One check, then, while the tunnel is up, the forwarded engine brought in line with its port.
    @discardableResult
    public func checkOnce() async -> ForwardedEngineKeeper.Outcome {
        await monitor.checkOnce()
        let status = monitor.status
        guard status.isUp else { return .unchanged }
        return await keeper.reconcile(forwardedPort: status.forwardedPort)
    }
}
