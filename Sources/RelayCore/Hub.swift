import Foundation
import Logging
import Locking
import Synchronization

/// One engine playback session for one content, shared by every player of it
/// on this host.
///
/// A hub is owned by the worker whose player asked first: its engine requests,
/// timers and ingest run on that worker's loop. Players on any worker read its
/// history; the hub flags their subscriptions after it publishes bytes.
///
/// The hub carries out what its `HubStateMachine` decides: the engine side is an
/// `UpstreamSession`, the bytes go through an `IngestPipeline`. A start or
/// reconnect that runs out of time fails the hub: its players get an error or a
/// close, never a silent connection.
final class Hub: @unchecked Sendable {
    let key: ContentKey
    /// This hub in events.
    let id: HubID
    let owner: Worker
    let history: StreamHistory
    let counters = RelayCounters()
    /// Players attached, counted by the registry under its lock.
    let clientCount = Atomic<Int>(0)
    /// Probes holding the hub open (`RelayServer.openProbe`), counted by the registry under its lock.
    let probeCount = Atomic<Int>(0)
    /// Set by the registry when a player first attaches. A hub no player ever had
    /// reserves only spare engine capacity, may be preempted, and closes at once
    /// when its probe ends.
    let hadPlayers = Atomic<Bool>(false)
    let createdAt = Date()
    /// The HLS segments of `history`, for HLS responders on any loop.
    let segments: HLSSegmentIndex
    /// The HLS players counted in `clientCount`, by address and user agent.
    let audience = HLSAudience()

    // Shared with players on other threads.
    private let phaseValue = Atomic<UInt8>(HubPhase.starting.rawValue)
    private let failureValue = Locked<HubFailure?>(nil)
    private let summary = Locked<HubSummary>(HubSummary())
    /// Measured bitrate, for players' lag limits and status pages.
    private let measuredBitsPerSecond = Atomic<Int>(0)
    /// Bytes the aligner threw away (garbage between packets).
    private let discardedBytes = Atomic<UInt64>(0)
    /// Stream packets taken in since the hub opened (keepalives not counted), for channel players' silence checks.
    private let streamPackets = Atomic<UInt64>(0)
    /// `HubUpstream`: whether the engine stream flows or is being reconnected.
    private let upstreamValue = Atomic<UInt8>(HubUpstream.flowing.rawValue)

    // Owned by `owner`'s loop.
    private var machine: HubStateMachine
    private let ingest: IngestPipeline
    private let upstream: UpstreamSession
    private var engine: EngineEndpoint?
    /// Stream packets since the current playback opened.
    private var packetsSinceOpen: UInt64 = 0
    /// Continuity errors already counted, so each ingest adds only the new ones.
    private var countedContinuityErrors: UInt64 = 0
    private var lastMeasuredAt: Double = 0
    /// The engine the hub last streamed from, to tell a switch from a reconnect.
    private var lastLiveEngine: EngineEndpoint?
    /// Why the last engine attempt failed; told to players when no engine is left to try.
    private var lastAttemptError: String?
    /// The session reported as started and not yet as ended.
    private var reportedStream: StreamSessionInfo?
    /// Engine reservations answer asynchronously; a stale answer carries an old generation.
    private var reservation = 0
    private var startDeadline: TimerWatcher!
    private var graceTimer: TimerWatcher!
    /// Housekeeping twice a second: keepalives, silence, attempt deadlines, measurements.
    private var tickTimer: TimerWatcher!
    private var retryTimer: TimerWatcher!
    private let logger: Logger

    private var configuration: RelayConfiguration { owner.server.configuration }
    private var selector: any EngineSelector { owner.server.selector }
    private var now: Double { owner.loop.now }
    private var events: RelayEventFeed { owner.server.events }
    /// This hub's counts, added to its owner's totals as well.
    private var counts: CounterScope { CounterScope(hub: counters, worker: owner.counters) }

