/// A playlist turned into channels: entries that name the same channel are
/// one channel with several AceStream sources, in playlist order.
///
/// Entries are the same channel when they share a `tvg-id`, or, without one,
/// the same display name (case-folded). The first entry of a channel gives its
/// name and attributes; later ones only fill in what is missing.
public struct M3UImport: Equatable, Sendable {
    /// One channel and its sources.
    public struct Channel: Equatable, Sendable {
        /// The first entry's display name (its `tvg-id` when it had no name).
        public var name: String
        /// The slug of `name`.
        public var slug: ChannelSlug
        /// `tvg-id`, the EPG channel id.
        public var tvgID: String?
        /// `tvg-name`, the EPG channel name.
        public var tvgName: String?
        /// `tvg-logo`, the logo URL.
        public var tvgLogo: String?
        /// `group-title`, else `#EXTGRP`.
        public var groupTitle: String?
        /// Sources unique by `contentKey`, in the order the playlist lists them.
        public var sources: [AceStreamReference]
        /// Line numbers of the URL lines that gave `sources`, same order.
        public var sourceLines: [Int]
    }

    /// An entry that gave no source, and why.
    public struct Skipped: Equatable, Sendable {
        /// 1-based line number of the URL line.
        public var line: Int
        /// One line for a person: why the entry gave no source.
        public var reason: String
    }

    /// Channels in order of first appearance.
    public var channels: [Channel]
    /// Entries that gave no new source, in playlist order.
    public var skipped: [Skipped]

    public init(_ playlist: M3UPlaylist) {
        var channels: [Channel] = []
        var skipped: [Skipped] = []
        var indexByKey: [String: Int] = [:]
        for entry in playlist.entries {
            let reference: AceStreamReference
            switch AceStreamReference.parse(entry.url) {
            case let .success(found): reference = found
            case let .failure(rejection):
                skipped.append(Skipped(line: entry.line, reason: rejection.description))
                continue
            }
            let name = entry.displayName
            guard let key = Self.channelKey(entry) else {
                skipped.append(Skipped(line: entry.line, reason: "no channel name or tvg-id"))
                continue
            }
            if let index = indexByKey[key] {
                if let duplicate = channels[index].sources.firstIndex(where: { $0.contentKey == reference.contentKey }) {
                    skipped.append(Skipped(line: entry.line, reason: "same source as line \(channels[index].sourceLines[duplicate])"))
                    continue
                }
                channels[index].sources.append(reference)
                channels[index].sourceLines.append(entry.line)
                channels[index].tvgName = channels[index].tvgName ?? entry.tvgName
                channels[index].tvgLogo = channels[index].tvgLogo ?? entry.tvgLogo
                channels[index].groupTitle = channels[index].groupTitle ?? entry.groupTitle
                if channels[index].name.isEmpty { channels[index].name = name }
            } else {
                indexByKey[key] = channels.count
                let channelName = name.isEmpty ? (entry.tvgID ?? "") : name
                channels.append(Channel(
                    name: channelName, slug: ChannelSlug(channelName), tvgID: entry.tvgID, tvgName: entry.tvgName,
                    tvgLogo: entry.tvgLogo, groupTitle: entry.groupTitle, sources: [reference], sourceLines: [entry.line]
                ))
            }
        }
        self.channels = channels
        self.skipped = skipped
    }

    /// Parses `text` and imports it.
    public init(text: String) throws(M3UParseError) {
        self.init(try M3UPlaylist(text: text))
    }

    /// The grouping key: `tvg-id`, else the case-folded display name; nil with neither.
    static func channelKey(_ entry: M3UPlaylist.Entry) -> String? {
        if let id = entry.tvgID?.trimmingWhitespace(), !id.isEmpty { return "id:" + id.lowercased() }
        let name = entry.displayName.trimmingWhitespace()
        guard !name.isEmpty else { return nil }
        return "name:" + name.lowercased()
    }
}
