import Channels
import ControlAPI
import Dispatcharr
import DockerEngine
import EngineFleet
import Channels
import Foundation
import Logging
import RelayCore
import ServiceLifecycle
import Store
import Streams
import Locking
import SystemdNotify

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
    /// Channels and their sources' scores: give it to the prober (`SourceMeasurementSink`,
    /// `SourceCatalog`) and set its hooks for Dispatcharr.
    let channels: ChannelService
    /// systemd's notify socket; every call is a no-op without `$NOTIFY_SOCKET`.
    private let notifier: SystemdNotifier
    /// `WATCHDOG=1` while every relay loop turns; nil without a systemd watchdog.
    private let pinger: WatchdogPinger?
    /// `--drain-seconds`: how long SIGTERM lets connected players keep streaming.
    private let drainSeconds: Double

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
        do { store = try Store(directory: settings.dataDirectory, logger: logger) } catch { throw .store(error) }
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
        var dockerClient: DockerClient?
        if settings.provisioning {
            let clients: [DockerClient]
            if let hosts = settings.dockerHosts {
                clients = hosts.map { DockerClient(host: $0, logger: logger) }
            } else {
                do { clients = [try DockerClient(environment: environment, logger: logger)] } catch { throw .docker(error) }
            }
            // Gluetun runs on the first host listed: the VPN monitor asks that one for its container's health.
            dockerClient = clients.first
            let created = EngineProvisioner(configuration: settings.fleet, dockerHosts: clients, fleet: fleet, store: store, logger: logger)
            fleet.onDemand(created.demandHook())
            provisioner = created
        }
        // Reported streams' stat/command URLs are called only on the fleet's engines.
        let engineURLs = EngineURLPolicy(fleet: fleet, allowsForeignHosts: settings.allowForeignEngineURLs)
        let recorder = StoreStreamRecorder(store: store, containerName: { fleet.engine(id: $0)?.name }, logger: logger)
        let (refusals, refused) = AsyncStream.makeStream(of: LoopRefusal.self, bufferingPolicy: .unbounded)
        let loops = LoopDetector(store: store, config: settings.loopDetection, logger: logger, stopExternal: { stream in
            // Another proxy's session: the engine must hear stop, or it keeps playing.
            guard let command = stream.commandURL, !command.isEmpty else { return }
            if let refusal = engineURLs.refusal(for: command) {
                logger.warning("a looping stream's command_url is not called", metadata: ["loop.stream": "\(stream.id)", "loop.reason": "\(refusal)"])
                return
            }
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
        let live = LiveUpdates()
        events.subscribe("live", live)
        // Before the relay: `/ace/channel/{id}` reads the channels' order from it.
        let channels = ChannelService(store: store, margin: settings.channelReorderMargin, logger: logger)
        self.channels = channels
        Task { await channels.warmUp() }
        let relay = RelayServer(configuration: settings.relay, selector: fleet, events: events, contentGate: loops,
                                channels: channels, logger: logger)
        self.relay = relay
        let notifier = SystemdNotifier(environment: environment)
        self.notifier = notifier
        drainSeconds = settings.drainSeconds
        // One gate slot per relay loop, fed from that loop's own heartbeat: the
        // watchdog pings only while every loop turns.
        let gate = WatchdogGate()
        let turns = (0..<max(settings.relay.workers, 1)).map { gate.register("relay-\($0)") }
        relay.loopTurned = { worker in turns[worker].turned() }
        pinger = WatchdogPinger(notifier: notifier, gate: gate, logger: logger)
        let collector = StatsCollector(store: store, retention: settings.statsRetention, loops: loops,
                                       urlRefusal: { engineURLs.refusal(for: $0) }, logger: logger)
        events.subscribe("stats", collector)
        let monitor = HealthMonitor(fleet: fleet, store: store, probe: EngineProbe(timeout: settings.fleet.healthCheckTimeout), logger: logger)
        let (vpn, vpnServices) = VPNServices.make(settings: settings.vpn, docker: dockerClient, provisioner: provisioner,
                                                  store: store, live: live, logger: logger)
        let dispatcharr = settings.dispatcharr.map { DispatcharrBridge(configuration: $0, channels: channels, logger: logger) }
        var plane = ControlPlane(fleet: fleet, provisioner: provisioner, store: store, relay: relay, loops: loops, metrics: metrics,
                                 apiKey: settings.apiKey,
                                 version: RelayServer.version, streamPort: { relay.port }, channels: channels,
                                 playlists: PlaylistSettings(publicURL: settings.publicURL,
                                                             fetchTimeout: .milliseconds(Int64(settings.m3uTimeout * 1000))),
                                 dispatcharr: dispatcharr?.sync, live: live, engineURLs: engineURLs, vpn: vpn,
                                 health: monitor, stats: collector)
        plane.maxConcurrentRequests = settings.apiMaxRequests
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
            ServicePolicy.auxiliary(PeriodicService(description: "returning freed memory", interval: MallocTuning.trimInterval,
                                                    logger: logger) {
                MallocTuning.returnFreedMemory()
            }),
            ServicePolicy.auxiliary(PeriodicService(description: "retention", interval: 600,
                                                    failure: "cannot prune old samples and events", logger: logger) {
                try await store.prune(Store.Retention(samples: settings.statsRetention))
            }),
        ]
        services += vpnServices
        services += PanelServices.make(plane: plane, live: live, interval: settings.sseUpdateInterval, logger: logger)
        // Every channel source is measured: from its hub while players watch it, by a probe otherwise.
        let prober = SourceProber(relay: relay, catalog: channels, sink: channels, stats: collector, loops: loops,
                                  settings: settings.probe, logger: logger)
        services.append(ServicePolicy.auxiliary(SourceProbeService(prober: prober)))
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
        if let dispatcharr, let configuration = settings.dispatcharr {
            let interval = Double(configuration.syncInterval.components.seconds)
            services.append(ServicePolicy.auxiliary(PeriodicService(description: "Dispatcharr sync", interval: interval,
                                                                    failure: "cannot read channels from Dispatcharr; measuring and playback go on",
                                                                    logger: logger) {
                try await dispatcharr.syncOnce()
            }))
        }
        if notifier.isEnabled {
            services.append(ServicePolicy.auxiliary(PeriodicService(description: "systemd status", interval: 5, logger: logger) {
                let totals = relay.totals()
                notifier.status("\(totals.players) players, \(totals.hubs) hubs\(relay.isDraining ? ", draining" : "")")
            }))
        }
        services.append(ServicePolicy.shutdownWatch(ShutdownWatchService(progress: progress)))
        self.services = services
    }


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
        let failure = Locked<(any Error)?>(nil)
        let progress = progress
        Task {
            do { try await group.run() } catch { failure.withLock { $0 = error } }
            progress.advance(to: .ended)
        }
        if progress.wait(for: .ready) == .ready {
            // Both ports accept and the store is open: only now is the service up for systemd.
            notifier.ready()
            pinger?.start()
            whenReady()
        }
        progress.wait(for: .stopping)
        notifier.stopping()
        let stopBegan = DispatchTime.now()
        if drainSeconds > 0 { drain() }
        if progress.wait(for: .ended, until: stopBegan + Self.groupShutdownLimit) != .ended {
            logger.warning("the control plane did not stop within \(Int(Self.groupShutdownLimit)) s; stopping the relay anyway")
        }
        // The loops stop now on purpose: a withheld ping would only be noise.
        pinger?.stop()
        relay.shutdown(timeout: Self.relayStopLimit)
        if let error = failure.withLock({ $0 }) { throw (error as? StartFailure) ?? .stopped(error) }
    }

    /// `--drain-seconds`: `/healthz` turns 503 and new players are refused at
    /// once, players already connected keep streaming until they all left or
    /// the time is up. The relay loops keep turning, so the watchdog keeps pinging.
    private func drain() {
        relay.beginDrain()
        let deadline = Date().addingTimeInterval(drainSeconds)
        let players = relay.totals().players
        logger.notice("draining: refusing new players", metadata: ["relay.players": "\(players)", "relay.drain_s": "\(drainSeconds.formattedSeconds)"])
        notifier.status("draining: \(players) players")
        while Date() < deadline, relay.totals().players > 0 { usleep(100_000) }
        logger.info("drain over", metadata: ["relay.players": "\(relay.totals().players)"])
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
