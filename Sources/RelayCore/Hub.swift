import Foundation
import Logging
import Synchronization

/// One engine playback session for one content, shared by every player of it
/// on this host.
///
/// A hub is owned by the worker whose player asked first: its engine requests,
/// timers and ingest run on that worker's loop. Players on any worker read its
/// history; the hub flags their subscriptions after it publishes bytes.
///
/// Lifecycle: starting (reserve an engine, `getstream`, open playback) → live →
/// reconnecting (same playback URL, then a new session, then another engine) →
/// live … and, once no player is left for the grace period, closed with
/// `command_url?method=stop`. A start or reconnect that runs out of time fails
/// the hub: its players get an error or a close, never a silent connection.
final class Hub: @unchecked Sendable {
    private enum State {
        case starting(excluded: Set<EngineEndpoint>)
        case live
        case reconnecting(since: Double, step: ReconnectStep, attemptStarted: Double, excluded: Set<EngineEndpoint>)
        case closed
    }

    /// Reconnects escalate: an engine's response may end while its session lives
    /// on, so the same playback URL is tried first.
    private enum ReconnectStep {
        case reopenPlayback
        case newSession
        case otherEngine
    }

    let key: ContentKey
    /// This hub in events.
    let id: HubID
    let owner: Worker
    let history: StreamHistory
    let counters = RelayCounters()
    /// This hub's counts, added to its owner's totals as well.
    private var counts: CounterScope { CounterScope(hub: counters, worker: owner.counters) }
    /// Measured bitrate, for players' lag limits and status pages.
    private let measuredBitsPerSecond = Atomic<Int>(0)
    /// Bytes the aligner threw away (garbage between packets).
    private let discardedBytes = Atomic<UInt64>(0)
    /// Continuity errors already counted, so each publish adds only the new ones.
    private var countedContinuityErrors: UInt64 = 0
    /// Players attached, counted by the registry under its lock.
    let clientCount = Atomic<Int>(0)
    let createdAt = Date()

    // Shared with players on other threads.
    private let phaseValue = Atomic<UInt8>(HubPhase.starting.rawValue)
    private let failureValue = Mutex<HubFailure?>(nil)
    private let subscribers = Mutex<[Subscription]>([])
    private let summary = Mutex<HubSummary>(HubSummary())

    // Owned by `owner`'s loop.
    private var state: State = .starting(excluded: [])
    private let aligner = TSAligner()
    private let inspector = TSInspector()
    private var writeOffset: UInt64 = 0
    private var notifiedOffset: UInt64 = 0
    private var engine: EngineEndpoint?
    private var session: EngineSession?
    private var request: CurlTransfer?
    private var playback: CurlTransfer?
    private var packetsSinceOpen: UInt64 = 0
    private var lastDataAt: Double = 0
    private var lastKeepaliveAt: Double = 0
    private var inStall = false
    private var lastMeasuredAt: Double = 0
    /// The engine the hub last streamed from, to tell a switch from a reconnect.
    private var lastLiveEngine: EngineEndpoint?
    /// Why the last engine attempt failed; told to players when no engine is left to try.
    private var lastAttemptError: String?
    /// The session reported to the stream sink as started and not yet as ended.
    private var reportedStream: StreamSessionInfo?
    /// Engine requests answer asynchronously; a stale answer carries an old generation.
    private var generation = 0
    private let pid: String
    private var startDeadline: TimerWatcher!
    private var graceTimer: TimerWatcher!
    private var tickTimer: TimerWatcher!
    private var flushTimer: TimerWatcher!
    private var retryTimer: TimerWatcher!
    private let logger: Logger

    private var configuration: RelayConfiguration { owner.server.configuration }
    private var selector: any EngineSelector { owner.server.selector }
    private var now: Double { owner.loop.now }
    private var events: RelayEventFeed { owner.server.events }