    init(key: ContentKey, owner: Worker) throws {
        self.key = key
        self.owner = owner
        id = HubID(content: key, serial: owner.server.nextHubSerial())
        var logger = owner.logger
        logger[metadataKey: "relay.content"] = "\(key)"
        self.logger = logger
        let config = owner.server.configuration
        let budget = owner.server.historyBudget
        guard budget.hasRoomForAnotherHistory else { throw HistoryBudgetExhausted(limit: budget.limit) }
        history = try StreamHistory(name: "acerelay-\(key.value.prefix(8))", retainedBytes: config.historyMaxBytes, budget: budget)
        machine = HubStateMachine(timing: HubStateMachine.Timing(config))
        ingest = IngestPipeline(history: history, loop: owner.loop, configuration: config)
        segments = ingest.segmenter.index
        upstream = UpstreamSession(curl: owner.curl, configuration: config)
        startDeadline = TimerWatcher(loop: owner.loop) { [unowned self] in self.startTimedOut() }
        graceTimer = TimerWatcher(loop: owner.loop) { [unowned self] in self.graceExpired() }
        tickTimer = TimerWatcher(loop: owner.loop) { [unowned self] in self.tick() }
        retryTimer = TimerWatcher(loop: owner.loop) { [unowned self] in self.retry() }
        // Here rather than in `start()`, so it precedes the first player's `playerJoined`.
        owner.server.events.publish(.hubStarted(id))
    }

    // MARK: Read by players, any thread

    var phase: HubPhase { HubPhase(rawValue: phaseValue.load(ordering: .acquiring)) ?? .closed }
    var failure: HubFailure? { failureValue.withLock { $0 } }
    var latestJoinPoint: UInt64? { history.latestJoinPoint?.offset }
    var bitsPerSecond: Int { measuredBitsPerSecond.load(ordering: .relaxed) }
    /// History offsets a reader may send now.
    var readableRange: Range<UInt64> { history.oldestReadable..<max(history.end, history.oldestReadable) }

    /// `#EXT-X-TARGETDURATION` of this hub's playlist: the configured segment length,
    /// or the longest segment cut so far, in whole seconds; it never shrinks.
    var hlsTargetDuration: Int {
        max(Int(configuration.hlsSegmentSeconds.rounded(.up)), Int(segments.longestDuration.rounded()), 1)
    }

    /// Seconds of history HLS needs. A segment leaves the playlist about `window + 2`
    /// target durations after its start (the window after it, the segment being cut),
    /// then RFC 8216 §6.2.2 wants it for its duration plus the playlist's
    /// (`window + 1`); one more is slack.
    private var hlsRetentionSeconds: Double {
        Double(2 * configuration.hlsWindow + 4) * Double(hlsTargetDuration)
    }
    /// Stream packets taken in so far; it stands still while the engine is silent.
    var packetsReceived: UInt64 { streamPackets.load(ordering: .relaxed) }
    var upstreamCondition: HubUpstream { HubUpstream(rawValue: upstreamValue.load(ordering: .relaxed)) ?? .flowing }

    func addSubscriber(_ subscription: Subscription) { ingest.addSubscriber(subscription) }
    func removeSubscriber(_ subscription: Subscription) { ingest.removeSubscriber(subscription) }

    // MARK: Starting

    /// Begins the engine session. On the owner's loop, right after creation.
    func start() {
        logger.info("opening engine session")
        machine.started(at: now)
        lastMeasuredAt = now
        startDeadline.schedule(after: configuration.startTimeout)
        tickTimer.schedule(after: 0.5, every: 0.5)
        reserveEngine(excluding: [])
    }

    /// True while only probes ever held this hub.
    var isProbeOnly: Bool { !hadPlayers.load(ordering: .acquiring) }

