/// What a source's MPEG-TS says about itself, for scoring it without ffmpeg:
/// codecs, picture size, frame rate and audio layout of the first program.
///
/// A field is nil until it is known; one that cannot be learnt (a codec this
/// module does not parse, a stream without audio) stays nil rather than guessed.
public struct StreamFacts: Equatable, Sendable {
    /// The first video stream's codec, from the PMT; nil before the PMT or without video.
    public var videoCodec: VideoCodec?
    /// Displayed width in pixels (cropping applied), from the sequence header.
    public var width: Int?
    /// Displayed height in pixels (cropping applied), from the sequence header.
    public var height: Int?
    /// Frames per second: from the H.264 VUI or MPEG-2 sequence header when
    /// present, otherwise from the step between consecutive video PES timestamps.
    public var fps: Double?
    /// The first audio stream's codec: from the PMT, corrected by the frame header.
    public var audioCodec: AudioCodec?
    /// Channel count including LFE (5.1 is 6).
    public var audioChannels: Int?
    /// Samples per second.
    public var audioSampleRate: Int?

    public init(
        videoCodec: VideoCodec? = nil, width: Int? = nil, height: Int? = nil, fps: Double? = nil,
        audioCodec: AudioCodec? = nil, audioChannels: Int? = nil, audioSampleRate: Int? = nil
    ) {
        self.videoCodec = videoCodec
        self.width = width
        self.height = height
        self.fps = fps
        self.audioCodec = audioCodec
        self.audioChannels = audioChannels
        self.audioSampleRate = audioSampleRate
    }

    /// `"1280x720"`, the form Dispatcharr's `stream_stats.resolution` takes; nil until both are known.
    public var resolution: String? {
        guard let width, let height else { return nil }
        return "\(width)x\(height)"
    }
}
