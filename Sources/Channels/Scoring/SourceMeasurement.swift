import StreamFacts

/// Why a source could not be measured as working. A source whose last
/// measurement failed scores 0 and carries this as its reason.
public enum SourceFailure: String, Sendable, Codable, CaseIterable {
    /// The engine answered `getstream` with an error (or no engine would take it).
    case refused
    /// No TS bytes arrived within the start timeout.
    case noData = "no_data"
    /// Bytes stopped for longer than the relay's silence timeout, and did not come back.
    case stalled
    /// The loop detector found the broadcast replaying an old window.
    case looping
    /// A player's playback of it failed over to another source.
    case failedOver = "failed_over"

    /// One line for an operator.
    public var message: String {
        switch self {
        case .refused: "the engine refused the content"
        case .noData: "no data within the start timeout"
        case .stalled: "the stream stalled"
        case .looping: "the broadcast is looping (live position not advancing)"
        case .failedOver: "players failed over from it"
        }
    }
}

/// What one measurement of a channel source saw: from the relay's own reading
/// of the TS and from the engine's stats. Numbers the engine did not give are nil.
public struct SourceMeasurement: Sendable, Equatable {
    /// Set when the measurement failed; the rest then describes what was seen before.
    public var failure: SourceFailure?
    /// Seconds from opening the source to its first TS bytes, nil if the hub was already live.
    public var timeToFirstByte: Double?
    /// Seconds the measurement covered once bytes flowed.
    public var measuredSeconds: Double
    /// Seconds without data while measured.
    public var stallSeconds: Double
    /// Continuity-counter errors the relay counted (the engine's, not the network's).
    public var continuityErrors: Int
    /// Share of null packets (PID 0x1FFF) in what the engine sent, 0...1.
    public var nullPacketShare: Double
    /// Bitrate read from PCR, kbit/s.
    public var bitrateKbps: Int?
    public var peers: Int?
    /// Engine download and upload speed, KB/s (the engine's unit).
    public var speedDownKBps: Int?
    public var speedUpKBps: Int?
    /// Whether the engine's live position moved during the measurement; nil when unknown.
    public var liveposAdvancing: Bool?
    /// Codecs, picture and audio layout parsed from the packets.
    public var facts: StreamFacts

    public init(failure: SourceFailure? = nil, timeToFirstByte: Double? = nil, measuredSeconds: Double = 0,
                stallSeconds: Double = 0, continuityErrors: Int = 0, nullPacketShare: Double = 0,
                bitrateKbps: Int? = nil, peers: Int? = nil, speedDownKBps: Int? = nil, speedUpKBps: Int? = nil,
                liveposAdvancing: Bool? = nil, facts: StreamFacts = StreamFacts()) {
        self.failure = failure
        self.timeToFirstByte = timeToFirstByte
        self.measuredSeconds = measuredSeconds
        self.stallSeconds = stallSeconds
        self.continuityErrors = continuityErrors
        self.nullPacketShare = nullPacketShare
        self.bitrateKbps = bitrateKbps
        self.peers = peers
        self.speedDownKBps = speedDownKBps
        self.speedUpKBps = speedUpKBps
        self.liveposAdvancing = liveposAdvancing
        self.facts = facts
    }
}
