import Glibc

/// Nanoseconds on the monotonic clock.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Where the engine is in its life.
enum SimulatorLifecycle {
    /// Made, not started.
    case idle
    /// Serving on this listener.
    case running(ListeningSocket)
    /// Killed by the `die` fault; the old listener is closing (its acceptor closes it).
    case dead(retired: ListeningSocket)
    /// Shut down for good.
    case stopped
}

/// One engine playback session: one content served to one player id.
struct PlaybackSession {
    /// playback_session_id, also the last component of the session's URLs.
    let id: String
    /// The content's infohash.
    let infohash: String
    /// The pid the session was opened for.
    let playerID: String
    /// When getstream created it (monotonic ns).
    let createdAt: UInt64
    /// When its playback first opened (monotonic ns): time zero of its stream, nil until then.
    var clockStart: UInt64?
    /// Bytes of the endless stream already sent; a reconnect resumes here.
    var deliveredPosition: Int64 = 0
    /// Media bytes sent on all its connections (stat's `downloaded`).
    var bytesSent: Int64 = 0
    /// A `cleanEOF` fault waiting to end one of its responses.
    var pendingCleanEOF = false
    /// A `garbage` fault waiting to be injected: the byte count, 0 for none.
    var pendingGarbageBytes = 0
}

/// Which contents a fault applies to.
struct FaultScope: Sendable, Equatable {
    /// The content id or infohash it was set for, lowercased; nil for every content.
    let key: String?
    /// The infohash `key` maps to when it is a content id.
    private let derivedInfohash: String?

    /// The scope of one content named by id or infohash, or of every content for nil.
    init(contentID: String?) {
        key = contentID?.lowercased()
        derivedInfohash = key.map(EngineSimulator.infohash(forContentID:))
    }

    /// Every content.
    static let all = FaultScope(contentID: nil)

    /// Whether the scope takes in the content with `infohash` (nil: a request about no content).
    ///
    /// A content is named either by its id (whose infohash is derived from it) or by its
    /// infohash, so a key matches either way.
    func covers(_ infohash: String?) -> Bool {
        guard let key else { return true }
        return infohash != nil && (infohash == key || infohash == derivedInfohash)
    }
}

/// A fault that stays in force until cleared (or, for a stall, until its deadline).
enum StandingFault {
    /// See `SimulatorFault.hang`.
    case hang
    /// See `SimulatorFault.stall`; until this monotonic time.
    case stall(until: UInt64)
    /// See `SimulatorFault.frozenLiveLast`; livepos stays at this Unix time.
    case frozenLiveLast(unixSeconds: Int)
    /// See `SimulatorFault.loadError`.
    case loadError
}

/// Standing faults by scope, and one-shot faults waiting for a content's first session.
struct FaultTable {
    /// At most one standing fault per scope, keyed by the scope's key ("" for every content).
    private var standing: [String: (scope: FaultScope, fault: StandingFault)] = [:]
    /// One-shot faults (cleanEOF, garbage) set for a content that had no session yet.
    private var waiting: [String: (scope: FaultScope, fault: SimulatorFault)] = [:]

    mutating func set(_ fault: StandingFault, for scope: FaultScope) {
        standing[scope.key ?? ""] = (scope, fault)
    }

    mutating func hold(_ fault: SimulatorFault, for scope: FaultScope) {
        waiting[scope.key ?? ""] = (scope, fault)
    }

    /// Removes what was set for `scope`; the `.all` scope removes everything.
    mutating func clear(_ scope: FaultScope) {
        if let key = scope.key {
            standing[key] = nil
            waiting[key] = nil
        } else {
            standing = [:]
            waiting = [:]
        }
    }

    /// Takes the one-shot faults held for a content whose first session is starting.
    mutating func takeWaiting(for infohash: String) -> [SimulatorFault] {
        let matches = waiting.filter { $0.value.scope.covers(infohash) }
        for key in matches.keys { waiting[key] = nil }
        return matches.values.map(\.fault)
    }

    func isHung(_ infohash: String?) -> Bool {
        standing.values.contains { entry in
            if case .hang = entry.fault { entry.scope.covers(infohash) } else { false }
        }
    }

    func isStalled(_ infohash: String, at now: UInt64) -> Bool {
        standing.values.contains { entry in
            if case let .stall(until) = entry.fault { until > now && entry.scope.covers(infohash) } else { false }
        }
    }

    func failsToLoad(_ infohash: String) -> Bool {
        standing.values.contains { entry in
            if case .loadError = entry.fault { entry.scope.covers(infohash) } else { false }
        }
    }

    /// The Unix time livepos is frozen at for this content, if it is.
    func frozenLivePosition(_ infohash: String) -> Int? {
        standing.values.compactMap { entry -> Int? in
            guard case let .frozenLiveLast(seconds) = entry.fault, entry.scope.covers(infohash) else { return nil }
            return seconds
        }.min()
    }
}

/// Everything the simulator's threads share, behind one lock.
struct SimulatorState {
    /// Where the engine is in its life.
    var lifecycle: SimulatorLifecycle = .idle
    /// The port served (kept across `die` so the engine comes back on it).
    var port: UInt16 = 0
    /// Live sessions by session id.
    var sessions: [String: PlaybackSession] = [:]
    /// The live session of each content, by infohash.
    var liveSessionIDs: [String: String] = [:]
    /// Counters by infohash.
    var counters: [String: SimulatorCounters] = [:]
    /// The name each content was first asked for by (content id, or infohash), by infohash.
    var contentNames: [String: String] = [:]
    /// Faults in force.
    var faults = FaultTable()

    /// Updates the counters of one content.
    mutating func count(_ infohash: String, _ update: (inout SimulatorCounters) -> Void) {
        update(&counters[infohash, default: SimulatorCounters()])
    }

    /// Ends a session: it leaves the maps, so its URLs answer "unknown playback session id"
    /// and its playback loops see it gone on their next tick.
    mutating func endSession(_ id: String) {
        guard let session = sessions.removeValue(forKey: id) else { return }
        if liveSessionIDs[session.infohash] == id { liveSessionIDs[session.infohash] = nil }
        count(session.infohash) { $0.activeSessions -= 1 }
    }
}
