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

    /// Puts on a standing fault, replacing the one the scope had.
    mutating func set(_ fault: StandingFault, for scope: FaultScope) {
        standing[scope.key ?? ""] = (scope, fault)
    }

    /// Keeps a one-shot fault for the next session of a content that has none yet.
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

    /// Whether requests about this content (nil: about no content) must hang.
    func isHung(_ infohash: String?) -> Bool {
        standing.values.contains { entry in
            if case .hang = entry.fault { entry.scope.covers(infohash) } else { false }
        }
    }

    /// Whether this content's playback is stalled at monotonic time `now`.
    func isStalled(_ infohash: String, at now: UInt64) -> Bool {
        standing.values.contains { entry in
            if case let .stall(until) = entry.fault { until > now && entry.scope.covers(infohash) } else { false }
        }
    }

    /// Whether getstream for this content must fail.
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
