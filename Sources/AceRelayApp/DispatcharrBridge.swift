import Channels
import Store
import CurlHTTP
import Dispatcharr
import Logging
import StreamFacts
import Locking

/// Joins the Dispatcharr sync to the channel service: every sync makes the
/// channels Dispatcharr manages match it, and every real change the channel
/// service makes (a new order, new stream facts) is queued for Dispatcharr.
/// Nothing here waits on Dispatcharr: a slow or absent one never holds up
/// measuring or playback.
final class DispatcharrBridge: Sendable {
    let sync: DispatcharrSync
    private let channels: ChannelService
    private let logger: Logger
    /// acerelay channel id → Dispatcharr channel id, refreshed on each sync,
    /// read by the (synchronous) order hook.
    private let dispatcharrIDs = ChannelIDMap()

    init(configuration: DispatcharrConfiguration, channels: ChannelService, logger: Logger) {
        let client = DispatcharrClient(configuration: configuration, http: .shared, logger: logger)
        sync = DispatcharrSync(client: client, configuration: configuration, logger: logger)
        self.channels = channels
        self.logger = logger
        channels.onOrderChanged { [sync, dispatcharrIDs] channelID, ranked, failed in
            guard let target = dispatcharrIDs.ids.withLock({ $0[channelID] }) else { return }
            _ = sync.pushOrder(channelID: target, rankedContentIDs: ranked, failedContentIDs: failed)
        }
        channels.onFactsChanged { [sync] contentID, facts, bitrateKbps in
            _ = sync.pushFacts(contentID: contentID, facts: Self.dispatcharrFacts(facts, bitrateKbps: bitrateKbps))
        }
    }

    /// Reads Dispatcharr's channels and adopts the managed ones; a failure is
    /// thrown for the periodic service to log (once, and again on recovery).
    func syncOnce() async throws {
        let managed = try await sync.syncOnce()
        let summary = try await channels.adoptDispatcharrChannels(managed.map(Self.draft))
        let ids = try await channels.channels().reduce(into: [String: Int]()) { map, channel in
            if channel.record.origin == .dispatcharr, let id = channel.record.dispatcharrChannelID { map[channel.id] = id }
        }
        dispatcharrIDs.ids.withLock { $0 = ids }
        if summary != ChannelAdoptionSummary() {
            logger.info("channels read from Dispatcharr", metadata: [
                "dispatcharr.created": "\(summary.created)", "dispatcharr.updated": "\(summary.updated)",
                "dispatcharr.removed": "\(summary.removed)",
            ])
        }
    }

    /// A managed Dispatcharr channel as a channel of origin `dispatcharr`.
    static func draft(_ channel: ManagedChannel) -> ChannelDraft {
        ChannelDraft(name: channel.name, groupTitle: channel.groupName, tvgID: channel.tvgID, origin: .dispatcharr,
                     dispatcharrChannelID: channel.id,
                     sources: channel.sources.map { ChannelSourceRecord(contentID: $0.contentID, dispatcharrStreamID: $0.streamID) })
    }

    /// Stream facts in the fields StreamFlow writes to `stream_stats`.
    static func dispatcharrFacts(_ facts: StreamFacts, bitrateKbps: Int?) -> DispatcharrStreamFacts {
        var out = DispatcharrStreamFacts()
        out.width = facts.width
        out.height = facts.height
        out.fps = facts.fps
        out.videoCodec = facts.videoCodec?.name
        out.audioCodec = facts.audioCodec?.name
        out.audioChannels = facts.audioChannels
        out.bitrateKbps = bitrateKbps
        return out
    }
}

/// acerelay channel ids to Dispatcharr's, shared by the bridge and its hook.
final class ChannelIDMap: Sendable {
    let ids = Locked<[String: Int]>([:])
}
