import Store

/// What an adoption of Dispatcharr's channels changed (`adoptDispatcharrChannels`).
public struct ChannelAdoptionSummary: Sendable, Equatable {
    public var created = 0
    public var updated = 0
    public var removed = 0

    public init() {}
}

extension ChannelService {
    /// Makes the channels of origin `dispatcharr` match `drafts`, the channels
    /// Dispatcharr manages (each with its `dispatcharrChannelID`).
    ///
    /// A channel already known keeps acerelay's order of the sources it still
    /// has — that order is what acerelay pushed, and Dispatcharr may not have
    /// applied it yet — with new sources appended in Dispatcharr's order.
    /// A Dispatcharr channel that is no longer managed (deleted, moved out of
    /// `DISPATCHARR_CHANNEL_GROUPS`, no AceStream stream left) is removed.
    public func adoptDispatcharrChannels(_ drafts: [ChannelDraft]) async throws -> ChannelAdoptionSummary {
        var summary = ChannelAdoptionSummary()
        let existing = try await channels().filter { $0.record.origin == .dispatcharr }
        var byDispatcharrID: [Int: ChannelSnapshot] = [:]
        for channel in existing { if let id = channel.record.dispatcharrChannelID { byDispatcharrID[id] = channel } }
        var wanted = Set<Int>()
        for draft in drafts {
            guard let dispatcharrID = draft.dispatcharrChannelID else { continue }
            wanted.insert(dispatcharrID)
            guard let known = byDispatcharrID[dispatcharrID] else {
                _ = try await create(draft)
                summary.created += 1
                continue
            }
            let offered = try Self.normalized(draft.sources)
            let streamIDs = Dictionary(offered.map { ($0.contentID, $0.dispatcharrStreamID) }, uniquingKeysWith: { a, _ in a })
            let kept = known.sources.compactMap { source -> ChannelSourceRecord? in
                guard let streamID = streamIDs[source.contentID] else { return nil }
                return ChannelSourceRecord(contentID: source.contentID, dispatcharrStreamID: streamID)
            }
            let keptIDs = Set(kept.map(\.contentID))
            let sources = kept + offered.filter { !keptIDs.contains($0.contentID) }
            var patch = ChannelPatch()
            let currentSources = known.sources.map { ChannelSourceRecord(contentID: $0.contentID, dispatcharrStreamID: $0.dispatcharrStreamID) }
            if sources != currentSources { patch.sources = sources }
            if draft.name != known.record.name { patch.name = draft.name }
            if draft.groupTitle != known.record.groupTitle { patch.groupTitle = draft.groupTitle ?? "" }
            if draft.tvgID != known.record.tvgID { patch.tvgID = draft.tvgID ?? "" }
            guard patch != ChannelPatch() else { continue }
            _ = try await update(id: known.id, patch)
            summary.updated += 1
        }
        for (dispatcharrID, channel) in byDispatcharrID where !wanted.contains(dispatcharrID) {
            if try await delete(id: channel.id) { summary.removed += 1 }
        }
        return summary
    }
}
