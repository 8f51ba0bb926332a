import Foundation

/// One hub as status pages and the API show it.
public struct HubSnapshot: Codable, Sendable {
    public var contentKey: String
    public var keyType: String
    /// starting, live, draining (no players, grace period), reconnecting, failed, closed.
    public var state: String
    public var engine: String?
    public var playbackSessionID: String?
    public var infohash: String?
    public var players: Int
    public var startedAt: Date
    public var idleSince: Date?
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    /// From the stream's PCR; 0 until measured.
    public var bitsPerSecond: Int
    public var continuityErrors: UInt64
    /// Bytes the aligner threw away (garbage, torn packets).
    public var discardedBytes: UInt64
    public var reconnects: UInt64
    /// Times the engine went quiet for a second or more.
    public var stalls: UInt64
    public var skips: UInt64
    public var drops: UInt64
    public var historyBytes: UInt64
    /// Mean time from a player's connection to its first stream byte, in milliseconds; nil before any.
    public var firstByteMillisecondsAverage: Double?

    enum CodingKeys: String, CodingKey {
        case contentKey = "content_id", keyType = "key_type", state, engine
        case playbackSessionID = "playback_session_id", infohash, players
        case startedAt = "started_at", idleSince = "idle_since"
        case bytesIn = "bytes_in", bytesOut = "bytes_out", bitsPerSecond = "bitrate_bps"
        case continuityErrors = "continuity_errors", discardedBytes = "discarded_bytes"
        case reconnects, stalls, skips, drops, historyBytes = "history_bytes"
        case firstByteMillisecondsAverage = "time_to_first_byte_ms_avg"
    }
}

/// One player as status pages show it.
public struct ClientSnapshot: Codable, Sendable {
    public var contentKey: String
    /// The relay loop serving this player.
    public var worker: Int
    public var address: String
    public var userAgent: String?
    public var connectedAt: Date
    public var bytesSent: UInt64
    /// History offset of the next byte to send; lag = hub end - offset.
    public var offset: UInt64
    public var lagBytes: UInt64 = 0
    /// The channel of an `/ace/channel/{id}` player (its `content_id` is the source it plays, empty between sources).
    public var channel: String?

    enum CodingKeys: String, CodingKey {
        case contentKey = "content_id", worker, address, userAgent = "user_agent"
        case connectedAt = "connected_at", bytesSent = "bytes_sent", lagBytes = "lag_bytes", channel
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        contentKey = try c.decode(String.self, forKey: .contentKey)
        worker = try c.decode(Int.self, forKey: .worker)
        address = try c.decode(String.self, forKey: .address)
        userAgent = try c.decodeIfPresent(String.self, forKey: .userAgent)
        connectedAt = try c.decode(Date.self, forKey: .connectedAt)
        bytesSent = try c.decode(UInt64.self, forKey: .bytesSent)
        lagBytes = try c.decode(UInt64.self, forKey: .lagBytes)
        channel = try c.decodeIfPresent(String.self, forKey: .channel)
        offset = 0
    }

    init(contentKey: String, worker: Int, address: String, userAgent: String?, connectedAt: Date, bytesSent: UInt64, offset: UInt64) {
        self.contentKey = contentKey
        self.worker = worker
        self.address = address
        self.userAgent = userAgent
        self.connectedAt = connectedAt
        self.bytesSent = bytesSent
        self.offset = offset
    }
}

/// The relay's whole state at one moment: what `/ace/status` answers.
public struct RelayStatus: Codable, Sendable {
    public var version: String
    public var workers: Int
    /// Number of open hubs and of players, for acexy-style dashboards.
    public var streams: Int
    public var playerCount: Int
    public var hubs: [HubSnapshot]
    public var clients: [ClientSnapshot]
    /// Why `clients` is empty though players are connected: the caller did not present the API key.
    public var clientsHidden: String?
    /// Channel playback (`/ace/channel/{id}`) per channel a player asked for; nil from relays without it.
    public var channels: [ChannelPlaybackSnapshot]?
    /// Memfd bytes all hubs' histories hold now (published minus punched): shared
    /// memory, seen in `/proc/meminfo`'s Shmem rather than in the process's RSS.
    public var historyBytes: UInt64 = 0
    /// `--history-budget`; 0 when there is none.
    public var historyBudgetBytes: UInt64 = 0

    enum CodingKeys: String, CodingKey {
        case version, workers, streams, playerCount = "player_count", hubs, clients, clientsHidden = "clients_hidden", channels
        case historyBytes = "history_bytes", historyBudgetBytes = "history_budget_bytes"
    }
}
