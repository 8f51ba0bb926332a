/// A channel as Dispatcharr lists it: only what acerelay uses.
public struct DispatcharrChannel: Sendable, Equatable {
    /// Dispatcharr's channel id (the `{id}` in `/api/channels/channels/{id}/`).
    public var id: Int
    /// The channel's display name.
    public var name: String
    /// `channel_group_id` (or `channel_group`); nil for a channel in no group.
    public var groupID: Int?
    /// The EPG id (`tvg_id`), when set.
    public var tvgID: String?
    /// The channel's stream ids; the position is the failover priority.
    public var streamIDs: [Int]

    /// A channel as given.
    public init(id: Int, name: String, groupID: Int? = nil, tvgID: String? = nil, streamIDs: [Int]) {
        self.id = id
        self.name = name
        self.groupID = groupID
        self.tvgID = tvgID
        self.streamIDs = streamIDs
    }

    /// The channel in a Dispatcharr answer; nil when `id` or `name` is missing.
    package init?(json: JSONValue) {
        guard let id = json["id"]?.intValue, let name = json["name"]?.stringValue else { return nil }
        self.id = id
        self.name = name
        groupID = json["channel_group_id"]?.intValue ?? json["channel_group"]?.intValue ?? json["channel_group"]?["id"]?.intValue
        tvgID = json["tvg_id"]?.stringValue
        // `streams` is a list of ids, or of stream objects with `?include_streams=true`.
        streamIDs = (json["streams"]?.arrayValue ?? []).compactMap { $0.intValue ?? $0["id"]?.intValue }
    }
}

/// A channel group: Dispatcharr's id and name.
public struct DispatcharrGroup: Sendable, Equatable {
    /// Dispatcharr's group id.
    public var id: Int
    /// The group's name, which DISPATCHARR_CHANNEL_GROUPS matches.
    public var name: String

    /// A group as given.
    public init(id: Int, name: String) {
        self.id = id
        self.name = name
    }

    package init?(json: JSONValue) {
        guard let id = json["id"]?.intValue, let name = json["name"]?.stringValue else { return nil }
        self.init(id: id, name: name)
    }
}

/// A stream as Dispatcharr lists it: only what acerelay uses.
public struct DispatcharrStream: Sendable, Equatable {
    /// Dispatcharr's stream id.
    public var id: Int
    /// The stream's name.
    public var name: String
    /// The stream's URL; AceStream ones carry a content id (see `AceStreamURL`).
    public var url: String
    /// Whatever is stored in `stream_stats`: any JSON, often null.
    public var streamStats: JSONValue

    /// A stream as given.
    public init(id: Int, name: String, url: String, streamStats: JSONValue = .null) {
        self.id = id
        self.name = name
        self.url = url
        self.streamStats = streamStats
    }

    package init?(json: JSONValue) {
        guard let id = json["id"]?.intValue else { return nil }
        self.init(id: id, name: json["name"]?.stringValue ?? "", url: json["url"]?.stringValue ?? "",
                  streamStats: json["stream_stats"] ?? .null)
    }
}

/// What acerelay measured about a source's media, in the form Dispatcharr's
/// `stream_stats` holds it (StreamFlow's field names). Nil fields are not written,
/// so a value another tool wrote stays.
public struct DispatcharrStreamFacts: Sendable, Equatable {
    /// Picture width in pixels; written with `height` as `resolution`.
    public var width: Int?
    /// Picture height in pixels.
    public var height: Int?
    /// Frames per second, written as `source_fps`.
    public var fps: Double?
    /// Lowercase codec name as StreamFlow writes it: `h264`, `hevc`, `mpeg2video`.
    public var videoCodec: String?
    /// Lowercase codec name: `aac`, `ac3`, `eac3`, `mp2`.
    public var audioCodec: String?
    /// Channels of the first audio track, written as `audio_channels`.
    public var audioChannels: Int?
    /// Written as `ffmpeg_output_bitrate`, in kbit/s.
    public var bitrateKbps: Int?

    /// Facts as given.
    public init(width: Int? = nil, height: Int? = nil, fps: Double? = nil, videoCodec: String? = nil,
                audioCodec: String? = nil, audioChannels: Int? = nil, bitrateKbps: Int? = nil) {
        self.width = width
        self.height = height
        self.fps = fps
        self.videoCodec = videoCodec
        self.audioCodec = audioCodec
        self.audioChannels = audioChannels
        self.bitrateKbps = bitrateKbps
    }

    /// The `stream_stats` members these facts set: `resolution` ("1280x720"), `source_fps`,
    /// `video_codec`, `audio_codec`, `audio_channels`, `ffmpeg_output_bitrate`.
    public var statsFields: [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        if let width, let height { fields["resolution"] = .string("\(width)x\(height)") }
        if let fps { fields["source_fps"] = .double(fps) }
        if let videoCodec { fields["video_codec"] = .string(videoCodec) }
        if let audioCodec { fields["audio_codec"] = .string(audioCodec) }
        if let audioChannels { fields["audio_channels"] = .int(audioChannels) }
        if let bitrateKbps { fields["ffmpeg_output_bitrate"] = .int(bitrateKbps) }
        return fields
    }
}

/// Merging into `stream_stats`, which Dispatcharr replaces whole on every PATCH.
public enum StreamStatsMerge {
    /// `current` with `fields` set and every other member kept; a current value that
    /// is not an object (null, a string, a list) becomes an object of `fields` alone.
    public static func merged(_ current: JSONValue, with fields: [String: JSONValue]) -> JSONValue {
        guard case .object(var members) = current else { return .object(fields) }
        for (key, value) in fields { members[key] = value }
        return .object(members)
    }
}
