import Foundation
import GRDB

/// An engine the fleet knows: a managed container or a static URL.
public struct EngineRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "engines"

    /// Container id for managed engines; the URL for static ones.
    public var containerID: String
    public var containerName: String
    public var host: String
    public var port: Int
    public var apiPort: Int?
    public var labels: [String: String]
    /// Holds the VPN's forwarded P2P port: more peers, preferred by selection.
    public var forwarded: Bool
    /// Created by acerelay through Docker (true) or given by URL (false).
    public var managed: Bool
    public var firstSeen: Date
    public var lastSeen: Date
    /// healthy, unhealthy or unknown.
    public var healthStatus: String
    public var lastHealthCheck: Date?
    public var lastStreamUsage: Date?
    public var version: String?
    public var platform: String?

    public init(containerID: String, containerName: String, host: String, port: Int, apiPort: Int? = nil,
                labels: [String: String] = [:], forwarded: Bool = false, managed: Bool, firstSeen: Date = Date(),
                lastSeen: Date = Date(), healthStatus: String = "unknown", lastHealthCheck: Date? = nil,
                lastStreamUsage: Date? = nil, version: String? = nil, platform: String? = nil) {
        self.containerID = containerID
        self.containerName = containerName
        self.host = host
        self.port = port
        self.apiPort = apiPort
        self.labels = labels
        self.forwarded = forwarded
        self.managed = managed
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.healthStatus = healthStatus
        self.lastHealthCheck = lastHealthCheck
        self.lastStreamUsage = lastStreamUsage
        self.version = version
        self.platform = platform
    }

    enum CodingKeys: String, CodingKey, ColumnExpression {
        case containerID = "container_id", containerName = "container_name", host, port, apiPort = "api_port"
        case labels, forwarded, managed, firstSeen = "first_seen", lastSeen = "last_seen"
        case healthStatus = "health_status", lastHealthCheck = "last_health_check"
        case lastStreamUsage = "last_stream_usage", version, platform
    }
}

/// Whether an engine session is playing; the orchestrator's `status` values.
public enum StreamStatus: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case started
    case ended
}

/// Who opened an engine session: this process's relay, or another proxy that
/// reported it through the events API (stored as `api`, the value rows already hold).
public enum StreamOrigin: String, Codable, Sendable, DatabaseValueConvertible {
    case relay
    case external = "api"
}

/// Where a page of the stream listing ended: the next page starts after this stream.
public struct StreamListCursor: Sendable, Equatable {
    public let startedAt: Date
    public let id: String

    public init(after stream: StreamRecord) {
        startedAt = stream.startedAt
        id = stream.id
    }
}

/// One engine playback session, started by the relay or reported by another proxy.
public struct StreamRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "streams"

    /// `"<key>|<playback_session_id>"`, the orchestrator's stream id.
    public var id: String
    public var keyType: String
    public var key: String
    public var containerID: String
    public var containerName: String?
    public var playbackSessionID: String
    public var statURL: String?
    public var commandURL: String?
    public var isLive: Bool
    public var startedAt: Date
    public var endedAt: Date?
    public var status: StreamStatus
    public var endReason: String?
    public var origin: StreamOrigin

    public init(id: String, keyType: String, key: String, containerID: String, containerName: String? = nil,
                playbackSessionID: String, statURL: String? = nil, commandURL: String? = nil, isLive: Bool = true,
                startedAt: Date = Date(), endedAt: Date? = nil, status: StreamStatus = .started, endReason: String? = nil,
                origin: StreamOrigin = .relay) {
        self.id = id
        self.keyType = keyType
        self.key = key
        self.containerID = containerID
        self.containerName = containerName
        self.playbackSessionID = playbackSessionID
        self.statURL = statURL
        self.commandURL = commandURL
        self.isLive = isLive
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.status = status
        self.endReason = endReason
        self.origin = origin
    }

    /// The orchestrator's stream id, `"<key>|<playback_session_id>"`: the one place it is built.
    public static func streamID(key: String, playbackSessionID: String) -> String {
        "\(key)|\(playbackSessionID)"
    }

    enum CodingKeys: String, CodingKey, ColumnExpression {
        case id, keyType = "key_type", key, containerID = "container_id", containerName = "container_name"
        case playbackSessionID = "playback_session_id", statURL = "stat_url", commandURL = "command_url"
        case isLive = "is_live", startedAt = "started_at", endedAt = "ended_at", status, endReason = "end_reason", origin
    }
}

/// Something that happened, for operators: provisioning, failures, health changes.
public struct EventRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "events"

    public var id: Int64?
    public var at: Date
    /// A short machine-readable kind, e.g. `engine_provisioned`, `engine_unhealthy`.
    public var kind: String
    public var message: String
    public var containerID: String?
    public var streamID: String?

    public init(at: Date = Date(), kind: String, message: String, containerID: String? = nil, streamID: String? = nil) {
        self.at = at
        self.kind = kind
        self.message = message
        self.containerID = containerID
        self.streamID = streamID
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    enum CodingKeys: String, CodingKey, ColumnExpression {
        case id, at, kind, message, containerID = "container_id", streamID = "stream_id"
    }
}
