import StreamFacts

/// `StreamFacts` as the store keeps it: a JSON object with the API's field
/// names and ffprobe's codec names, so the history reads the same in SQLite.
struct StoredStreamFacts: Codable, Equatable {
    var videoCodec: String?
    var width: Int?
    var height: Int?
    var fps: Double?
    var audioCodec: String?
    var audioChannels: Int?
    var audioSampleRate: Int?

    enum CodingKeys: String, CodingKey {
        case videoCodec = "video_codec", width, height, fps, audioCodec = "audio_codec"
        case audioChannels = "audio_channels", audioSampleRate = "audio_sample_rate"
    }

    init(_ facts: StreamFacts) {
        videoCodec = facts.videoCodec?.name
        width = facts.width
        height = facts.height
        fps = facts.fps
        audioCodec = facts.audioCodec?.name
        audioChannels = facts.audioChannels
        audioSampleRate = facts.audioSampleRate
    }

    var facts: StreamFacts {
        StreamFacts(videoCodec: videoCodec.flatMap(VideoCodec.init(rawValue:)), width: width, height: height, fps: fps,
                    audioCodec: audioCodec.flatMap(AudioCodec.init(rawValue:)), audioChannels: audioChannels,
                    audioSampleRate: audioSampleRate)
    }
}
