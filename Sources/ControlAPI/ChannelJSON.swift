import Channels
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RelayCore
import StreamFacts

/// The channel API's JSON objects, built in one place: a channel with its
/// sources in order, a source's score, components and facts, a history entry.
/// Absent values are JSON `null`, never missing keys, so clients see one shape.
enum ChannelJSON {
    /// `playback`: what `/ace/channel/{id}` players of it did (nil before any asked for it).
    static func channel(_ channel: ChannelSnapshot, playback: ChannelPlaybackSnapshot? = nil) -> [String: Any] {
        let record = channel.record
        return [
            "id": record.id, "name": record.name, "group": record.groupTitle ?? NSNull(), "tvg_id": record.tvgID ?? NSNull(),
            "logo": record.logo ?? NSNull(), "origin": record.origin.rawValue,
            "dispatcharr_channel_id": record.dispatcharrChannelID ?? NSNull(),
            "sources": channel.sources.map(source),
            "playback": self.playback(playback),
        ]
    }

    /// players, playing_source, standby_source, switches, last_switch_at, last_switch_reason, switches_by_reason.
    static func playback(_ playback: ChannelPlaybackSnapshot?) -> [String: Any] {
        let p = playback ?? ChannelPlaybackSnapshot(channelID: "")
        return [
            "players": p.players, "playing_source": p.playingSource ?? NSNull(), "standby_source": p.standbySource ?? NSNull(),
            "switches": p.switches, "last_switch_at": p.lastSwitchAt.map(timestamp) ?? NSNull(),
            "last_switch_reason": p.lastSwitchReason?.rawValue ?? NSNull(), "switches_by_reason": p.switchesByReason,
        ]
    }

    static func source(_ source: SourceSnapshot) -> [String: Any] {
        var object = status(source.latest)
        object["content_id"] = source.contentID
        object["dispatcharr_stream_id"] = source.dispatcharrStreamID ?? NSNull()
        return object
    }

    static func history(_ entry: ScoreHistoryEntry) -> [String: Any] {
        var object = status(entry.status)
        object["content_id"] = entry.contentID
        object["measured_at"] = object.removeValue(forKey: "last_measured_at")
        return object
    }

    /// score, components, reason, last_measured_at and facts; all null before the first measurement.
    static func status(_ status: SourceStatus?) -> [String: Any] {
        guard let status else {
            return ["score": NSNull(), "components": NSNull(), "reason": NSNull(), "last_measured_at": NSNull(), "facts": NSNull()]
        }
        let c = status.score.components
        let components: [String: Any] = [
            "start": rounded(c.start), "flow": rounded(c.flow), "continuity": rounded(c.continuity), "livepos": rounded(c.livepos),
            "peers": rounded(c.peers), "speed": rounded(c.speed), "resolution": rounded(c.resolution), "fps": rounded(c.fps),
            "codec": rounded(c.codec), "bitrate": rounded(c.bitrate),
        ]
        return [
            "score": status.score.total, "components": components, "reason": status.score.failure?.rawValue ?? NSNull(),
            "last_measured_at": timestamp(status.measuredAt), "facts": facts(status.facts, bitrateKbps: status.bitrateKbps),
        ]
    }

    static func facts(_ facts: StreamFacts, bitrateKbps: Int?) -> [String: Any] {
        [
            "video_codec": facts.videoCodec?.name ?? NSNull(), "width": facts.width ?? NSNull(), "height": facts.height ?? NSNull(),
            "fps": facts.fps.map(rounded) ?? NSNull(), "audio_codec": facts.audioCodec?.name ?? NSNull(),
            "audio_channels": facts.audioChannels ?? NSNull(), "bitrate_kbps": bitrateKbps ?? NSNull(),
        ]
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    /// Two decimals: the components are sums of weighted fractions, and 7.000000000001 helps nobody.
    private static func rounded(_ value: Double) -> Double { (value * 100).rounded() / 100 }

    /// Any JSON value (object or list) as a response.
    static func response(_ value: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
