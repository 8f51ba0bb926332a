import EngineFleet
import RelayCore
import Foundation
import Store
import Streams

/// An engine as the orchestrator's API shows it (field names are the contract).
///
/// The one builder of the Engine shape: `streams`, `stream_count` and the
/// totals all come from the engine's started streams in the store (the
/// relay's own and those other proxies reported), so they always agree.
struct EngineJSON: Encodable {
    var engine: FleetEngine
    var streamIDs: [String]
    /// Latest samples of the engine's started streams, for the totals.
    var samples: [StatSample]
    /// Newest of the fleet's last use and the newest stream start the store holds for it.
    var lastStreamUsage: Date?

    /// - Parameters:
    ///   - streams: the engine's started streams.
    ///   - latest: latest samples by stream id (may hold other engines' too).
    ///   - lastStreamStart: when the engine's newest stream, started or ended, started.
    init(engine: FleetEngine, streams: [StreamRecord], latest: [String: StatSample], lastStreamStart: Date?) {
        self.engine = engine
        streamIDs = streams.map(\.id)
        samples = streams.compactMap { latest[$0.id] }
        lastStreamUsage = [engine.lastStreamUsage, lastStreamStart].compactMap { $0 }.max()
    }

    enum Keys: String, CodingKey {
        case containerID = "container_id", containerName = "container_name", host, port, apiPort = "api_port"
        case labels, forwarded, firstSeen = "first_seen", lastSeen = "last_seen", healthStatus = "health_status"
        case lastHealthCheck = "last_health_check", lastStreamUsage = "last_stream_usage", streams, version, platform
        case streamCount = "stream_count", totalPeers = "total_peers", totalSpeedDown = "total_speed_down"
        case totalSpeedUp = "total_speed_up", managed
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(engine.id, forKey: .containerID)
        try c.encode(engine.name, forKey: .containerName)
        try c.encode(engine.host, forKey: .host)
        try c.encode(engine.port, forKey: .port)
        try c.encode(engine.apiPort, forKey: .apiPort)
        try c.encode(engine.labels, forKey: .labels)
        try c.encode(engine.forwarded, forKey: .forwarded)
        try c.encode(engine.firstSeen, forKey: .firstSeen)
        try c.encode(engine.lastSeen, forKey: .lastSeen)
        try c.encode(engine.health.status.rawValue, forKey: .healthStatus)
        try c.encode(engine.health.lastCheck, forKey: .lastHealthCheck)
        try c.encode(lastStreamUsage, forKey: .lastStreamUsage)
        try c.encode(streamIDs, forKey: .streams)
        try c.encode(engine.version, forKey: .version)
        try c.encode(engine.platform, forKey: .platform)
        try c.encode(streamIDs.count, forKey: .streamCount)
        try c.encode(samples.reduce(0) { $0 + ($1.peers ?? 0) }, forKey: .totalPeers)
        try c.encode(samples.reduce(0) { $0 + ($1.speedDown ?? 0) }, forKey: .totalSpeedDown)
        try c.encode(samples.reduce(0) { $0 + ($1.speedUp ?? 0) }, forKey: .totalSpeedUp)
        try c.encode(engine.managed, forKey: .managed)
    }
}

/// A stream as the orchestrator's API shows it.
struct StreamJSON: Encodable {
    var stream: StreamRecord
    /// The latest stat sample, null until the collector has one.
    var sample: StatSample? = nil
    /// What the relay itself measures of this session's stream, while its hub is open.
    var hub: HubSnapshot? = nil
    /// Why this reported stream's `stat_url`/`command_url` are not called, if they are not.
    var urlRefusal: String? = nil

    init(stream: StreamRecord, sample: StatSample? = nil, hub: HubSnapshot? = nil, urlRefusal: String? = nil) {
        self.stream = stream
        self.sample = sample
        self.hub = hub
        self.urlRefusal = urlRefusal
    }

    enum Keys: String, CodingKey {
        case id, keyType = "key_type", key, containerID = "container_id", containerName = "container_name"
        case playbackSessionID = "playback_session_id", statURL = "stat_url", commandURL = "command_url"
        case isLive = "is_live", startedAt = "started_at", endedAt = "ended_at", status
        case peers, speedDown = "speed_down", speedUp = "speed_up", downloaded, uploaded, livepos, relay
        case urlRefusal = "url_refusal"
    }