    private func reserveEngine(excluding excluded: Set<EngineEndpoint>) {
        reservation += 1
        let expected = reservation
        if isProbeOnly {
            // A probe takes only what players would leave unused, at once: no waiting, no provisioning.
            if let spare = selector.reserveSpareEngine(for: key, excluding: excluded) {
                engineReserved(.success(spare), reservation: expected)
                return
            }
            // A player may have attached since the check above; it gets a player's reservation.
            if isProbeOnly {
                // Once an engine failed this probe, the engine's reason says more than the lack of room.
                let unavailable = excluded.isEmpty ? Hub.noSpareEngine
                    : EngineUnavailable(code: "no_engine", message: "no other engine has room for a probe", retryAfterSeconds: 30)
                engineReserved(.failure(unavailable), reservation: expected)
                return
            }
        } else if !selector.hasFreeSlot(excluding: excluded),
                  owner.server.preemptProbeHub(sparing: self, then: { [self] in
                      owner.execute { [self] in
                          guard expected == reservation, !machine.isClosed else { return }
                          reservePlayerEngine(excluding: excluded, reservation: expected)
                      }
                  }) {
            // A probe-only hub gives its engine back; this hub reserves once it has.
            return
        }
        reservePlayerEngine(excluding: excluded, reservation: expected)
    }

    /// What a probe-only hub fails with when no engine has a slot beyond the one kept for players.
    static let noSpareEngine = EngineUnavailable(
        code: "probe_no_capacity", message: "no engine has room for a probe beyond what players may need", retryAfterSeconds: 30)

    private func reservePlayerEngine(excluding excluded: Set<EngineEndpoint>, reservation expected: Int) {
        selector.reserveEngine(for: key, excluding: excluded) { [self] result in
            owner.execute { [self] in engineReserved(result, reservation: expected) }
        }
    }

    private func engineReserved(_ result: Result<EngineEndpoint, EngineUnavailable>, reservation expected: Int) {
        guard expected == reservation, !machine.isClosed else {
            if case .success(let engine) = result { selector.releaseEngine(engine, for: key) }
            return
        }
        switch result {
        case .failure(let unavailable) where unavailable == Hub.noSpareEngine:
            fail(HubFailure(status: 503, code: unavailable.code, message: unavailable.message, retryAfter: unavailable.retryAfterSeconds))
        case .success(let chosen):
            engine = chosen
            updateSummary { $0.engine = chosen.baseURL }
            openSession()
        case .failure(let unavailable):
            carryOut(machine.engineUnavailable(unavailable, lastAttemptError: lastAttemptError, at: now), reason: unavailable.message)
        }
    }

    /// Asks the engine for a session, then plays it.
    private func openSession() {
        guard let engine else { return }
        upstream.requestSession(engine: engine, content: key) { [self] result in
            guard !machine.isClosed else { return }
            switch result {
            case .success(let granted):
                updateSummary { $0.playbackSessionID = granted.playbackSessionID; $0.infohash = granted.infohash }
                openPlayback()
            case .failure(let error):
                attemptFailed(error.message)
            }
        }
    }

    /// Reads the session's playback URL, feeding every chunk to the ingest pipeline.
    private func openPlayback() {
        // Set before any chunk can arrive: transfers answer on a later loop iteration.
        packetsSinceOpen = 0
        upstream.openPlayback(onData: { [unowned self] chunk in
            received(chunk)
        }, onEnd: { [self] reason in
            guard !machine.isClosed else { return }
            ingest.finish()
            countContinuity()
            if machine.isLive {
                beginReconnect(reason)
            } else {
                attemptFailed(reason)
            }
        })
    }

    // MARK: Ingest

    private func received(_ chunk: UnsafeRawBufferPointer) -> Bool {
        guard !machine.isClosed else { return false }
        counts.add(.bytesIn, UInt64(chunk.count))
        let packets: UInt64
        do {
            packets = try ingest.ingest(chunk)
        } catch {
            fail(HubFailure(status: 503, code: "relay_storage", message: "cannot store the stream: \(error)", retryAfter: 10))
            return false
        }
        discardedBytes.store(ingest.discardedBytes, ordering: .relaxed)
        if packets > 0 {
            // Silence means no packets: an engine sending only garbage is as good as quiet.
            machine.dataArrived(at: now)
            packetsSinceOpen += packets
            streamPackets.add(packets, ordering: .relaxed)
            countContinuity()
            if !machine.isLive { becameLive() }
        }
        return true
    }

