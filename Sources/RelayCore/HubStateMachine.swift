/// A hub's lifecycle decisions, apart from their effects: the hub feeds it what
/// happened and when (loop time, so tests drive it with a manual clock), and it
/// answers what to do next. It performs no I/O and reads no clock.
///
/// starting (reserve an engine, `getstream`, open playback) → live →
/// reconnecting, escalating reopenPlayback → newSession → otherEngine → live …
/// A start that runs out of time, or a reconnect that does, fails the hub; once
/// no player is left for the grace period the hub closes.
struct HubStateMachine {
    enum State: Equatable {
        /// `excluded`: engines that already failed this start.
        case starting(excluded: Set<EngineEndpoint>)
        case live
        /// Since `since`; the current attempt (`step`) began at `attemptStarted`.
        case reconnecting(since: Double, step: ReconnectStep, attemptStarted: Double, excluded: Set<EngineEndpoint>)
        case closed
    }

    /// Reconnects escalate: an engine's response may end while its session lives
    /// on, so the same playback URL is tried first.
    enum ReconnectStep: Equatable {
        case reopenPlayback
        case newSession
        case otherEngine
    }

    /// The limits the decisions use, from `RelayConfiguration`.
    struct Timing {
        var startTimeout: Double
        var silenceTimeout: Double
        var reconnectTimeout: Double
        var gracePeriod: Double

        init(startTimeout: Double, silenceTimeout: Double, reconnectTimeout: Double, gracePeriod: Double) {
            self.startTimeout = startTimeout
            self.silenceTimeout = silenceTimeout
            self.reconnectTimeout = reconnectTimeout
            self.gracePeriod = gracePeriod
        }

        init(_ configuration: RelayConfiguration) {
            self.init(startTimeout: configuration.startTimeout, silenceTimeout: configuration.silenceTimeout,
                      reconnectTimeout: configuration.reconnectTimeout, gracePeriod: configuration.gracePeriod)
        }
    }

    /// What to do after an engine attempt failed.
    enum AfterFailure: Equatable {
        /// Starting: give up `engine` (stop, release, report) and reserve another, skipping `excluding`.
        case tryAnotherEngine(abandon: EngineEndpoint?, excluding: Set<EngineEndpoint>)
        /// Reconnecting: wait `after` seconds, then `retry`; give up `abandon` first if set.
        case retryLater(after: Double, abandon: EngineEndpoint?)
        /// Live: the stream broke; start reconnecting.
        case reconnect
        case fail(HubFailure)
        /// Closed already.
        case nothing
    }

    /// The next attempt of a reconnect.
    enum Attempt: Equatable {
        case openPlayback
        case openSession
        case reserveEngine(excluding: Set<EngineEndpoint>)
    }

    /// What one housekeeping tick calls for, besides keepalives.
    enum TickOutcome: Equatable {
        case nothing
        /// Live but silent for `silenceTimeout`: reconnect, with this reason.
        case reconnect(String)
        /// The current reconnect attempt brought no data: fail the attempt.
        case attemptFailed(String)
        case fail(HubFailure)
    }

    /// A tick's decision: whether to write a keepalive, whether a stall began.
    struct Tick: Equatable {
        var keepalive = false
        var stallBegan = false
        var outcome = TickOutcome.nothing
    }

    let timing: Timing
    private(set) var state: State = .starting(excluded: [])
    /// Loop time of the last stream packet (or of the start), for silence.
    private(set) var lastDataAt: Double = 0
    private(set) var lastKeepaliveAt: Double = 0
    /// True from the first quiet second of a live stream until data flows again.
    private(set) var inStall = false
    /// Loop time the last player left; nil while players are attached.
    private(set) var idleSince: Double?
    /// Loop time the hub started, for the time to first byte.
    private(set) var startedAt: Double = 0
    /// Seconds from the start to the first stream packets; nil until they came.
    private(set) var timeToFirstByte: Double?
    /// Ended gaps of a second or more between stream packets since the hub first went live.
    private var endedGapSeconds: Double = 0

    init(timing: Timing) { self.timing = timing }

    var isClosed: Bool { state == .closed }
    var isLive: Bool { state == .live }

    // MARK: Inputs

    mutating func started(at now: Double) {
        startedAt = now
        lastDataAt = now
    }

    /// Stream packets arrived (not keepalives, not garbage).
    mutating func dataArrived(at now: Double) {
        if timeToFirstByte != nil, now - lastDataAt >= 1 { endedGapSeconds += now - lastDataAt }
        if timeToFirstByte == nil { timeToFirstByte = now - startedAt }
        lastDataAt = now
        inStall = false
    }

    mutating func keepaliveWritten(at now: Double) { lastKeepaliveAt = now }

    /// Seconds without stream packets since the first ones came: every gap of a second
    /// or more (a stall, a reconnect), the one in progress included.
    func stallSeconds(at now: Double) -> Double {
        guard timeToFirstByte != nil else { return 0 }
        let current = now - lastDataAt
        return endedGapSeconds + (current >= 1 && state != .closed ? current : 0)
    }

    /// Bytes flow: what changed, or nil when the hub was live (or closed) already.
    enum Resumed: Equatable {
        case started
        case recovered(afterSeconds: Double)
    }

    mutating func becameLive(at now: Double) -> Resumed? {
        let resumed: Resumed
        switch state {
        case .starting: resumed = .started
        case .reconnecting(let since, _, _, _): resumed = .recovered(afterSeconds: now - since)
        case .live, .closed: return nil
        }
        state = .live
        return resumed
    }