    init(key: ContentKey, owner: Worker) throws {
        self.key = key
        self.owner = owner
        id = HubID(content: key, serial: owner.server.nextHubSerial())
        var logger = owner.logger
        logger[metadataKey: "relay.content"] = "\(key)"
        self.logger = logger
        let config = owner.server.configuration
        history = try StreamHistory(name: "acerelay-\(key.value.prefix(8))", retainedBytes: config.historyMaxBytes)
        // The engine serves one player per content: the relay is that player, under its own id.
        pid = "acerelay-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        startDeadline = TimerWatcher(loop: owner.loop) { [unowned self] in self.startTimedOut() }
        graceTimer = TimerWatcher(loop: owner.loop) { [unowned self] in self.graceExpired() }
        tickTimer = TimerWatcher(loop: owner.loop) { [unowned self] in self.tick() }
        flushTimer = TimerWatcher(loop: owner.loop) { [unowned self] in self.notifySubscribers() }
        retryTimer = TimerWatcher(loop: owner.loop) { [unowned self] in self.retry() }
        inspector.joinPointFound = { [unowned self] offset in
            history.recordJoinPoint(JoinPoint(offset: offset, pcr: inspector.lastPCR, time: now))
        }
        // Here rather than in `start()`, so it precedes the first player's `playerJoined`.
        owner.server.events.publish(.hubStarted(id))
    }

    // MARK: Read by players, any thread

    var phase: HubPhase { HubPhase(rawValue: phaseValue.load(ordering: .acquiring)) ?? .closed }
    var failure: HubFailure? { failureValue.withLock { $0 } }
    var latestJoinPoint: UInt64? { history.latestJoinPoint?.offset }
    var bitsPerSecond: Int { measuredBitsPerSecond.load(ordering: .relaxed) }

    func addSubscriber(_ subscription: Subscription) { subscribers.withLock { $0.append(subscription) } }
    func removeSubscriber(_ subscription: Subscription) {
        subscribers.withLock { list in list.removeAll { $0 === subscription } }
    }

    private func notifySubscribers() {
        notifiedOffset = writeOffset
        let list = subscribers.withLock { $0 }
        for subscription in list { subscription.notify() }
    }

    // MARK: Starting

    /// Begins the engine session. On the owner's loop, right after creation.
    func start() {
        logger.info("opening engine session")
        lastDataAt = now
        lastMeasuredAt = now
        startDeadline.schedule(after: configuration.startTimeout)
        tickTimer.schedule(after: 0.5, every: 0.5)
        reserveEngine(excluding: [])
    }

    private func reserveEngine(excluding excluded: Set<EngineEndpoint>) {
        generation += 1
        let expected = generation
        selector.reserveEngine(for: key, excluding: excluded) { [self] result in
            owner.execute { [self] in engineReserved(result, generation: expected) }
        }
    }

    private func engineReserved(_ result: Result<EngineEndpoint, EngineUnavailable>, generation expected: Int) {
        guard expected == generation, !isClosed else {
            if case .success(let engine) = result { selector.releaseEngine(engine, for: key) }
            return
        }
        switch result {
        case .success(let chosen):
            engine = chosen
            updateSummary { $0.engine = chosen.baseURL }
            openSession()
        case .failure(let unavailable):
            if case .reconnecting(let since, _, _, _) = state {
                // Every engine failed this hub once; keep trying them all until the deadline.
                state = .reconnecting(since: since, step: .otherEngine, attemptStarted: now, excluded: [])
                retryTimer.schedule(after: 2)
                return
            }
            if case .starting(let excluded) = state, !excluded.isEmpty, let lastAttemptError {
                // Every engine was tried: the engines' own reason says more than "none left".
                fail(HubFailure(status: 503, code: "engine_error", message: lastAttemptError, retryAfter: unavailable.retryAfterSeconds))
                return
            }
            fail(HubFailure(status: 503, code: unavailable.code, message: unavailable.message, retryAfter: unavailable.retryAfterSeconds))
        }
    }

