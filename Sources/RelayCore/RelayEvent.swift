import StreamFacts

/// One hub's identity in events: its content and a serial number, so a hub that
/// closes and a new hub for the same content are told apart.
public struct HubID: Hashable, Sendable, CustomStringConvertible {
    public let content: ContentKey
    /// Increases with each hub this relay opens.
    public let serial: UInt64

    public init(content: ContentKey, serial: UInt64) {
        self.content = content
        self.serial = serial
    }

    public var description: String { "\(content)#\(serial)" }
}

/// A hub's numbers at one moment, published about once a second while it is open.
public struct HubMeasurement: Sendable, Equatable {
    public var hub: HubID
    /// Bitrate measured from the PCR; 0 until known.
    public var bitsPerSecond: Int
    /// Continuity counter errors since the hub opened.
    public var continuityErrors: UInt64
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    /// Players attached now.
    public var players: Int
    /// Join points the history holds now.
    public var joinPoints: Int
    /// Probes holding the hub open now (`RelayServer.openProbe`).
    public var probes: Int
    /// Codecs, picture and audio layout parsed from the engine's packets so far.
    public var facts: StreamFacts
    /// Packets the engine sent since the hub opened (the relay's keepalives not counted)...
    public var packets: UInt64
    /// ...and how many of them were null packets (PID 0x1FFF).
    public var nullPackets: UInt64
    /// Seconds without data since the hub first went live, counting gaps of a second or more
    /// (stalls and reconnects), the one in progress included.
    public var stallSeconds: Double
    /// Seconds from the hub opening to the engine's first packets; nil until then.
    public var timeToFirstByte: Double?
    /// Seconds since the engine's last packet (since the start, before the first).
    public var secondsSinceData: Double

    public init(hub: HubID, bitsPerSecond: Int, continuityErrors: UInt64, bytesIn: UInt64, bytesOut: UInt64,
                players: Int, joinPoints: Int, probes: Int = 0, facts: StreamFacts = StreamFacts(),
                packets: UInt64 = 0, nullPackets: UInt64 = 0, stallSeconds: Double = 0, timeToFirstByte: Double? = nil,
                secondsSinceData: Double = 0) {
        self.hub = hub
        self.bitsPerSecond = bitsPerSecond
        self.continuityErrors = continuityErrors
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.players = players
        self.joinPoints = joinPoints
        self.probes = probes
        self.facts = facts
        self.packets = packets
        self.nullPackets = nullPackets
        self.stallSeconds = stallSeconds
        self.timeToFirstByte = timeToFirstByte
        self.secondsSinceData = secondsSinceData
    }

    /// Share of null packets in what the engine sent, 0...1; 0 before any packet.
    public var nullPacketShare: Double { packets == 0 ? 0 : Double(nullPackets) / Double(packets) }
}

/// Why a hub closed.
public enum HubCloseReason: Sendable, Equatable {
    /// No player for the grace period.
    case idle
    /// The relay is shutting down.
    case relayStopping
    /// Start or reconnect failed, or the control plane ended it; what players are told.
    case failed(code: String, message: String)
}

/// What the relay does, as its observers hear it.
///
/// Per hub, events arrive in the order the hub published them. Lifecycle events
/// are never dropped; `hubMeasured` may be, when an observer falls behind.
public enum RelayEvent: Sendable {
    /// A hub opened for a content its first player asked for.
    case hubStarted(HubID)
    /// Stream bytes flow from `engine`: after the start, and again after each reconnect.
    case hubLive(HubID, engine: EngineEndpoint)
    /// The engine went quiet for a second while live; keepalives fill the gap.
    case hubStalled(HubID)
    /// The engine stream broke; the hub is getting it back.
    case hubReconnecting(HubID, reason: String)
    /// The hub's numbers, about once a second.
    case hubMeasured(HubMeasurement)
    /// The hub streams from another engine than the one it streamed from before.
    case engineSwitched(HubID, from: EngineEndpoint, to: EngineEndpoint)
    /// The hub closed; no event of it follows.
    case hubClosed(HubID, reason: HubCloseReason)
    /// An engine session started streaming (what the control plane records as a stream).
    case streamStarted(StreamSessionInfo)
    /// That engine session ended.
    case streamEnded(StreamSessionInfo, reason: String)
    /// A player attached to the hub.
    case playerJoined(HubID)
    /// A player detached (hung up, or the hub closed it).
    case playerLeft(HubID)
    /// A lagging player was moved forward to a join point.
    case playerSkipped(HubID)
    /// A player that kept lagging was disconnected.
    case playerDropped(HubID)
    /// A player got its first stream byte, `seconds` after its connection was accepted.
    case firstByte(HubID, seconds: Double)

    /// The hub the event is about.
    public var hub: HubID? {
        switch self {
        case .hubStarted(let hub), .hubLive(let hub, _), .hubStalled(let hub), .hubReconnecting(let hub, _),
             .engineSwitched(let hub, _, _), .hubClosed(let hub, _), .playerJoined(let hub), .playerLeft(let hub),
             .playerSkipped(let hub), .playerDropped(let hub), .firstByte(let hub, _):
            return hub
        case .hubMeasured(let measurement): return measurement.hub
        case .streamStarted, .streamEnded: return nil
        }
    }

    /// True for the only kind of event an observer that falls behind may lose.
    public var isMeasurement: Bool { if case .hubMeasured = self { return true } else { return false } }
}

/// Hears the relay's events on a delivery thread of its own, never on a relay
/// loop: it may take its time, at the cost of losing measurements while it does.
public protocol RelayObserver: Sendable {
    func observe(_ event: RelayEvent)
}