    /// The stream broke while live; true when a reconnect begins (first attempt: reopen playback).
    mutating func beginReconnect(at now: Double) -> Bool {
        guard state == .live else { return false }
        state = .reconnecting(since: now, step: .reopenPlayback, attemptStarted: now, excluded: [])
        return true
    }

    /// The current start or reconnect attempt with `engine` failed.
    mutating func attemptFailed(engine: EngineEndpoint?, reason: String, at now: Double) -> AfterFailure {
        switch state {
        case .starting(var excluded):
            if let engine { excluded.insert(engine) }
            state = .starting(excluded: excluded)
            return .tryAnotherEngine(abandon: engine, excluding: excluded)
        case .reconnecting(let since, let step, _, var excluded):
            if now - since >= timing.reconnectTimeout {
                return .fail(HubFailure(status: 503, code: "engine_lost", message: "lost the engine stream and could not get it back: \(reason)", retryAfter: 10))
            }
            switch step {
            case .reopenPlayback:
                state = .reconnecting(since: since, step: .newSession, attemptStarted: now, excluded: excluded)
                return .retryLater(after: 0.5, abandon: nil)
            case .newSession, .otherEngine:
                if let engine { excluded.insert(engine) }
                state = .reconnecting(since: since, step: .otherEngine, attemptStarted: now, excluded: excluded)
                return .retryLater(after: 1, abandon: engine)
            }
        case .live:
            return .reconnect
        case .closed:
            return .nothing
        }
    }

    /// No engine could be reserved. `lastAttemptError`: why the previous engine failed, if one did.
    mutating func engineUnavailable(_ unavailable: EngineUnavailable, lastAttemptError: String?, at now: Double) -> AfterFailure {
        switch state {
        case .reconnecting(let since, _, _, _):
            // Every engine failed this hub once; keep trying them all until the deadline.
            state = .reconnecting(since: since, step: .otherEngine, attemptStarted: now, excluded: [])
            return .retryLater(after: 2, abandon: nil)
        case .starting(let excluded) where !excluded.isEmpty && lastAttemptError != nil:
            // Every engine was tried: the engines' own reason says more than "none left".
            return .fail(HubFailure(status: 503, code: "engine_error", message: lastAttemptError!, retryAfter: unavailable.retryAfterSeconds))
        case .starting, .live:
            return .fail(HubFailure(status: 503, code: unavailable.code, message: unavailable.message, retryAfter: unavailable.retryAfterSeconds))
        case .closed:
            return .nothing
        }
    }

    /// The retry delay passed: the attempt to make now, if still reconnecting.
    mutating func retryDue(at now: Double) -> Attempt? {
        guard case .reconnecting(let since, let step, _, let excluded) = state else { return nil }
        state = .reconnecting(since: since, step: step, attemptStarted: now, excluded: excluded)
        switch step {
        case .reopenPlayback: return .openPlayback
        case .newSession: return .openSession
        case .otherEngine: return .reserveEngine(excluding: excluded)
        }
    }

    /// The start deadline passed: the failure, if the hub is still starting.
    func startDeadlinePassed() -> HubFailure? {
        guard case .starting = state else { return nil }
        let seconds = Int(timing.startTimeout)
        return HubFailure(status: 503, code: "engine_timeout", message: "no engine started the stream within \(seconds) s", retryAfter: 10)
    }

    /// Housekeeping, twice a second. `packetsSinceOpen`: stream packets since the
    /// current playback opened; `retryPending`: a retry is scheduled already.
    mutating func tick(at now: Double, packetsSinceOpen: UInt64, retryPending: Bool) -> Tick {
        var tick = Tick()
        let quiet = now - lastDataAt
        let keepaliveDue = now - lastKeepaliveAt >= 1
        switch state {
        case .starting:
            tick.keepalive = keepaliveDue
        case .live:
            if quiet >= 1, keepaliveDue {
                if !inStall {
                    inStall = true
                    tick.stallBegan = true
                }
                tick.keepalive = true
            }
            if quiet >= timing.silenceTimeout {
                tick.outcome = .reconnect("no data from the engine for \(Int(quiet)) s")
            }
        case .reconnecting(let since, _, let attemptStarted, _):
            tick.keepalive = keepaliveDue
            if now - since >= timing.reconnectTimeout {
                tick.outcome = .fail(HubFailure(status: 503, code: "engine_lost", message: "lost the engine stream for \(Int(now - since)) s", retryAfter: 10))
            } else if !retryPending, now - attemptStarted >= min(timing.silenceTimeout, 10), packetsSinceOpen == 0 {
                tick.outcome = .attemptFailed("no data within \(Int(now - attemptStarted)) s of reconnecting")
            }
        case .closed:
            break
        }
        return tick
    }

    /// The last player left: the grace period starts.
    mutating func lastPlayerLeft(at now: Double) {
        guard !isClosed else { return }
        idleSince = now
    }

    /// A player attached again.
    mutating func playerArrived() { idleSince = nil }

    /// The grace timer fired: true when the hub has been without players for the
    /// whole grace period and may close.
    func graceExpired(at now: Double) -> Bool {
        guard !isClosed, let idleSince else { return false }
        // Loop time is cached per iteration: allow a timer that fires a hair early.
        return now - idleSince >= timing.gracePeriod - 0.001
    }

    mutating func closed() { state = .closed }
}