    private func countContinuity() {
        let errors = ingest.inspector.continuityErrors
        if errors > countedContinuityErrors {
            counts.add(.continuityErrors, errors - countedContinuityErrors)
            countedContinuityErrors = errors
        }
    }

    private func appendKeepalive() {
        machine.keepaliveWritten(at: now)
        ingest.appendKeepalive()
    }

    private func becameLive() {
        guard let resumed = machine.becameLive(at: now) else { return }
        reportStreamStarted()
        switch resumed {
        case .started:
            startDeadline.cancel()
            if let engine { selector.engineStarted(engine, for: key) }
            logger.info("engine session live", metadata: ["relay.engine": "\(engine?.baseURL ?? "-")"])
        case .recovered(let seconds):
            if let engine { selector.engineStarted(engine, for: key) }
            logger.info("engine stream back", metadata: ["relay.reconnect_s": "\(Int(seconds))"])
        }
        if let engine {
            events.publish(.hubLive(id, engine: engine))
            if let previous = lastLiveEngine, previous != engine {
                events.publish(.engineSwitched(id, from: previous, to: engine))
            }
            lastLiveEngine = engine
        }
        updateSummary { $0.state = "live" }
        upstreamValue.store(HubUpstream.flowing.rawValue, ordering: .relaxed)
        if phaseValue.exchange(HubPhase.streaming.rawValue, ordering: .acquiringAndReleasing) != HubPhase.streaming.rawValue {
            ingest.notifySubscribers()
        }
    }

    // MARK: Failure, reconnect

    /// The current start or reconnect attempt did not work; escalate or give up.
    private func attemptFailed(_ reason: String) {
        upstream.cancel()
        lastAttemptError = reason
        switch machine.state {
        case .starting: logger.warning("engine could not start the stream", metadata: ["relay.reason": "\(reason)"])
        case .reconnecting:
            logger.warning("reconnect attempt failed", metadata: ["relay.reason": "\(reason)"])
            upstreamValue.store(HubUpstream.reconnectFailed.rawValue, ordering: .relaxed)
        case .live, .closed: break
        }
        carryOut(machine.attemptFailed(engine: engine, reason: reason, at: now), reason: reason)
    }

    private func carryOut(_ decision: HubStateMachine.AfterFailure, reason: String) {
        switch decision {
        case .tryAnotherEngine(let abandon, let excluded):
            if let abandon { abandonEngine(abandon, reason: reason) }
            reserveEngine(excluding: excluded)
        case .retryLater(let delay, let abandon):
            if let abandon { abandonEngine(abandon, reason: reason) }
            retryTimer.schedule(after: delay)
        case .reconnect:
            beginReconnect(reason)
        case .fail(let failure):
            fail(failure)
        case .nothing:
            return
        }
    }

    private func retry() {
        switch machine.retryDue(at: now) {
        case .openPlayback: openPlayback()
        case .openSession: openSession()
        case .reserveEngine(let excluded): reserveEngine(excluding: excluded)
        case nil: return
        }
    }

    private func beginReconnect(_ reason: String) {
        guard machine.beginReconnect(at: now) else { return }
        logger.warning("engine stream interrupted; reconnecting", metadata: ["relay.reason": "\(reason)"])
        events.publish(.hubReconnecting(id, reason: reason))
        counts.add(.reconnects)
        upstreamValue.store(HubUpstream.reconnecting.rawValue, ordering: .relaxed)
        upstream.cancel()
        updateSummary { $0.state = "reconnecting" }
        ingest.inspector.resetContinuity()
        openPlayback()
    }

    /// Stops using `engine` after it failed us: stop its session, release it, tell the selector.
    private func abandonEngine(_ engine: EngineEndpoint, reason: String) {
        selector.engineFailed(engine, reason: reason)
        stopSession()
        selector.releaseEngine(engine, for: key)
        self.engine = nil
    }

