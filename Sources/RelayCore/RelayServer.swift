import Foundation
import Logging
import PersistentConditions
import Locking
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The relay: the stream port served by `configuration.workers` loops, the
/// hubs, and the engine selector they share.
///
/// `start()` binds every listener before any thread runs, so a bad address is
/// reported to the caller; `shutdown()` stops accepting, stops every engine
/// session and joins the threads, within a time limit.
public final class RelayServer: @unchecked Sendable {
    public static let version = "0.1.0"

    public let configuration: RelayConfiguration
    public let selector: any EngineSelector
    /// Where the relay publishes what it does; observers subscribe to it.
    public let events: RelayEventFeed
    /// Refuses contents before a hub opens (e.g. looping broadcasts); nil lets all through.
    public let contentGate: (any ContentGate)?
    /// Channels for `/ace/channel/{id}`: their sources and where failures go; nil answers 404.
    public let channels: (any ChannelDirectory)?
    let registry: HubRegistry
    let channelLedger = ChannelLedger()
    /// `/ace/channel/{id}.m3u8` timelines by channel id (only ids the directory knows).
    let hlsChannels = Locked<[String: HLSChannelState]>([:])
    let standbys: ChannelStandbys
    /// The bound on stream-port connections (`maxPlayers`).
    let admission: PlayerAdmission
    /// Shared by every hub's history (`historyBudget`).
    let historyBudget: HistoryBudget
    /// Engine `stop` commands in flight; shutdown waits for them.
    let pendingStops = Atomic<Int>(0)
    private let logger: Logger
    /// Accepts failing (out of file descriptors, as a rule): one condition for every loop, so
    /// the log says when it began and ended instead of a line per loop per 100 ms pause.
    let acceptFailures: PersistentConditionLog
    private var workers: [Worker] = []
    private let lifecycle = Locked<Lifecycle>(.idle)
    private let accepting = Atomic<Bool>(true)
    private let hubSerial = Atomic<UInt64>(0)
    /// Spreads probe hubs over the workers.
    private let probeRotation = Atomic<UInt64>(0)

    /// A serial number for a new hub's `HubID`.
    func nextHubSerial() -> UInt64 { hubSerial.add(1, ordering: .relaxed).newValue }

    /// False once shutdown began: new connections are closed, new hubs refused.
    var isAccepting: Bool { accepting.load(ordering: .relaxed) }

    private enum Lifecycle { case idle, running, stopped }

    /// The bound stream port (the configured one, or the one chosen for port 0).
    public private(set) var port: UInt16 = 0

    public init(configuration: RelayConfiguration, selector: any EngineSelector,
                events: RelayEventFeed = RelayEventFeed(), contentGate: (any ContentGate)? = nil,
                channels: (any ChannelDirectory)? = nil, logger: Logger) {
        self.configuration = configuration
        self.channels = channels
        registry = HubRegistry(maxContentsPerAddress: configuration.maxContentsPerAddress)
        standbys = ChannelStandbys(registry: registry, ledger: channelLedger)
        self.selector = selector
        self.events = events
        self.contentGate = contentGate
        self.logger = logger
        acceptFailures = PersistentConditionLog(name: "accepting players failed (out of file descriptors?); pausing accepts 100 ms per failure",
                                                logger: logger)
        admission = PlayerAdmission(limit: configuration.maxPlayers)
        historyBudget = HistoryBudget(limit: configuration.historyBudget)
    }

    public func start() throws {
        try lifecycle.withLock { state in
            guard case .idle = state else { return }
            precondition(CurlGlobal.initialized, "curl_global_init failed")
            // Writes to a player that hung up must fail with EPIPE, not kill the process.
            signal(SIGPIPE, SIG_IGN)
            var sockets: [ListeningSocket] = []
            do {
                let first = try ListeningSocket(host: configuration.listenHost, port: configuration.listenPort, exclusive: true)
                sockets.append(first)
                for _ in 1..<max(configuration.workers, 1) {
                    sockets.append(try ListeningSocket(host: configuration.listenHost, port: first.port))
                }
            } catch let error as RelayError {
                for socket in sockets { socket.close() }
                throw error
            } catch {
                for socket in sockets { socket.close() }
                throw RelayError.listenFailed("\(configuration.listenHost):\(configuration.listenPort): \(error)")
            }
            port = sockets[0].port
            workers = sockets.enumerated().map { Worker(index: $0.offset, server: self, listener: $0.element, logger: logger) }
            for worker in workers { worker.startThread() }
            state = .running
            logger.info("relay listening", metadata: ["relay.address": "\(configuration.listenHost):\(port)", "relay.workers": "\(workers.count)"])
        }
    }