    /// The relay's own numbers, from packet headers only.
    struct RelayJSON: Encodable {
        var bitrate_bps: Int
        var continuity_errors: UInt64
        var stalls: UInt64
        var reconnects: UInt64
        var bytes_in: UInt64
        var bytes_out: UInt64
        var players: Int
        var skips: UInt64
        var drops: UInt64
        var time_to_first_byte_ms_avg: Double?
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(stream.id, forKey: .id)
        try c.encode(stream.keyType, forKey: .keyType)
        try c.encode(stream.key, forKey: .key)
        try c.encode(stream.containerID, forKey: .containerID)
        try c.encode(stream.containerName, forKey: .containerName)
        try c.encode(stream.playbackSessionID, forKey: .playbackSessionID)
        try c.encode(stream.statURL, forKey: .statURL)
        try c.encode(stream.commandURL, forKey: .commandURL)
        try c.encode(stream.isLive, forKey: .isLive)
        try c.encode(stream.startedAt, forKey: .startedAt)
        try c.encode(stream.endedAt, forKey: .endedAt)
        try c.encode(stream.status, forKey: .status)
        try c.encode(sample?.peers, forKey: .peers)
        try c.encode(sample?.speedDown, forKey: .speedDown)
        try c.encode(sample?.speedUp, forKey: .speedUp)
        try c.encode(sample?.downloaded, forKey: .downloaded)
        try c.encode(sample?.uploaded, forKey: .uploaded)
        try c.encode(sample?.livepos.map(LiveposJSON.init), forKey: .livepos)
        try c.encode(hub.map { RelayJSON(bitrate_bps: $0.bitsPerSecond, continuity_errors: $0.continuityErrors, stalls: $0.stalls,
                                         reconnects: $0.reconnects, bytes_in: $0.bytesIn, bytes_out: $0.bytesOut,
                                         players: $0.players, skips: $0.skips, drops: $0.drops,
                                         time_to_first_byte_ms_avg: $0.firstByteMillisecondsAverage) }, forKey: .relay)
        try c.encodeIfPresent(urlRefusal, forKey: .urlRefusal)
    }
}

/// `livepos` as the orchestrator shows it.
struct LiveposJSON: Encodable {
    var pos, live_first, live_last, first_ts, last_ts: Int64?
    var buffer_pieces: Int?

    init(_ livepos: StatSample.Livepos) {
        pos = livepos.pos
        live_first = livepos.liveFirst
        live_last = livepos.liveLast
        first_ts = livepos.firstTS
        last_ts = livepos.lastTS
        buffer_pieces = livepos.bufferPieces
    }

    func encode(to encoder: any Encoder) throws {
        enum Keys: String, CodingKey { case pos, live_first, live_last, first_ts, last_ts, buffer_pieces }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(pos, forKey: .pos)
        try c.encode(live_first, forKey: .live_first)
        try c.encode(live_last, forKey: .live_last)
        try c.encode(first_ts, forKey: .first_ts)
        try c.encode(last_ts, forKey: .last_ts)
        try c.encode(buffer_pieces, forKey: .buffer_pieces)
    }
}

/// One element of `GET /streams/{id}/stats`: the orchestrator's StatSnapshot.
struct StatSnapshotJSON: Encodable {
    var sample: StatSample

    enum Keys: String, CodingKey { case ts, peers, speedDown = "speed_down", speedUp = "speed_up", downloaded, uploaded, status, livepos }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(sample.at, forKey: .ts)
        try c.encode(sample.peers, forKey: .peers)
        try c.encode(sample.speedDown, forKey: .speedDown)
        try c.encode(sample.speedUp, forKey: .speedUp)
        try c.encode(sample.downloaded, forKey: .downloaded)
        try c.encode(sample.uploaded, forKey: .uploaded)
        try c.encode(sample.status, forKey: .status)
        try c.encode(sample.livepos.map(LiveposJSON.init), forKey: .livepos)
    }
}