    /// Asks the engine for a session (`getstream?format=json`).
    private func openSession() {
        guard let engine else { return }
        cancelTransfers()
        generation += 1
        let expected = generation
        let transfer = CurlTransfer(
            url: EngineAPI.getstreamURL(engine: engine, content: key, pid: pid),
            connectTimeout: min(configuration.engineRequestTimeout, 5),
            timeout: configuration.engineRequestTimeout,
            userAgent: configuration.engineUserAgent)
        request = transfer
        owner.curl.start(transfer) { [self] outcome in
            guard expected == generation, !isClosed else { return }
            request = nil
            guard outcome.succeeded else {
                attemptFailed("getstream failed: \(outcome.message)")
                return
            }
            do throws(EngineAPIError) {
                let granted = try EngineAPI.parseSession(transfer.body, engine: engine)
                session = granted
                updateSummary { $0.playbackSessionID = granted.playbackSessionID; $0.infohash = granted.infohash }
                openPlayback()
            } catch {
                attemptFailed(error.message)
            }
        }
    }

    /// Reads the session's playback URL, feeding every chunk to the aligner.
    private func openPlayback() {
        guard let session else { return }
        if let old = playback { owner.curl.cancel(old); playback = nil }
        generation += 1
        let expected = generation
        let transfer = CurlTransfer(
            url: session.playbackURL,
            connectTimeout: min(configuration.engineRequestTimeout, 5),
            timeout: 0,
            userAgent: configuration.engineUserAgent)
        playback = transfer
        packetsSinceOpen = 0
        owner.curl.start(transfer, onData: { [unowned self] chunk in
            expected == generation ? ingest(chunk) : false
        }, onComplete: { [self] outcome in
            guard expected == generation, !isClosed else { return }
            playback = nil
            flushAligner()
            let reason = outcome.succeeded ? "engine ended the stream" : "playback failed: \(outcome.message)"
            if case .live = state {
                beginReconnect(reason)
            } else {
                attemptFailed(reason)
            }
        })
    }

    // MARK: Ingest

    private func ingest(_ chunk: UnsafeRawBufferPointer) -> Bool {
        guard !isClosed else { return false }
        counts.add(.bytesIn, UInt64(chunk.count))
        let before = writeOffset
        do {
            try aligner.feed(chunk) { run in try appendPackets(run) }
        } catch {
            fail(HubFailure(status: 503, code: "relay_storage", message: "cannot store the stream: \(error)", retryAfter: 10))
            return false
        }
        discardedBytes.store(aligner.discardedBytes, ordering: .relaxed)
        if writeOffset > before {
            // Silence means no packets: an engine sending only garbage is as good as quiet.
            lastDataAt = now
            packetsSinceOpen += (writeOffset - before) / UInt64(TSPacket.size)
            if inStall { inStall = false }
            publish()
            if !isLive { becameLive() }
        }
        return true
    }

    private func appendPackets(_ run: UnsafeRawBufferPointer) throws {
        inspector.inspect(run, at: writeOffset)
        try history.append(run, at: writeOffset)
        writeOffset += UInt64(run.count)
    }

    private func flushAligner() {
        try? aligner.finish { run in try appendPackets(run) }
        publish()
    }

    private func publish() {
        history.publish(upTo: writeOffset)
        let errors = inspector.continuityErrors
        if errors > countedContinuityErrors {
            counts.add(.continuityErrors, errors - countedContinuityErrors)
            countedContinuityErrors = errors
        }
        if writeOffset - notifiedOffset >= UInt64(configuration.sendBlockBytes) {
            flushTimer.cancel()
            notifySubscribers()
        } else if writeOffset > notifiedOffset, !flushTimer.isActive {
            flushTimer.schedule(after: configuration.sendFlushInterval)
        }
    }

    /// A null packet into the history: players stay connected while the engine is quiet.
    private func appendKeepalive() {
        lastKeepaliveAt = now
        do {
            try TSPacket.null.withUnsafeBytes { try appendPackets($0) }
        } catch {
            return
        }
        history.publish(upTo: writeOffset)
        notifySubscribers()
    }

    private func becameLive() {
        reportStreamStarted()
        switch state {
        case .starting:
            startDeadline.cancel()
            if let engine { selector.engineStarted(engine, for: key) }
            logger.info("engine session live", metadata: ["relay.engine": "\(engine?.baseURL ?? "-")"])
        case .reconnecting(let since, _, _, _):
            if let engine { selector.engineStarted(engine, for: key) }
            logger.info("engine stream back", metadata: ["relay.reconnect_s": "\(Int(now - since))"])
        case .live, .closed:
            return
        }
        if let engine {
            events.publish(.hubLive(id, engine: engine))
            if let previous = lastLiveEngine, previous != engine {
                events.publish(.engineSwitched(id, from: previous, to: engine))
            }
            lastLiveEngine = engine
        }
        state = .live
        updateSummary { $0.state = "live" }
        if phaseValue.exchange(HubPhase.streaming.rawValue, ordering: .acquiringAndReleasing) != HubPhase.streaming.rawValue {
            notifySubscribers()
        }
    }

