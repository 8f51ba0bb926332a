import ControlAPI
import DockerEngine
import EngineFleet
import Foundation
import Logging
import RelayCore
import ServiceLifecycle
import Store
import Synchronization

/// The composition root of `serve`: the store, the engine fleet (static and
/// managed engines), the relay using the fleet as its engine selector, the
/// control API, and the periodic work, wired into one service group that owns
/// SIGTERM and SIGINT and shuts down in reverse order (the relay last).
final class ComposedControlPlane: Sendable {
    let relay: RelayServer
    private let services: [any Service]
    private let store: Store
    private let logger: Logger

    init(settings: ServeSettings, environment: [String: String], logger: Logger) throws {
        self.logger = logger
        let store = try Store(directory: settings.dataDirectory)
        self.store = store
        let fleet = EngineFleet(maxStreamsPerEngine: settings.fleet.maxStreamsPerEngine,
                                startupTimeout: settings.fleet.startupTimeout,
                                failureThreshold: settings.fleet.healthFailureThreshold, logger: logger)
        let now = Date()
        for url in settings.engineURLs {
            let parts = URLComponents(string: url)
            fleet.register(FleetEngine(endpoint: EngineEndpoint(id: url, baseURL: url), name: url,
                                       host: parts?.host ?? url, port: parts?.port ?? 80, managed: false,
                                       failureThreshold: settings.fleet.healthFailureThreshold, now: now))
        }
        var provisioner: EngineProvisioner?
        if settings.provisioning {
            let docker = try DockerClient(environment: environment, logger: logger)
            let created = EngineProvisioner(configuration: settings.fleet, docker: docker, fleet: fleet, store: store, logger: logger)
            fleet.onDemand(created.demandHook())
            provisioner = created
        }
        let recorder = StoreStreamRecorder(store: store, containerName: { fleet.engine(id: $0)?.name }, logger: logger)
        // The detector gates the relay and closes its hubs: the relay is bound after both exist.
        let relayBinding = Mutex<RelayServer?>(nil)
        let loops = LoopDetector(store: store, config: settings.loopDetection, logger: logger) { content, refusal in
            relayBinding.withLock { $0 }?.closeHub(for: content, refusal: refusal)
        }
        let metrics = MetricsExporter()
        let events = RelayEventFeed()
        events.subscribe("recorder", recorder)
        events.subscribe("metrics", metrics)
        relay = RelayServer(configuration: settings.relay, selector: fleet, events: events, contentGate: loops, logger: logger)
        let relay = relay
        relayBinding.withLock { $0 = relay }
        let collector = StatsCollector(store: store, retention: settings.statsRetention, logger: logger)
        let monitor = HealthMonitor(fleet: fleet, store: store, probe: EngineProbe(timeout: settings.fleet.healthCheckTimeout), logger: logger)
        let plane = ControlPlane(fleet: fleet, provisioner: provisioner, store: store, relay: relay, loops: loops, metrics: metrics,
                                 apiKey: settings.apiKey,
                                 version: RelayServer.version, streamPort: { relay.port })
        let api = ControlServer.application(plane: plane, host: settings.apiAddress.host, port: Int(settings.apiAddress.port),
                                            logger: logger) { port in
            logger.info("control API listening", metadata: ["control.address": "\(settings.apiAddress.host):\(port)"])
        }
        var services: [any Service] = [
            RelayService(relay: relay),
            api,
            PeriodicService(description: "health", interval: settings.fleet.healthCheckInterval) { await monitor.checkAll() },
            PeriodicService(description: "waiters", interval: 1) { fleet.serveWaiters() },
            PeriodicService(description: "stats", interval: settings.collectInterval) { await collector.collectOnce() },
            LoopCheckService(detector: loops),
            PeriodicService(description: "priority", interval: 5) { ThreadPriority.lowerControlPlaneThreads() },
        ]
        if let provisioner {
            services.append(PeriodicService(description: "reconcile", interval: settings.fleet.reconcileInterval) {
                do {
                    let changes = try await provisioner.reconcile()
                    if changes != (0, 0, 0, 0) {
                        logger.info("fleet reconciled", metadata: ["fleet.adopted": "\(changes.adopted)", "fleet.lost": "\(changes.lost)",
                                                                   "fleet.provisioned": "\(changes.provisioned)", "fleet.removed": "\(changes.removed)"])
                    }
                } catch {
                    // A Docker daemon that is down never takes the relay down: say so and try again.
                    logger.error("cannot reach Docker; static engines keep serving", metadata: ["fleet.reason": "\(error)"])
                }
            })
        }
        self.services = services
    }

    /// Runs every service until SIGTERM/SIGINT, then shuts them down in reverse order.
    func runUntilShutdown() {
        let done = DispatchSemaphore(value: 0)
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        let (logger, store) = (logger, store)
        Task {
            // The previous run's relay sessions did not survive it.
            do {
                let ended = try await store.endRelayStreamsAfterRestart()
                if ended > 0 { logger.info("marked \(ended) streams of the previous run ended") }
            } catch {
                logger.warning("cannot update the store at start-up", metadata: ["store.reason": "\(error)"])
            }
            do {
                try await group.run()
            } catch {
                logger.error("stopped on error", metadata: ["acerelay.reason": "\(error)"])
            }
            done.signal()
        }
        done.wait()
    }
}
