import Clocks
import CurlHTTP
import Foundation
import Logging
import Locking
import Synchronization

/// Watches Gluetun: every check asks Docker for the container's health and the
/// control server for the public IP and the forwarded port, all at once and
/// each bounded by a short timeout; the result is judged by a `VPNTracker`.
///
/// Readers (`status`) only take a lock: a check in progress, however slow the
/// control server, never delays the API, the panel or SSE.
public final class VPNMonitor: Sendable {
    /// Hears every transition after the status already shows it.
    public typealias Listener = @Sendable (VPNTransition, VPNStatus) async -> Void

    public let settings: VPNSettings
    private let server: GluetunControlServer
    private let containerHealth: @Sendable () async -> String?
    private let clock: any WallClock
    private let logger: Logger
    private let tracker: Locked<VPNTracker>
    private let listeners = Locked<[Listener]>([])
    /// Checks run one at a time; a tick while one runs is skipped, not queued.
    private let checking = Atomic<Bool>(false)

    /// `containerHealth` answers Docker's health status of the Gluetun container,
    /// nil when Docker reports none (no healthcheck, or the container is not Docker's to see).
    public init(settings: VPNSettings, client: HTTPClient = .shared, clock: any WallClock = SystemClock(),
                containerHealth: @escaping @Sendable () async -> String?, logger: Logger) {
        self.settings = settings
        server = GluetunControlServer(settings: settings, client: client)
        self.containerHealth = containerHealth
        self.clock = clock
        self.logger = logger
        tracker = Locked(VPNTracker(stableChecks: settings.stableChecks))
    }

    /// Adds a listener for transitions (the event log, the panel, the fleet's forwarded engine).
    public func onTransition(_ listener: @escaping Listener) { listeners.withLock { $0.append(listener) } }

    public var status: VPNStatus {
        let tracker = tracker.withLock { $0 }
        return VPNStatus(containerName: settings.containerName, connection: tracker.connection, forwardedPort: tracker.forwardedPort,
                         containerHealth: tracker.containerHealth, lastCheck: tracker.lastCheck)
    }

    /// One check; returns its transitions after every listener heard them.
    @discardableResult
    public func checkOnce() async -> [VPNTransition] {
        guard !checking.exchange(true, ordering: .acquiring) else { return [] }
        defer { checking.store(false, ordering: .releasing) }
        async let health = containerHealth()
        async let address = server.publicIP()
        async let port = server.forwardedPort()
        let check = VPNCheck(containerHealth: await health, publicIP: await address, forwardedPort: await port)
        return await apply(check)
    }

    /// Judges a check made now and tells the listeners; `checkOnce` uses it, tests may feed checks directly.
    @discardableResult
    public func apply(_ check: VPNCheck) async -> [VPNTransition] {
        let now = clock.now
        let changes = tracker.withLock { $0.record(check, at: now) }
        guard !changes.isEmpty else { return [] }
        let snapshot = status
        for change in changes { log(change) }
        let listeners = listeners.withLock { $0 }
        for change in changes {
            for listener in listeners { await listener(change, snapshot) }
        }
        return changes
    }

    private func log(_ change: VPNTransition) {
        let metadata: Logger.Metadata = ["vpn.container": "\(settings.containerName)"]
        switch change {
        case .wentDown(let reason):
            logger.warning("VPN down: provisioning paused", metadata: metadata.merging(["vpn.reason": "\(reason)"]) { a, _ in a })
        case .cameUp(let address, let afterOutage):
            logger.notice(afterOutage ? "VPN back up" : "VPN up", metadata: metadata.merging(["vpn.public_ip": "\(address)"]) { a, _ in a })
        case .forwardedPortChanged(let from, let to):
            logger.notice("VPN forwarded port changed", metadata: metadata.merging(
                ["vpn.from": "\(from.map(String.init) ?? "none")", "vpn.to": "\(to.map(String.init) ?? "none")"]) { a, _ in a })
        case .stableAfterOutage:
            logger.info("VPN stable again", metadata: metadata)
        }
    }
}