    private func startTimedOut() {
        guard let failure = machine.startDeadlinePassed() else { return }
        if let engine { selector.engineFailed(engine, reason: "no stream within \(Int(configuration.startTimeout)) s") }
        fail(failure)
    }

    private func tick() {
        let decision = machine.tick(at: now, packetsSinceOpen: packetsSinceOpen, retryPending: retryTimer.isActive)
        if decision.stallBegan {
            counts.add(.stalls)
            events.publish(.hubStalled(id))
        }
        if decision.keepalive { appendKeepalive() }
        switch decision.outcome {
        case .nothing: break
        case .reconnect(let reason): beginReconnect(reason)
        case .attemptFailed(let reason): attemptFailed(reason)
        case .fail(let failure): fail(failure)
        }
        guard !machine.isClosed else { return }
        measuredBitsPerSecond.store(ingest.inspector.bitsPerSecond, ordering: .relaxed)
        ingest.retain(seconds: max(configuration.historySeconds, hlsRetentionSeconds), maxBytes: configuration.historyMaxBytes)
        // An HLS player that stopped fetching leaves after three target durations (then the grace period runs).
        let quiet = owner.server.registry.expireViewers(of: self, before: now - 3 * Double(hlsTargetDuration))
        for _ in 0..<quiet { events.publish(.playerLeft(id)) }
        if now - lastMeasuredAt >= 1 {
            lastMeasuredAt = now
            events.publish(.hubMeasured(measurement()))
        }
    }

    private func measurement() -> HubMeasurement {
        HubMeasurement(
            hub: id, bitsPerSecond: ingest.inspector.bitsPerSecond,
            continuityErrors: counters[.continuityErrors],
            bytesIn: counters[.bytesIn],
            bytesOut: counters[.bytesOut],
            players: clientCount.load(ordering: .relaxed),
            joinPoints: history.joinPointCount,
            probes: probeCount.load(ordering: .relaxed),
            facts: ingest.factReader.facts,
            packets: ingest.inspector.packets,
            nullPackets: ingest.inspector.nullPackets,
            stallSeconds: machine.stallSeconds(at: now),
            timeToFirstByte: machine.timeToFirstByte,
            secondsSinceData: now - machine.lastDataAt)
    }

    // MARK: Closing

    /// The last player or probe let go: keep the session for the grace period, or,
    /// when only probes ever held the hub, close it now.
    func lastClientLeft() {
        guard !machine.isClosed, clientCount.load(ordering: .relaxed) == 0, probeCount.load(ordering: .relaxed) == 0 else { return }
        if isProbeOnly {
            // Nobody watched it: a grace period would hold an engine session for nobody.
            if owner.server.registry.removeIfIdle(self) { close(.idle, log: "probe ended") }
            return
        }
        machine.lastPlayerLeft(at: now)
        updateSummary { $0.idleSince = Date() }
        graceTimer.schedule(after: configuration.gracePeriod)
    }

    private func graceExpired() {
        guard machine.graceExpired(at: now) else { return }
        if owner.server.registry.removeIfIdle(self) {
            close(.idle, log: "no players for \(Int(configuration.gracePeriod)) s")
        } else {
            machine.playerArrived()
            updateSummary { $0.idleSince = nil }
        }
    }

    /// Closes a probe-only hub so a player can have its engine. On the owner's loop,
    /// after the registry removed it.
    func preempt() {
        fail(HubFailure(status: 503, code: "probe_preempted", message: "a player needed the engine this probe held", retryAfter: nil))
    }

    /// Closes the hub because the relay is stopping. On the owner's loop.
    func shutdown() {
        owner.server.registry.remove(self)
        close(.relayStopping, log: "relay stopping")
    }

    /// Ends the hub on the control plane's word (a looping broadcast, an operator's
    /// request). On the owner's loop.
    func terminate(_ failure: HubFailure) { fail(failure) }

