/// What the simulator has been asked to do, per content or in total.
public struct SimulatorCounters: Sendable, Equatable, Codable {
    /// `/ace/getstream` calls for a well-formed content selector (errors and load failures included).
    public var getstreamRequests: Int
    /// Playback sessions created (a first request, or another player id taking the content over).
    public var sessionsStarted: Int
    /// `command_url?method=stop` calls that stopped a live session.
    public var stops: Int
    /// GET requests on a playback URL, answered or not.
    public var playbackConnections: Int
    /// GET requests on a stat URL, answered or not.
    public var statRequests: Int
    /// Sessions alive now.
    public var activeSessions: Int

    /// Counters with the given values; all zero by default.
    public init(
        getstreamRequests: Int = 0, sessionsStarted: Int = 0, stops: Int = 0,
        playbackConnections: Int = 0, statRequests: Int = 0, activeSessions: Int = 0
    ) {
        self.getstreamRequests = getstreamRequests
        self.sessionsStarted = sessionsStarted
        self.stops = stops
        self.playbackConnections = playbackConnections
        self.statRequests = statRequests
        self.activeSessions = activeSessions
    }

    /// The field-by-field sum of two sets of counters.
    static func + (lhs: Self, rhs: Self) -> Self {
        Self(
            getstreamRequests: lhs.getstreamRequests + rhs.getstreamRequests,
            sessionsStarted: lhs.sessionsStarted + rhs.sessionsStarted,
            stops: lhs.stops + rhs.stops,
            playbackConnections: lhs.playbackConnections + rhs.playbackConnections,
            statRequests: lhs.statRequests + rhs.statRequests,
            activeSessions: lhs.activeSessions + rhs.activeSessions)
    }
}

/// The body of `GET /sim/counters`: totals and per-content counters.
public struct SimulatorCountersReport: Sendable, Equatable, Codable {
    /// Sum over every content.
    public var total: SimulatorCounters
    /// Counters keyed by the content id first used for the content (or its infohash when it
    /// was only ever asked for by infohash), lowercased.
    public var contents: [String: SimulatorCounters]

    /// A report with the given totals and per-content counters.
    public init(total: SimulatorCounters, contents: [String: SimulatorCounters]) {
        self.total = total
        self.contents = contents
    }
}
