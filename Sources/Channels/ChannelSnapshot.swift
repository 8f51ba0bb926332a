import Foundation
import Store
import StreamFacts

/// A channel as the API shows it: its fields and its sources in failover
/// order, each with its latest score.
public struct ChannelSnapshot: Sendable, Equatable {
    public var record: ChannelRecord
    public var sources: [SourceSnapshot]

    public init(record: ChannelRecord, sources: [SourceSnapshot]) {
        self.record = record
        self.sources = sources
    }

    /// The channel's id (its slug).
    public var id: String { record.id }
}

/// One source of a channel and what its latest measurement said.
public struct SourceSnapshot: Sendable, Equatable {
    /// 40 lowercase hex digits.
    public var contentID: String
    public var dispatcharrStreamID: Int?
    /// nil until the source was measured once.
    public var latest: SourceStatus?

    public init(contentID: String, dispatcharrStreamID: Int? = nil, latest: SourceStatus? = nil) {
        self.contentID = contentID
        self.dispatcharrStreamID = dispatcharrStreamID
        self.latest = latest
    }
}

/// A source's latest measurement, scored.
public struct SourceStatus: Sendable, Equatable {
    /// The score, its components, and the failure that made it 0.
    public var score: SourceScore
    public var measuredAt: Date
    /// What the packets said; empty when the measurement failed before the PMT.
    public var facts: StreamFacts
    /// Bitrate read from PCR, kbit/s.
    public var bitrateKbps: Int?

    public init(score: SourceScore, measuredAt: Date, facts: StreamFacts, bitrateKbps: Int?) {
        self.score = score
        self.measuredAt = measuredAt
        self.facts = facts
        self.bitrateKbps = bitrateKbps
    }

    /// The measurement failed: the source goes last and scores 0.
    public var failed: Bool { score.failure != nil }
}

/// One entry of a channel's score history (`GET /channels/{id}/scores`).
public struct ScoreHistoryEntry: Sendable, Equatable {
    public var contentID: String
    public var status: SourceStatus

    public init(contentID: String, status: SourceStatus) {
        self.contentID = contentID
        self.status = status
    }
}

/// What an M3U import did (`POST /channels/import`).
public struct ChannelImportSummary: Sendable, Equatable {
    public var channelsCreated = 0
    public var channelsUpdated = 0
    public var sourcesAdded = 0
    /// Entries that gave no source, with why, in playlist order.
    public var skipped: [M3UImport.Skipped] = []

    public init() {}
}

/// A new channel, as the API or an importer describes it.
public struct ChannelDraft: Sendable, Equatable {
    public var name: String
    public var groupTitle: String?
    public var tvgID: String?
    public var logo: String?
    public var origin: ChannelOrigin
    public var dispatcharrChannelID: Int?
    /// In failover order; content ids are checked and lower-cased, duplicates dropped.
    public var sources: [ChannelSourceRecord]

    public init(name: String, groupTitle: String? = nil, tvgID: String? = nil, logo: String? = nil, origin: ChannelOrigin = .api,
                dispatcharrChannelID: Int? = nil, sources: [ChannelSourceRecord] = []) {
        self.name = name
        self.groupTitle = groupTitle
        self.tvgID = tvgID
        self.logo = logo
        self.origin = origin
        self.dispatcharrChannelID = dispatcharrChannelID
        self.sources = sources
    }
}

/// Changes to a channel; nil leaves a field as it is, an empty string clears it.
public struct ChannelPatch: Sendable, Equatable {
    public var name: String?
    public var groupTitle: String?
    public var tvgID: String?
    public var logo: String?
    /// Replaces the whole list, in this order.
    public var sources: [ChannelSourceRecord]?

    public init(name: String? = nil, groupTitle: String? = nil, tvgID: String? = nil, logo: String? = nil,
                sources: [ChannelSourceRecord]? = nil) {
        self.name = name
        self.groupTitle = groupTitle
        self.tvgID = tvgID
        self.logo = logo
        self.sources = sources
    }
}

/// Why a channel could not be created or changed, in one line for the caller.
public enum ChannelValidationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A source that is not 40 hex digits; carries what was given.
    case invalidContentID(String)
    /// A channel needs a name.
    case emptyName

    public var description: String {
        switch self {
        case .invalidContentID(let value): "source \"\(value.prefix(60))\" is not a content id: expected 40 hex characters"
        case .emptyName: "name must not be empty"
        }
    }
}

/// One channel's figures for `/metrics`.
public struct ChannelGauge: Sendable, Equatable {
    public var channelID: String
    /// The best score among its working sources; 0 when none was measured working.
    public var bestScore: Int
    /// Sources whose latest measurement worked.
    public var ok: Int
    /// Sources whose latest measurement failed.
    public var failed: Int
}

/// The channel service's counters, for `/metrics`.
public struct ChannelCounts: Sendable, Equatable {
    /// Measurements recorded, by result: `ok` or a `SourceFailure` raw value.
    public var measurements: [String: UInt64] = [:]
    /// Times a channel's order changed.
    public var reorders: UInt64 = 0

    public init() {}
}
