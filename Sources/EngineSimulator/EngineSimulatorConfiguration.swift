/// Where the simulator's media comes from.
public enum SimulatorMedia: Sendable, Equatable {
    /// A real MPEG-TS file of whole 188-byte packets, looped forever.
    case file(String)
    /// The built-in generator of valid MPEG-TS at this bitrate (see `SyntheticTransportStream`).
    case synthetic(bitsPerSecond: Int)
}

/// How an `EngineSimulator` listens, what it plays, and which engine quirks it shows.
public struct EngineSimulatorConfiguration: Sendable {
    /// IPv4 address to bind; "0.0.0.0" for all interfaces.
    public var host: String = "127.0.0.1"
    /// Port to bind; 0 picks an ephemeral port, read back from `EngineSimulator.port`.
    public var port: UInt16 = 0
    /// The media every session plays, looped forever.
    public var media: SimulatorMedia = .synthetic(bitsPerSecond: 2_000_000)
    /// Length of one loop of `.synthetic` media, in seconds (1...600); ignored for files.
    public var syntheticLoopSeconds: Int = 10
    /// Seconds of media a session sends at once when its playback first opens (the engine's buffer).
    public var initialBurstSeconds: Double = 2
    /// Seconds a new session reports status "prebuf" before "dl".
    public var prebufferSeconds: Double = 1
    /// Host the engine writes into the URLs it returns: its own idea of its address,
    /// often a container IP that the relay must rewrite.
    public var advertisedHost: String = "127.0.0.1"
    /// Port written into returned URLs; nil writes the port actually bound.
    public var advertisedPort: UInt16? = nil
    /// What the returned URLs begin with, before the path: a quirk (or an attack) the
    /// relay must survive by keeping only the path.
    public var advertisedURLStyle: AdvertisedURLStyle = .absolute
    /// Quirk of some engine builds: stat keys `speedDown`/`speedUp` instead of `speed_down`/`speed_up`.
    public var camelCaseStats: Bool = false
    /// Engine version reported by get_status and get_version ("3.1.70" reports code 3017000).
    public var version: String = "3.1.70"

    /// Media for particular contents, keyed by content id or infohash (any case); every
    /// other content plays `media`.
    public var mediaByContent: [String: SimulatorMedia] = [:]
    /// What stat reports of particular contents' swarms, keyed like `mediaByContent`;
    /// every other content has `SimulatorSwarm()`.
    public var statsByContent: [String: SimulatorSwarm] = [:]

    /// The swarm stat reports for a content's infohash.
    func stats(forInfohash infohash: String) -> SimulatorSwarm {
        for (key, swarm) in statsByContent where Self.key(key, names: infohash) { return swarm }
        return SimulatorSwarm()
    }

    /// Whether a `mediaByContent`/`statsByContent` key (content id or infohash) names `infohash`.
    static func key(_ key: String, names infohash: String) -> Bool {
        let lowered = key.lowercased()
        return lowered == infohash || EngineSimulator.infohash(forContentID: lowered) == infohash
    }

    /// A configuration with every default: 127.0.0.1, ephemeral port, 2 Mbit/s synthetic media.
    public init() {}
}

/// What the simulator's stat reports of one content's swarm.
public struct SimulatorSwarm: Sendable, Equatable {
    /// `peers`.
    public var peers: Int
    /// `speed_down` in KB/s while data flows; nil: the media's own rate.
    public var speedDownKBps: Int?
    /// `speed_up` in KB/s while data flows; nil: an eighth of the download speed.
    public var speedUpKBps: Int?

    /// Six peers, speeds from the media's rate: the simulator's behaviour for every content by default.
    public init(peers: Int = 6, speedDownKBps: Int? = nil, speedUpKBps: Int? = nil) {
        self.peers = peers
        self.speedDownKBps = speedDownKBps
        self.speedUpKBps = speedUpKBps
    }
}

/// How the simulator writes the URLs in its `getstream` answer.
public enum AdvertisedURLStyle: Sendable, Equatable {
    /// `http://host:port/ace/r/...`, as real engines do.
    case absolute
    /// `host:port/ace/r/...`, no scheme.
    case schemeLess
    /// `/ace/r/...`, no host at all.
    case relative
}
