/// One Dispatcharr channel that acerelay manages: it has at least one AceStream stream.
public struct ManagedChannel: Sendable, Equatable {
    /// One AceStream stream of the channel.
    public struct Source: Sendable, Equatable {
        /// The lowercase 40-hex content id from the stream's URL.
        public var contentID: String
        /// Dispatcharr's stream id.
        public var streamID: Int

        /// A source as given.
        public init(contentID: String, streamID: Int) {
            self.contentID = contentID
            self.streamID = streamID
        }
    }

    /// Dispatcharr's channel id.
    public var id: Int
    /// The channel's display name.
    public var name: String
    /// The channel's group id, when it has one.
    public var groupID: Int?
    /// The group's name, when the group is known.
    public var groupName: String?
    /// The EPG id (`tvg_id`), when set.
    public var tvgID: String?
    /// The AceStream streams, in the channel's current order.
    public var sources: [Source]
    /// The channel's other streams (not AceStream, or not readable), in their current order.
    public var otherStreamIDs: [Int]
    /// Every stream of the channel in its current order: what a PATCH compares against.
    public var streamIDs: [Int]

    /// A managed channel as given.
    public init(id: Int, name: String, groupID: Int? = nil, groupName: String? = nil, tvgID: String? = nil,
                sources: [Source], otherStreamIDs: [Int], streamIDs: [Int]) {
        self.id = id
        self.name = name
        self.groupID = groupID
        self.groupName = groupName
        self.tvgID = tvgID
        self.sources = sources
        self.otherStreamIDs = otherStreamIDs
        self.streamIDs = streamIDs
    }

    /// The stream order for this channel given sources ranked by content id (best first,
    /// working) and failed content ids, or nil when it is the current order.
    /// A content id that several streams share moves them together, in their current order.
    public func plannedStreamIDs(rankedContentIDs: [String], failedContentIDs: [String]) -> [Int]? {
        func streams(_ contentIDs: [String]) -> [Int] {
            contentIDs.flatMap { id in sources.filter { $0.contentID == id.lowercased() }.map(\.streamID) }
        }
        return StreamOrderPlan.streams(current: streamIDs, ranked: streams(rankedContentIDs),
                                       failed: streams(failedContentIDs), others: otherStreamIDs)
    }
}

/// Which Dispatcharr channels acerelay manages, and their sources: a pure function
/// of what Dispatcharr listed.
public struct ManagedChannelPlan: Sendable, Equatable {
    /// The managed channels, in the order Dispatcharr listed them.
    public var channels: [ManagedChannel]

    /// Plans from Dispatcharr's channels, the streams they reference (any order; a
    /// missing one counts as a non-AceStream stream) and its groups.
    ///
    /// With a non-empty `groupFilter` only channels in a group of one of those names
    /// (compared without regard to case) are managed; a channel in no group then is not.
    /// A channel is managed when at least one of its streams has an AceStream URL.
    public init(channels: [DispatcharrChannel], streams: [DispatcharrStream], groups: [DispatcharrGroup],
                groupFilter: [String]) {
        let streamsByID = Dictionary(streams.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let groupNames = Dictionary(groups.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let wanted = Set(groupFilter.map { $0.lowercased() })
        self.channels = channels.compactMap { channel in
            let groupName = channel.groupID.flatMap { groupNames[$0] }
            if !wanted.isEmpty {
                guard let groupName, wanted.contains(groupName.lowercased()) else { return nil }
            }
            var sources: [ManagedChannel.Source] = []
            var others: [Int] = []
            for streamID in channel.streamIDs {
                if let url = streamsByID[streamID]?.url, let contentID = AceStreamURL.contentID(from: url) {
                    sources.append(.init(contentID: contentID, streamID: streamID))
                } else {
                    others.append(streamID)
                }
            }
            guard !sources.isEmpty else { return nil }
            return ManagedChannel(id: channel.id, name: channel.name, groupID: channel.groupID, groupName: groupName,
                                  tvgID: channel.tvgID, sources: sources, otherStreamIDs: others,
                                  streamIDs: channel.streamIDs)
        }
    }
}
