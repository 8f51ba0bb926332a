import Foundation
import Locking

/// One channel's playback as `/ace/status`, the channel API and `/metrics` show it.
public struct ChannelPlaybackSnapshot: Codable, Sendable, Equatable {
    public var channelID: String
    /// Players on `/ace/channel/{id}` now.
    public var players: Int
    /// Content id the channel's most recent player switched to or started on; nil while none plays.
    public var playingSource: String?
    /// Content id held open as a warm standby, if any.
    public var standbySource: String?
    /// Source switches of the channel's players since the relay started.
    public var switches: UInt64
    public var lastSwitchAt: Date?
    public var lastSwitchReason: ChannelSwitchReason?
    /// `switches` by reason (only reasons that happened).
    public var switchesByReason: [String: UInt64]

    public init(channelID: String, players: Int = 0, playingSource: String? = nil, standbySource: String? = nil,
                switches: UInt64 = 0, lastSwitchAt: Date? = nil, lastSwitchReason: ChannelSwitchReason? = nil,
                switchesByReason: [String: UInt64] = [:]) {
        self.channelID = channelID
        self.players = players
        self.playingSource = playingSource
        self.standbySource = standbySource
        self.switches = switches
        self.lastSwitchAt = lastSwitchAt
        self.lastSwitchReason = lastSwitchReason
        self.switchesByReason = switchesByReason
    }

    enum CodingKeys: String, CodingKey {
        case channelID = "channel_id", players, playingSource = "playing_source", standbySource = "standby_source"
        case switches, lastSwitchAt = "last_switch_at", lastSwitchReason = "last_switch_reason"
        case switchesByReason = "switches_by_reason"
    }
}

/// What channel players did, per channel, for status pages; written on relay
/// loops (once per join, leave or switch, never per packet), read from any thread.
/// Channels appear once a player asked for one that exists, so the set is bounded
/// by configuration.
final class ChannelLedger: Sendable {
    private let entries = Locked<[String: ChannelPlaybackSnapshot]>([:])

    func joined(_ channel: String) {
        change(channel) { $0.players += 1 }
    }

    func left(_ channel: String) {
        change(channel) { entry in
            entry.players = max(entry.players - 1, 0)
            if entry.players == 0 { entry.playingSource = nil }
        }
    }

    func playing(_ channel: String, source: ContentKey?) {
        change(channel) { $0.playingSource = source?.value }
    }

    func standby(_ channel: String, source: ContentKey?) {
        change(channel) { $0.standbySource = source?.value }
    }

    func switched(_ channel: String, to source: ContentKey?, reason: ChannelSwitchReason) {
        change(channel) { entry in
            entry.switches += 1
            entry.lastSwitchAt = Date()
            entry.lastSwitchReason = reason
            entry.switchesByReason[reason.rawValue, default: 0] += 1
            entry.playingSource = source?.value
        }
    }

    var all: [ChannelPlaybackSnapshot] {
        entries.withLock { Array($0.values) }.sorted { $0.channelID < $1.channelID }
    }

    func snapshot(_ channel: String) -> ChannelPlaybackSnapshot? { entries.withLock { $0[channel] } }

    private func change(_ channel: String, _ body: (inout ChannelPlaybackSnapshot) -> Void) {
        entries.withLock { entries in
            var entry = entries[channel] ?? ChannelPlaybackSnapshot(channelID: channel)
            body(&entry)
            entries[channel] = entry
        }
    }
}
