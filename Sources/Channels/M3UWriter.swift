/// Writes playlists players and playlist tools read: `#EXTM3U`, then per item
/// `#EXTINF:-1 tvg-id="..." tvg-name="..." tvg-logo="..." group-title="...",Name`
/// and its URL.
///
/// M3U has no escape syntax, so the writer makes values safe instead: a line
/// break in any field becomes a space (it would end the line), a double quote
/// in an attribute becomes a single quote (it would end the value), and a
/// comma in the name is kept (readers take everything after the first comma
/// outside quotes). Empty attributes are left out.
public enum M3UWriter {
    /// One playlist entry to write.
    public struct Item: Equatable, Sendable {
        public var name: String
        public var url: String
        public var tvgID: String?
        public var tvgName: String?
        public var tvgLogo: String?
        public var groupTitle: String?

        public init(name: String, url: String, tvgID: String? = nil, tvgName: String? = nil, tvgLogo: String? = nil, groupTitle: String? = nil) {
            self.name = name
            self.url = url
            self.tvgID = tvgID
            self.tvgName = tvgName
            self.tvgLogo = tvgLogo
            self.groupTitle = groupTitle
        }
    }

    /// The playlist text, lines ending in `\n`.
    public static func render(_ items: [Item]) -> String {
        var text = "#EXTM3U\n"
        for item in items {
            text += "#EXTINF:-1"
            for (key, value) in [("tvg-id", item.tvgID), ("tvg-name", item.tvgName), ("tvg-logo", item.tvgLogo), ("group-title", item.groupTitle)] {
                guard let value, !value.isEmpty else { continue }
                text += " \(key)=\"\(attributeSafe(value))\""
            }
            text += ",\(lineSafe(item.name))\n"
            text += urlSafe(item.url) + "\n"
        }
        return text
    }

    /// One item per channel, with the URL `url` gives for it (channels it gives nil for are left out).
    public static func render(_ channels: [M3UImport.Channel], url: (M3UImport.Channel) -> String?) -> String {
        render(channels.compactMap { channel in
            url(channel).map {
                Item(name: channel.name, url: $0, tvgID: channel.tvgID, tvgName: channel.tvgName,
                     tvgLogo: channel.tvgLogo, groupTitle: channel.groupTitle)
            }
        })
    }

    static func lineSafe(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 }).trimmingWhitespace().description
    }

    static func attributeSafe(_ text: String) -> String {
        lineSafe(text).replacingQuotes()
    }

    /// A URL must stay one token on one line: whitespace and line breaks are percent-encoded.
    static func urlSafe(_ url: String) -> String {
        var result = ""
        for scalar in url.trimmingWhitespace().unicodeScalars {
            switch scalar {
            case "\r": result += "%0D"
            case "\n": result += "%0A"
            case " ": result += "%20"
            case "\t": result += "%09"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

extension String {
    fileprivate func replacingQuotes() -> String {
        String(map { $0 == "\"" ? "'" : $0 })
    }
}
