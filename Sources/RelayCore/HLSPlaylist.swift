/// A live HLS media playlist (RFC 8216), built from a list of segments.
///
/// It takes entries, not a hub, so a playlist can list segments of more than one
/// hub (a channel that switched sources), each entry with its own URI and a
/// discontinuity where the source changes. Never `#EXT-X-ENDLIST`: it is live.
public struct HLSPlaylist: Sendable, Equatable {
    /// One `#EXTINF` line and its URI.
    public struct Entry: Sendable, Equatable {
        public var uri: String
        public var duration: Double
        /// `#EXT-X-DISCONTINUITY` before it: its timestamps do not continue from the entry before.
        public var discontinuity: Bool

        public init(uri: String, duration: Double, discontinuity: Bool) {
            self.uri = uri
            self.duration = duration
            self.discontinuity = discontinuity
        }
    }

    public var entries: [Entry]
    /// The first entry's media sequence number.
    public var mediaSequence: UInt64
    /// Discontinuity tags before the first entry's own (those that left the window).
    public var discontinuitySequence: UInt64
    /// `#EXT-X-TARGETDURATION`: at least every entry's duration rounded to the nearest second.
    public var targetDuration: Int

    /// - Parameter minimumTargetDuration: the target the playlist had before; it must
    ///   not shrink, so the caller passes the largest it ever announced.
    public init(entries: [Entry], mediaSequence: UInt64, discontinuitySequence: UInt64, minimumTargetDuration: Int) {
        self.entries = entries
        self.mediaSequence = mediaSequence
        self.discontinuitySequence = discontinuitySequence
        let longest = entries.map { Int($0.duration.rounded()) }.max() ?? 0
        targetDuration = max(minimumTargetDuration, longest, 1)
    }

    /// The playlist of one hub's newest segments, each at its stable URL.
    public init(segments: [HLSSegment], content: ContentKey, minimumTargetDuration: Int) {
        let first = segments.first
        self.init(entries: segments.map { Entry(uri: HLSSegmentPath.path(content: content, sequence: $0.sequence),
                                                duration: $0.duration, discontinuity: $0.discontinuity) },
                  mediaSequence: first?.sequence ?? 0,
                  discontinuitySequence: first.map { $0.discontinuitySequence - ($0.discontinuity ? 1 : 0) } ?? 0,
                  minimumTargetDuration: minimumTargetDuration)
    }

    /// The playlist's text.
    public var text: String {
        var lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:\(targetDuration)", "#EXT-X-MEDIA-SEQUENCE:\(mediaSequence)"]
        if discontinuitySequence > 0 { lines.append("#EXT-X-DISCONTINUITY-SEQUENCE:\(discontinuitySequence)") }
        for entry in entries {
            if entry.discontinuity { lines.append("#EXT-X-DISCONTINUITY") }
            lines.append("#EXTINF:\(HLSPlaylist.seconds(entry.duration)),")
            lines.append(entry.uri)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Three decimals, no exponent, whatever the locale.
    static func seconds(_ value: Double) -> String {
        let millis = Int((max(value, 0) * 1000).rounded())
        let fraction = String(millis % 1000)
        return "\(millis / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
