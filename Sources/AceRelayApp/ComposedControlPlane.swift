import Channels
import ControlAPI
import DockerEngine
import EngineFleet
import Foundation
import Logging
import RelayCore
import ServiceLifecycle
import Store
import Streams
import Synchronization

/// The composition root of `serve`: the store, the engine fleet (static and
/// managed engines), the relay using the fleet as its engine selector, the
/// control API, and the periodic work.
///
/// `run()` goes through fixed phases on the main thread: the store's
/// clean-up of the previous run, the relay's start, the control plane's
/// service group (which owns SIGTERM and SIGINT), and the relay's stop after
/// the group, within a time limit. The relay outlives every control-plane
/// service: none of them failing after start-up stops it.
final class ComposedControlPlane: Sendable {
    let relay: RelayServer
    /// `--listen` as configured, for the error line.
    private let streamAddress: String
    private let services: [ServiceGroupConfiguration.ServiceConfiguration]
    private let progress: GroupProgress
    private let store: Store
    private let logger: Logger

    /// How long the control plane's services may take to stop gracefully before they are cancelled.
    static let gracefulShutdownLimit: Duration = .seconds(3)
    /// How long the main thread waits for the group in all, once shutdown began, before it stops the relay anyway.
    static let groupShutdownLimit: Double = 5
    /// How long the relay waits for engines to confirm their stop commands.
    static let relayStopLimit: Double = 3