    private func fail(_ failure: HubFailure) {
        guard !machine.isClosed else { return }
        // A probe that gave way to players is how probes are meant to work, not an error.
        let level: Logger.Level = isProbeOnly && clientCount.load(ordering: .relaxed) == 0 ? .info : .error
        logger.log(level: level, "hub failed", metadata: ["relay.code": "\(failure.code)", "relay.reason": "\(failure.message)"])
        failureValue.withLock { $0 = failure }
        owner.server.registry.remove(self)
        close(.failed(code: failure.code, message: failure.message), log: failure.message)
    }

    private func close(_ why: HubCloseReason, log reason: String) {
        guard !machine.isClosed else { return }
        let phase: HubPhase = if case .failed = why { .failed } else { .closed }
        logger.info("closing hub", metadata: ["relay.reason": "\(reason)"])
        reportStreamEnded(reason: reason)
        machine.closed()
        updateSummary { $0.state = phase == .failed ? "failed" : "closed" }
        upstream.cancel()
        ingest.stop()
        for timer in [startDeadline, graceTimer, tickTimer, retryTimer] { timer?.cancel() }
        stopSession()
        if let engine { selector.releaseEngine(engine, for: key) }
        engine = nil
        phaseValue.store(phase.rawValue, ordering: .releasing)
        ingest.notifySubscribers()
        events.publish(.hubClosed(id, reason: why))
    }

    private func reportStreamStarted() {
        guard let engine, let session = upstream.session, reportedStream?.session != session else { return }
        reportStreamEnded(reason: "engine session replaced")
        let info = StreamSessionInfo(content: key, engine: engine, session: session)
        reportedStream = info
        events.publish(.streamStarted(info))
    }

    private func reportStreamEnded(reason: String) {
        guard let reported = reportedStream else { return }
        reportedStream = nil
        events.publish(.streamEnded(reported, reason: reason))
    }

    /// Ends the engine session (`stop`), reporting the stream as ended first.
    private func stopSession() {
        reportStreamEnded(reason: "stopped")
        upstream.stop(countedBy: owner.server, logger: logger)
    }

    // MARK: Status

    private func updateSummary(_ change: (inout HubSummary) -> Void) {
        var copy = summary.withLock { $0 }
        change(&copy)
        summary.withLock { [copy] in $0 = copy }
    }

    func snapshot() -> HubSnapshot {
        let s = summary.withLock { $0 }
        let players = clientCount.load(ordering: .relaxed)
        return HubSnapshot(
            contentKey: key.value, keyType: key.kind.rawValue,
            state: s.state == "live" && players == 0 ? "draining" : s.state,
            engine: s.engine, playbackSessionID: s.playbackSessionID, infohash: s.infohash,
            players: players, startedAt: createdAt, idleSince: players == 0 ? s.idleSince : nil,
            bytesIn: counters[.bytesIn],
            bytesOut: counters[.bytesOut],
            bitsPerSecond: bitsPerSecond,
            continuityErrors: counters[.continuityErrors],
            discardedBytes: discardedBytes.load(ordering: .relaxed),
            reconnects: counters[.reconnects],
            stalls: counters[.stalls],
            skips: counters[.skips],
            drops: counters[.drops],
            historyBytes: history.residentBytes,
            hlsPlayers: audience.count,
            hlsSegments: segments.count,
            hlsPlaylistRequests: counters[.hlsPlaylistRequests],
            hlsSegmentRequests: counters[.hlsSegmentRequests],
            firstByteMillisecondsAverage: {
                let count = counters[.firstBytes]
                guard count > 0 else { return nil }
                return Double(counters[.firstByteMicroseconds]) / Double(count) / 1_000
            }())
    }
}

/// The parts of a hub's state that status pages show, guarded together.
struct HubSummary: Sendable {
    var state = "starting"
    var engine: String?
    var playbackSessionID: String?
    var infohash: String?
    var idleSince: Date?
}