    // MARK: Failure, reconnect

    /// The current start or reconnect attempt did not work; escalate or give up.
    private func attemptFailed(_ reason: String) {
        cancelTransfers()
        lastAttemptError = reason
        switch state {
        case .starting(var excluded):
            logger.warning("engine could not start the stream", metadata: ["relay.reason": "\(reason)"])
            if let engine {
                abandonEngine(engine, reason: reason)
                excluded.insert(engine)
            }
            state = .starting(excluded: excluded)
            reserveEngine(excluding: excluded)
        case .reconnecting(let since, let step, _, var excluded):
            logger.warning("reconnect attempt failed", metadata: ["relay.reason": "\(reason)"])
            if now - since >= configuration.reconnectTimeout {
                fail(HubFailure(status: 503, code: "engine_lost", message: "lost the engine stream and could not get it back: \(reason)", retryAfter: 10))
                return
            }
            switch step {
            case .reopenPlayback:
                state = .reconnecting(since: since, step: .newSession, attemptStarted: now, excluded: excluded)
            case .newSession, .otherEngine:
                if let engine {
                    abandonEngine(engine, reason: reason)
                    excluded.insert(engine)
                }
                state = .reconnecting(since: since, step: .otherEngine, attemptStarted: now, excluded: excluded)
            }
            retryTimer.schedule(after: step == .reopenPlayback ? 0.5 : 1)
        case .live:
            beginReconnect(reason)
        case .closed:
            return
        }
    }

    private func retry() {
        guard case .reconnecting(let since, let step, _, let excluded) = state else { return }
        state = .reconnecting(since: since, step: step, attemptStarted: now, excluded: excluded)
        switch step {
        case .reopenPlayback: openPlayback()
        case .newSession: openSession()
        case .otherEngine: reserveEngine(excluding: excluded)
        }
    }

    private func beginReconnect(_ reason: String) {
        guard case .live = state else { return }
        logger.warning("engine stream interrupted; reconnecting", metadata: ["relay.reason": "\(reason)"])
        events.publish(.hubReconnecting(id, reason: reason))
        counts.add(.reconnects)
        cancelTransfers()
        state = .reconnecting(since: now, step: .reopenPlayback, attemptStarted: now, excluded: [])
        updateSummary { $0.state = "reconnecting" }
        inspector.resetContinuity()
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
        guard case .starting = state else { return }
        let seconds = Int(configuration.startTimeout)
        if let engine { selector.engineFailed(engine, reason: "no stream within \(seconds) s") }
        fail(HubFailure(status: 503, code: "engine_timeout", message: "no engine started the stream within \(seconds) s", retryAfter: 10))
    }

    /// Housekeeping twice a second: keepalives, silence, attempt deadlines.
    private func tick() {
        let quiet = now - lastDataAt
        switch state {
        case .starting:
            if now - lastKeepaliveAt >= 1 { appendKeepalive() }
        case .live:
            if quiet >= 1, now - lastKeepaliveAt >= 1 {
                if !inStall {
                    inStall = true
                    counts.add(.stalls)
                    events.publish(.hubStalled(id))
                }
                appendKeepalive()
            }
            if quiet >= configuration.silenceTimeout {
                beginReconnect("no data from the engine for \(Int(quiet)) s")
            }
        case .reconnecting(let since, _, let attemptStarted, _):
            if now - lastKeepaliveAt >= 1 { appendKeepalive() }
            if now - since >= configuration.reconnectTimeout {
                fail(HubFailure(status: 503, code: "engine_lost", message: "lost the engine stream for \(Int(now - since)) s", retryAfter: 10))
            } else if !retryTimer.isActive, now - attemptStarted >= min(configuration.silenceTimeout, 10), packetsSinceOpen == 0 {
                attemptFailed("no data within \(Int(now - attemptStarted)) s of reconnecting")
            }
        case .closed:
            return
        }
        measuredBitsPerSecond.store(inspector.bitsPerSecond, ordering: .relaxed)
        history.retain(bytes: retentionBytes)
        if now - lastMeasuredAt >= 1 {
            lastMeasuredAt = now
            events.publish(.hubMeasured(measurement()))
        }
    }

