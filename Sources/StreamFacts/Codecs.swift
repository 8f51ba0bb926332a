/// A video codec as a PMT names it, with the names ffprobe, StreamFlow and
/// Dispatcharr use (`codec_name`).
public enum VideoCodec: String, Sendable, CaseIterable {
    case h264 = "h264"
    case hevc = "hevc"
    case mpeg2 = "mpeg2video"
    case mpeg1 = "mpeg1video"
    /// A video stream type this module does not parse (MPEG-4 part 2, VC-1, AVS, VVC, ...).
    case unknown = "unknown"

    /// The codec name as ffprobe reports it.
    public var name: String { rawValue }
}

/// An audio codec as a PMT names it, with the names ffprobe, StreamFlow and
/// Dispatcharr use (`codec_name`).
public enum AudioCodec: String, Sendable, CaseIterable {
    /// AAC in ADTS (stream type 0x0F).
    case aac = "aac"
    /// AAC in LOAS/LATM (stream type 0x11); ffprobe names it apart.
    case aacLATM = "aac_latm"
    case ac3 = "ac3"
    case eac3 = "eac3"
    case mp2 = "mp2"
    /// An audio stream type this module does not parse (DTS, TrueHD, LPCM, ...).
    case unknown = "unknown"

    /// The codec name as ffprobe reports it.
    public var name: String { rawValue }
}