    /// Stops accepting, stops every engine session (waiting up to `timeout` for
    /// the engines to confirm), closes every player and joins the threads.
    public func shutdown(timeout: Double = 5) {
        let running = lifecycle.withLock { state -> Bool in
            defer { state = .stopped }
            if case .running = state { return true }
            return false
        }
        guard running else { return }
        logger.info("relay stopping")
        accepting.store(false, ordering: .relaxed)
        // Listeners first, and wait for it: a hub created after the snapshot below
        // would never get its stop command.
        let closed = DispatchGroup()
        for worker in workers {
            closed.enter()
            worker.execute {
                worker.closeListener()
                closed.leave()
            }
        }
        _ = closed.wait(timeout: .now() + 1)
        for hub in registry.all { hub.owner.execute { hub.shutdown() } }
        let deadline = Date().addingTimeInterval(timeout)
        // Let the stop commands reach the engines: a stop that never arrives leaves
        // an engine streaming to nobody until its own timeout.
        usleep(50_000)
        while pendingStops.load(ordering: .relaxed) > 0, Date() < deadline { usleep(10_000) }
        for worker in workers { worker.execute { worker.stopLoop() } }
        for worker in workers { worker.join() }
        logger.info("relay stopped")
    }

    /// Closes the hub of `content`, if one is open: its engine session is stopped and
    /// its players get `refusal` (before their head) or a close. Safe from any thread;
    /// returns whether a hub was found.
    @discardableResult
    public func closeHub(for content: ContentKey, refusal: ContentRefusal) -> Bool {
        guard let hub = registry.all.first(where: { $0.key == content }) else { return false }
        hub.owner.execute {
            hub.terminate(HubFailure(status: refusal.status, code: refusal.code, message: refusal.message, retryAfter: nil))
        }
        return true
    }

    /// Opens `content` for a probe: a hub like a player's (a player arriving meanwhile
    /// joins it, with no second engine session), held until `ProbeHandle.release()`.
    ///
    /// A probe never takes what a player could need: a hub opened by a probe reserves
    /// an engine only when a slot stays free for a player after it, never waits for
    /// one and never asks for provisioning; a player that finds no free slot
    /// preempts it. Released, it closes at once unless a player came (then the
    /// normal grace period applies). Refused by the content gate (a looping
    /// broadcast) or while stopping, the handle carries the refusal and no hub.
    public func openProbe(_ content: ContentKey) async -> ProbeHandle {
        guard isAccepting, !workers.isEmpty else {
            return ProbeHandle(content: content, refusal: ContentRefusal(status: 503, code: "relay_stopping", message: "the relay is shutting down"))
        }
        if let refusal = contentGate?.refusal(for: content) {
            return ProbeHandle(content: content, refusal: refusal)
        }
        let worker = workers[Int(probeRotation.add(1, ordering: .relaxed).newValue % UInt64(workers.count))]
        return await withCheckedContinuation { continuation in
            worker.execute { [self] in
                do {
                    let attached = try registry.attachProbe(content) { try Hub(key: content, owner: worker) }
                    if attached.created { attached.hub.start() }
                    continuation.resume(returning: ProbeHandle(content: content, hub: attached.hub))
                } catch {
                    continuation.resume(returning: ProbeHandle(content: content, refusal: ContentRefusal(
                        status: 503, code: "relay_error", message: "cannot open a stream buffer: \(error)")))
                }
            }
        }
    }

    /// Closes one hub only probes hold so its engine goes to a player; `then` runs
    /// (on any thread) once that hub released its engine. False when there is none.
    func preemptProbeHub(sparing spared: Hub, then: @escaping @Sendable () -> Void) -> Bool {
        guard let hub = registry.removeProbeOnlyHub(sparing: spared) else { return false }
        logger.info("closing a probe so a player gets its engine", metadata: ["relay.content": "\(hub.key)"])
        hub.owner.execute {
            hub.preempt()
            then()
        }
        return true
    }

