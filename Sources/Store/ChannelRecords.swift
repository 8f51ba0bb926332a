import Foundation

/// How a channel came to acerelay. An M3U import adds sources to `api` and `m3u`
/// channels but never changes a `dispatcharr` one: Dispatcharr owns its streams.
public enum ChannelOrigin: String, Codable, Sendable, CaseIterable {
    /// Created through `POST /channels`.
    case api
    /// Created by an M3U import.
    case m3u
    /// Read from Dispatcharr, which owns its list of streams.
    case dispatcharr
}

/// A channel as stored: its slug, what players and EPGs show, and where it came from.
public struct ChannelRecord: Sendable, Equatable {
    /// The slug, unique; the channel's id in the API and in playback URLs.
    public var id: String
    public var name: String
    public var groupTitle: String?
    public var tvgID: String?
    public var logo: String?
    public var origin: ChannelOrigin
    /// The Dispatcharr channel it mirrors, for channels read from Dispatcharr.
    public var dispatcharrChannelID: Int?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String, name: String, groupTitle: String? = nil, tvgID: String? = nil, logo: String? = nil,
                origin: ChannelOrigin, dispatcharrChannelID: Int? = nil, createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.name = name
        self.groupTitle = groupTitle
        self.tvgID = tvgID
        self.logo = logo
        self.origin = origin
        self.dispatcharrChannelID = dispatcharrChannelID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One source of a channel: an AceStream content id, optionally the Dispatcharr stream that carries it.
public struct ChannelSourceRecord: Sendable, Equatable {
    /// 40 lowercase hex digits.
    public var contentID: String
    public var dispatcharrStreamID: Int?

    public init(contentID: String, dispatcharrStreamID: Int? = nil) {
        self.contentID = contentID
        self.dispatcharrStreamID = dispatcharrStreamID
    }
}

/// A channel with its sources in failover order (best first once measured).
public struct StoredChannel: Sendable, Equatable {
    public var channel: ChannelRecord
    public var sources: [ChannelSourceRecord]

    public init(channel: ChannelRecord, sources: [ChannelSourceRecord]) {
        self.channel = channel
        self.sources = sources
    }
}

/// One scored measurement of a source, as kept for its history.
///
/// The store does not interpret the score: `components` and `facts` are JSON
/// objects the channel service writes and reads back; the raw numbers are
/// columns so an operator can query them with `sqlite3`.
public struct SourceMeasurementRecord: Sendable, Equatable {
    public var contentID: String
    public var measuredAt: Date
    /// 0–100.
    public var score: Int
    /// The score's components, a JSON object.
    public var components: String
    /// Why the measurement failed (`SourceFailure`'s raw value), nil when it worked.
    public var failure: String?
    /// Stream facts parsed from the packets, a JSON object.
    public var facts: String
    public var timeToFirstByte: Double?
    public var measuredSeconds: Double
    public var stallSeconds: Double
    public var continuityErrors: Int
    public var nullPacketShare: Double
    public var bitrateKbps: Int?
    public var peers: Int?
    public var speedDownKBps: Int?
    public var speedUpKBps: Int?
    public var liveposAdvancing: Bool?

    public init(contentID: String, measuredAt: Date, score: Int, components: String, failure: String?, facts: String,
                timeToFirstByte: Double? = nil, measuredSeconds: Double = 0, stallSeconds: Double = 0, continuityErrors: Int = 0,
                nullPacketShare: Double = 0, bitrateKbps: Int? = nil, peers: Int? = nil, speedDownKBps: Int? = nil,
                speedUpKBps: Int? = nil, liveposAdvancing: Bool? = nil) {
        self.contentID = contentID
        self.measuredAt = measuredAt
        self.score = score
        self.components = components
        self.failure = failure
        self.facts = facts
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
    }
}
