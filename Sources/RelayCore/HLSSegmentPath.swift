/// The stream port's HLS segment URLs, `/ace/hls/<kind>/<40 hex>/<sequence>.ts`,
/// built and read in this one place. `<kind>` is `id` (content id) or `infohash`,
/// the query names players already use for the two name spaces.
public enum HLSSegmentPath {
    /// The prefix the router hands to `parse`.
    public static let prefix = "/ace/hls/"

    public static func path(content: ContentKey, sequence: UInt64) -> String {
        "\(prefix)\(content.kind == .contentID ? "id" : "infohash")/\(content.value)/\(sequence).ts"
    }

    /// The content and sequence a segment path names; nil when it is not one.
    public static func parse(_ path: String) -> (content: ContentKey, sequence: UInt64)? {
        guard path.hasPrefix(prefix) else { return nil }
        let parts = path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasSuffix(".ts"), let sequence = UInt64(parts[2].dropLast(3)) else { return nil }
        let kind: ContentKey.Kind
        switch parts[0] {
        case "id": kind = .contentID
        case "infohash": kind = .infohash
        default: return nil
        }
        guard let content = ContentKey(kind: kind, value: String(parts[1])) else { return nil }
        return (content, sequence)
    }
}