    /// Totals since start, summed over the workers; from any thread, off the hot path.
    public func totals() -> RelayTotals {
        var totals = RelayTotals()
        for worker in workers {
            let c = worker.counters
            totals.bytesIn += c[.bytesIn]
            totals.bytesOut += c[.bytesOut]
            totals.skips += c[.skips]
            totals.drops += c[.drops]
            totals.continuityErrors += c[.continuityErrors]
            totals.reconnects += c[.reconnects]
            totals.playersServed += c[.playersServed]
            totals.stalls += c[.stalls]
            totals.hlsPlaylistRequests += c[.hlsPlaylistRequests]
            totals.hlsSegmentRequests += c[.hlsSegmentRequests]
            totals.players += worker.connections.withLock { $0.values.filter { $0.isPlayer }.count }
        }
        let hubs = registry.all
        totals.hubs = hubs.count
        totals.hlsPlayers = hubs.reduce(0) { $0 + $1.audience.count }
        totals.acceptFailures = acceptFailures.occurrences
        totals.playersRefused = admission.refusedTotal
        totals.historyBytes = historyBudget.bytesHeld
        totals.historyBudgetBytes = historyBudget.limit
        return totals
    }

    /// A consistent-enough picture of every hub and player, from any thread.
    public func status() -> RelayStatus {
        let hubs = registry.all
        var ends: [String: UInt64] = [:]
        for hub in hubs { ends[hub.key.value] = hub.history.end }
        var clients: [ClientSnapshot] = []
        for worker in workers {
            let open = worker.connections.withLock { Array($0.values) }
            for connection in open {
                guard var snapshot = connection.snapshot() else { continue }
                if let end = ends[snapshot.contentKey] { snapshot.lagBytes = end > snapshot.offset ? end - snapshot.offset : 0 }
                clients.append(snapshot)
            }
        }
        let snapshots = hubs.map { $0.snapshot() }.sorted { $0.startedAt < $1.startedAt }
        return RelayStatus(version: Self.version, workers: workers.count, streams: snapshots.count,
                           playerCount: clients.count, hlsPlayerCount: snapshots.reduce(0) { $0 + $1.hlsPlayers },
                           hubs: snapshots, clients: clients, channels: channelLedger.all,
                           historyBytes: historyBudget.bytesHeld, historyBudgetBytes: historyBudget.limit)
    }

    /// Playback of every channel a player asked for since start, by channel id.
    public func channelPlayback() -> [ChannelPlaybackSnapshot] { channelLedger.all }

    /// Playback of one channel; nil when no player asked for it since start.
    public func channelPlayback(_ channelID: String) -> ChannelPlaybackSnapshot? { channelLedger.snapshot(channelID) }

    /// `/ace/status`'s body; without `showingPlayers` the players are only counted.
    func statusJSON(showingPlayers: Bool = true) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        var status = status()
        if !showingPlayers {
            status.clients = []
            status.clientsHidden = "player addresses and user agents are shown only with the API key (X-API-Key or ?api_key=)"
        }
        return (try? encoder.encode(status)).map { Array($0) } ?? Array("{}".utf8)
    }

    /// Seconds since each worker's loop last ran its heartbeat; for the systemd watchdog.
    public var workerHeartbeats: [Int64] { workers.map { $0.lastBeat.load(ordering: .relaxed) } }

    /// Called from each relay loop's heartbeat (about once a second) on that
    /// loop's thread, with the worker's index: the loop turned. Set it before
    /// `start()`; it must be cheap (the systemd watchdog's gate is one atomic store).
    public var loopTurned: (@Sendable (_ worker: Int) -> Void)?

    private let draining = Atomic<Bool>(false)

    /// True once `beginDrain()` ran: `/healthz` answers 503 and new players get
    /// 503 with `Retry-After`, while players already connected keep streaming.
    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Starts draining (SIGTERM with `--drain-seconds`): a load balancer's health
    /// check sees 503 at once and sends new players elsewhere. Safe from any thread.
    public func beginDrain() { draining.store(true, ordering: .relaxed) }
}

/// A probe's hold on a content's hub (`RelayServer.openProbe`). Release it once;
/// releasing again does nothing.
public final class ProbeHandle: Sendable {
    public let content: ContentKey
    /// The hub held, in events; nil when the probe was refused.
    public let hubID: HubID?
    /// Why no hub was opened: a looping content, the relay stopping.
    public let refusal: ContentRefusal?
    private let hub: Hub?
    private let released = Atomic<Bool>(false)

    init(content: ContentKey, hub: Hub) {
        self.content = content
        self.hub = hub
        hubID = hub.id
        refusal = nil
    }

    init(content: ContentKey, refusal: ContentRefusal) {
        self.content = content
        hub = nil
        hubID = nil
        self.refusal = refusal
    }

    /// Players on the hub now.
    public var players: Int { hub?.clientCount.load(ordering: .relaxed) ?? 0 }

    /// Lets go of the hub: it closes at once if no player ever came, else it
    /// follows the normal grace period once its players leave.
    public func release() {
        guard let hub, !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        hub.owner.server.registry.detachProbe(hub)
    }
}
