import Foundation

/// Recognises the URLs that name an AceStream content, the way players and
/// playlists write them.
public enum AceStreamURL {
    /// The lowercase 40-hex content id in `url`, or nil when it names none.
    ///
    /// Accepted: `acestream://<id>`, and `http(s)://host[:port]/ace/getstream?id=<id>`
    /// (also `content_id=` and `infohash=`) or `/ace/manifest.m3u8?id=<id>` on any host.
    public static func contentID(from url: String) -> String? {
        let text = url.trimmingCharacters(in: .whitespacesAndNewlines)
        let lower = text.lowercased()
        if lower.hasPrefix("acestream://") {
            let rest = lower.dropFirst("acestream://".count)
            let id = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            return isContentID(id) ? String(id) : nil
        }
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://"),
              let components = URLComponents(string: text) else { return nil }
        let path = components.path.lowercased()
        guard path.hasSuffix("/ace/getstream") || path.hasSuffix("/ace/getstream/")
            || path.hasSuffix("/ace/manifest.m3u8") else { return nil }
        for name in ["id", "content_id", "infohash"] {
            if let value = components.queryItems?.first(where: { $0.name.lowercased() == name })?.value?.lowercased(),
               isContentID(value[...]) {
                return value
            }
        }
        return nil
    }

    private static func isContentID(_ text: Substring) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