/// `POST /events/stream_started` as proxies send it. `container_id` is
/// optional (acexy forks omit it, or put their own name there): the engine is
/// then found by `engine.host` and `engine.port`.
struct StreamStartedBody: Decodable {
    struct EngineRef: Decodable { var host: String; var port: Int }
    struct StreamRef: Decodable { var keyType: String; var key: String
        enum CodingKeys: String, CodingKey { case keyType = "key_type", key } }
    struct SessionRef: Decodable {
        var playbackSessionID: String; var statURL: String?; var commandURL: String?; var isLive: Int?
        enum CodingKeys: String, CodingKey {
            case playbackSessionID = "playback_session_id", statURL = "stat_url", commandURL = "command_url", isLive = "is_live"
        }
    }
    var containerID: String?
    var engine: EngineRef?
    var stream: StreamRef
    var session: SessionRef
    var labels: [String: String]?

    enum CodingKeys: String, CodingKey { case containerID = "container_id", engine, stream, session, labels }

    /// The orchestrator's key types.
    static let keyTypes: Set<String> = ["content_id", "infohash", "torrent_url", "direct_url", "raw_data", "url", "magnet"]
    static let maxKey = 4_096
    static let maxSessionID = 256
    static let maxURL = 2_048
    static let maxName = 256
    static let maxLabels = 64
    /// Room for a stream id: a key, "|" and a session id.
    static let maxLabelValue = maxKey + 1 + maxSessionID

    /// Checks what would be stored; throws a 400 naming the first bad field.
    func validate() throws(APIError) {
        guard Self.keyTypes.contains(stream.keyType) else {
            throw APIError.badRequest("stream.key_type must be one of \(Self.keyTypes.sorted().joined(separator: ", ")); got \(stream.keyType.prefix(64))")
        }
        if stream.keyType == "content_id" || stream.keyType == "infohash" {
            guard ContentKey(kind: .contentID, value: stream.key) != nil else {
                throw APIError.badRequest("stream.key must be 40 hex digits for key_type \(stream.keyType)")
            }
        }
        try Self.bounded(stream.key, "stream.key", max: Self.maxKey)
        try Self.bounded(session.playbackSessionID, "session.playback_session_id", max: Self.maxSessionID)
        for (name, url) in [("session.stat_url", session.statURL), ("session.command_url", session.commandURL)] {
            guard let url, !url.isEmpty else { continue }
            try Self.bounded(url, name, max: Self.maxURL)
            // The collector and the loop detector fetch these: never a file:// or another scheme.
            guard url.lowercased().hasPrefix("http://") || url.lowercased().hasPrefix("https://") else {
                throw APIError.badRequest("\(name) must be an http:// or https:// URL")
            }
        }
        if let containerID {
            try Self.bounded(containerID, "container_id", max: Self.maxName)
        }
        if let engine {
            try Self.bounded(engine.host, "engine.host", max: Self.maxName)
            guard (1...65_535).contains(engine.port) else { throw APIError.badRequest("engine.port must be between 1 and 65535") }
        }
        guard containerID?.isEmpty == false || engine != nil else {
            throw APIError.badRequest("give engine {host, port} (or container_id) so the stream can be matched to its engine")
        }
        let labels = labels ?? [:]
        guard labels.count <= Self.maxLabels else { throw APIError.badRequest("labels: at most \(Self.maxLabels) entries") }
        for (name, value) in labels {
            guard !name.isEmpty, name.utf8.count <= Self.maxName else {
                throw APIError.badRequest("labels: names must be 1 to \(Self.maxName) bytes")
            }
            guard value.utf8.count <= Self.maxLabelValue else {
                throw APIError.badRequest("labels.\(name.prefix(64)) is longer than \(Self.maxLabelValue) bytes")
            }
        }
        if let id = labels["stream_id"], id.isEmpty { throw APIError.badRequest("labels.stream_id must not be empty") }
    }

    private static func bounded(_ value: String, _ name: String, max: Int) throws(APIError) {
        guard !value.isEmpty else { throw APIError.badRequest("\(name) must not be empty") }
        guard value.utf8.count <= max else { throw APIError.badRequest("\(name) is longer than \(max) bytes") }
    }
}

/// `POST /events/stream_ended`.
struct StreamEndedBody: Decodable {
    var containerID: String?
    var streamID: String
    var reason: String?
    enum CodingKeys: String, CodingKey { case containerID = "container_id", streamID = "stream_id", reason }
}

/// `POST /provision/acestream`.
struct ProvisionBody: Decodable {
    var image: String?
    var labels: [String: String]?
    var env: [String: String]?
    var hostPort: Int?
    enum CodingKeys: String, CodingKey { case image, labels, env, hostPort = "host_port" }
}