    init(settings: ServeSettings, environment: [String: String], logger: Logger) throws(StartFailure) {
        streamAddress = "\(settings.relay.listenHost):\(settings.relay.listenPort)"
        self.logger = logger
        let store: Store
        do { store = try Store(directory: settings.dataDirectory) } catch { throw .store(error) }
        self.store = store
        let fleet = EngineFleet(maxStreamsPerEngine: settings.fleet.maxStreamsPerEngine,
                                startupTimeout: settings.fleet.startupTimeout,
                                failureThreshold: settings.fleet.healthFailureThreshold, logger: logger)
        let now = Date()
        for url in settings.engineURLs {
            let parts = URLComponents(string: url)
            // The user's own engines: MAX_STREAMS_PER_ENGINE is for the containers acerelay manages.
            fleet.register(FleetEngine(endpoint: EngineEndpoint(id: url, baseURL: url), name: url,
                                       host: parts?.host ?? url, port: parts?.port ?? 80, managed: false,
                                       maxStreams: settings.staticEngineMaxStreams,
                                       failureThreshold: settings.fleet.healthFailureThreshold, now: now))
        }
        var provisioner: EngineProvisioner?
        if settings.provisioning {
            let docker: DockerClient
            do { docker = try DockerClient(environment: environment, logger: logger) } catch { throw .docker(error) }
            let created = EngineProvisioner(configuration: settings.fleet, docker: docker, fleet: fleet, store: store, logger: logger)
            fleet.onDemand(created.demandHook())
            provisioner = created
        }
        let recorder = StoreStreamRecorder(store: store, containerName: { fleet.engine(id: $0)?.name }, logger: logger)
        let (refusals, refused) = AsyncStream.makeStream(of: LoopRefusal.self, bufferingPolicy: .unbounded)
        let loops = LoopDetector(store: store, config: settings.loopDetection, logger: logger, stopExternal: { stream in
            // Another proxy's session: the engine must hear stop, or it keeps playing.
            guard let command = stream.commandURL, !command.isEmpty else { return }
            if let failure = await EngineCommand.stop(commandURL: command) {
                logger.warning("a looping stream's engine did not stop", metadata: ["loop.stream": "\(stream.id)", "loop.reason": "\(failure)"])
            }
        }) { content, refusal in
            refused.yield((content, refusal))
        }
        let metrics = MetricsExporter()
        let events = RelayEventFeed()
        events.subscribe("recorder", recorder)
        events.subscribe("metrics", metrics)
        let relay = RelayServer(configuration: settings.relay, selector: fleet, events: events, contentGate: loops, logger: logger)
        self.relay = relay
        let collector = StatsCollector(store: store, retention: settings.statsRetention, loops: loops, logger: logger)
        events.subscribe("stats", collector)
        let monitor = HealthMonitor(fleet: fleet, store: store, probe: EngineProbe(timeout: settings.fleet.healthCheckTimeout), logger: logger)
        let plane = ControlPlane(fleet: fleet, provisioner: provisioner, store: store, relay: relay, loops: loops, metrics: metrics,
                                 apiKey: settings.apiKey,
                                 version: RelayServer.version, streamPort: { relay.port })
        let progress = GroupProgress()
        self.progress = progress
        let (apiHost, apiPort) = settings.apiAddress
        let application = ControlServer.application(plane: plane, host: apiHost, port: Int(apiPort), logger: logger) { port in
            logger.info("control API listening", metadata: ["control.address": "\(apiHost):\(port)"])
            progress.advance(to: .ready)
        }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            ServicePolicy.controlAPI(ControlAPIService(application: application, address: "\(apiHost):\(apiPort)", progress: progress, logger: logger)),
            ServicePolicy.auxiliary(PeriodicService(description: "health checks", interval: settings.fleet.healthCheckInterval, logger: logger) {
                await monitor.checkAll()
            }),
            ServicePolicy.auxiliary(PeriodicService(description: "engine waiters", interval: 1, logger: logger) { fleet.serveWaiters() }),
            ServicePolicy.auxiliary(PeriodicService(description: "stream stats", interval: settings.collectInterval, logger: logger) {
                await collector.collectOnce()
            }),
            ServicePolicy.auxiliary(LoopCheckService(detector: loops)),
            ServicePolicy.auxiliary(LoopEnforcementService(relay: relay, refusals: refusals)),
            ServicePolicy.auxiliary(PeriodicService(description: "thread priority", interval: 5, logger: logger) {
                ThreadPriority.lowerControlPlaneThreads()
            }),
            ServicePolicy.auxiliary(PeriodicService(description: "retention", interval: 600,
                                                    failure: "cannot prune old samples and events", logger: logger) {
                try await store.prune(Store.Retention(samples: settings.statsRetention))
            }),
        ]
        if let sources = Self.channelSources(store: store) {
            let prober = SourceProber(relay: relay, catalog: sources.catalog, sink: sources.sink, stats: collector, loops: loops,
                                      settings: settings.probe, logger: logger)
            services.append(ServicePolicy.auxiliary(SourceProbeService(prober: prober)))
        }
        if let provisioner {
            services.append(ServicePolicy.auxiliary(PeriodicService(description: "fleet reconcile", interval: settings.fleet.reconcileInterval,
                                                                    failure: "cannot reach Docker; static engines keep serving", logger: logger) {
                let changes = try await provisioner.reconcile()
                if changes != (0, 0, 0, 0) {
                    logger.info("fleet reconciled", metadata: ["fleet.adopted": "\(changes.adopted)", "fleet.lost": "\(changes.lost)",
                                                               "fleet.provisioned": "\(changes.provisioned)", "fleet.removed": "\(changes.removed)"])
                }
            }))
        }
        services.append(ServicePolicy.shutdownWatch(ShutdownWatchService(progress: progress)))
        self.services = services
    }

    /// Where the prober finds channel sources and records their measurements:
    /// the channel service, once it lands. Until then nil, and no source is probed.
    static func channelSources(store: Store) -> ChannelSources? { nil }

    /// Runs acerelay until SIGTERM or SIGINT. Call on the main thread, at the
    /// relay's priority: the relay's threads are created here. `whenReady`
    /// runs once both ports listen.
    func run(whenReady: () -> Void = {}) throws(StartFailure) {
        // Before the relay accepts: a stream opened now must not be taken for one of the previous run.
        endPreviousRunStreams()
        do { try relay.start() } catch {
            throw .streamPort(address: streamAddress, error)
        }
        // Relay threads exist now at normal priority; everything created from here on is control plane.
        ThreadPriority.lowerCurrentThread()

        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // Past this the group cancels its services. No cancellation limit: the
        // group's escalation for that is fatalError; the main thread's own limit
        // below bounds the stop instead.
        configuration.maximumGracefulShutdownDuration = Self.gracefulShutdownLimit
        configuration.logging.keys.serviceKey = "control.service"
        configuration.logging.keys.servicesKey = "control.services"
        configuration.logging.keys.signalKey = "control.signal"
        configuration.logging.keys.gracefulShutdownSignalsKey = "control.shutdown_signals"
        configuration.logging.keys.cancellationSignalsKey = "control.cancellation_signals"
        configuration.logging.keys.errorKey = "control.reason"
        let group = ServiceGroup(configuration: configuration)
        let failure = Mutex<(any Error)?>(nil)
        let progress = progress
        Task {
            do { try await group.run() } catch { failure.withLock { $0 = error } }
            progress.advance(to: .ended)
        }
        if progress.wait(for: .ready) == .ready { whenReady() }
        progress.wait(for: .stopping)
        if progress.wait(for: .ended, until: .now() + Self.groupShutdownLimit) != .ended {
            logger.warning("the control plane did not stop within \(Int(Self.groupShutdownLimit)) s; stopping the relay anyway")
        }
        relay.shutdown(timeout: Self.relayStopLimit)
        if let error = failure.withLock({ $0 }) { throw (error as? StartFailure) ?? .stopped(error) }
    }

    /// Marks the previous run's relay streams ended (their engine sessions did
    /// not survive it), waiting for the store on this (the main) thread.
    private func endPreviousRunStreams() {
        let done = DispatchSemaphore(value: 0)
        Task { [store, logger] in
            do {
                let ended = try await store.endRelayStreamsAfterRestart()
                if ended > 0 { logger.info("marked the previous run's streams ended", metadata: ["store.streams": "\(ended)"]) }
            } catch {
                // The store is for the control plane: the relay serves without it.
                logger.warning("cannot end the previous run's streams in the store", metadata: ["store.reason": "\(error)"])
            }
            done.signal()
        }
        done.wait()
    }
}