    private func measurement() -> HubMeasurement {
        HubMeasurement(
            hub: id, bitsPerSecond: inspector.bitsPerSecond,
            continuityErrors: counters[.continuityErrors],
            bytesIn: counters[.bytesIn],
            bytesOut: counters[.bytesOut],
            players: clientCount.load(ordering: .relaxed),
            joinPoints: history.joinPointCount)
    }

    /// History to keep: `historySeconds` of the measured bitrate, within the byte cap.
    private var retentionBytes: UInt64 {
        let rate = inspector.bitsPerSecond > 0 ? inspector.bitsPerSecond : 8_000_000
        let wanted = UInt64(configuration.historySeconds * Double(rate) / 8)
        return min(max(wanted, 8 << 20), configuration.historyMaxBytes)
    }

    // MARK: Closing

    /// The last player left; keep the session for the grace period.
    func lastClientLeft() {
        guard !isClosed, clientCount.load(ordering: .relaxed) == 0 else { return }
        updateSummary { $0.idleSince = Date() }
        graceTimer.schedule(after: configuration.gracePeriod)
    }

    private func graceExpired() {
        guard !isClosed else { return }
        if owner.server.registry.removeIfIdle(self) {
            close(.idle, log: "no players for \(Int(configuration.gracePeriod)) s")
        } else {
            updateSummary { $0.idleSince = nil }
        }
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
        logger.error("hub failed", metadata: ["relay.code": "\(failure.code)", "relay.reason": "\(failure.message)"])
        failureValue.withLock { $0 = failure }
        owner.server.registry.remove(self)
        close(.failed(code: failure.code, message: failure.message), log: failure.message)
    }

    private func close(_ why: HubCloseReason, log reason: String) {
        guard !isClosed else { return }
        let phase: HubPhase = if case .failed = why { .failed } else { .closed }
        logger.info("closing hub", metadata: ["relay.reason": "\(reason)"])
        reportStreamEnded(reason: reason)
        state = .closed
        updateSummary { $0.state = phase == .failed ? "failed" : "closed" }
        cancelTransfers()
        for timer in [startDeadline, graceTimer, tickTimer, flushTimer, retryTimer] { timer?.cancel() }
        stopSession()
        if let engine { selector.releaseEngine(engine, for: key) }
        engine = nil
        phaseValue.store(phase.rawValue, ordering: .releasing)
        notifySubscribers()
        events.publish(.hubClosed(id, reason: why))
    }

    private func reportStreamStarted() {
        guard let engine, let session, reportedStream?.session != session else { return }
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

    /// Sends `command_url?method=stop`, best effort, bounded in time.
    private func stopSession() {
        reportStreamEnded(reason: "stopped")
        guard let session, !session.commandURL.isEmpty else { self.session = nil; return }
        self.session = nil
        let transfer = CurlTransfer(
            url: EngineAPI.stopURL(commandURL: session.commandURL),
            connectTimeout: 2, timeout: min(configuration.engineRequestTimeout, 5),
            userAgent: configuration.engineUserAgent)
        let server = owner.server
        server.pendingStops.add(1, ordering: .relaxed)
        let logger = logger
        owner.curl.start(transfer) { outcome in
            server.pendingStops.subtract(1, ordering: .relaxed)
            if !outcome.succeeded {
                logger.warning("engine did not confirm stop", metadata: ["relay.reason": "\(outcome.message)"])
            }
        }
    }

    private func cancelTransfers() {
        if let request { owner.curl.cancel(request) }
        if let playback { owner.curl.cancel(playback) }
        request = nil
        playback = nil
    }

    private var isClosed: Bool { if case .closed = state { return true } else { return false } }
    private var isLive: Bool { if case .live = state { return true } else { return false } }

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
