import Foundation
import Logging
import RelayCore
import Store
import StreamFacts
import Locking

/// The channels and their sources' scores: where every measurement lands,
/// what the prober asks which sources to measure, and what the API reads.
///
/// On each measurement it scores the source, stores the score, and reorders
/// every channel holding the source with `SourceOrdering` (hysteresis
/// `margin`), persisting an order only when it changed. Two hooks tell the
/// outside world (Dispatcharr) exactly once per change:
/// - `onOrderChanged(channelID, rankedWorking, failed)` when a channel's order changed;
/// - `onFactsChanged(contentID, facts, bitrateKbps)` when a working source's
///   stream facts differ from its previous working measurement's (bitrate alone
///   moves every time, so it rides along without counting as a change).
///
/// Hooks run synchronously on the service; they must hand the work off
/// (enqueue, spawn) and never block, so a slow Dispatcharr never slows measuring.
///
/// Everything is cached in memory after the first use, so reads cost no query;
/// the store is written through, in order.
public actor ChannelService: SourceMeasurementSink, SourceCatalog {
    /// What the hooks receive.
    public typealias OrderChanged = @Sendable (_ channelID: String, _ rankedWorking: [String], _ failed: [String]) -> Void
    public typealias FactsChanged = @Sendable (_ contentID: String, _ facts: StreamFacts, _ bitrateKbps: Int?) -> Void

    private struct Hooks {
        var orderChanged: OrderChanged?
        var factsChanged: FactsChanged?
    }

    private struct Cache {
        var channels: [StoredChannel]
        var latest: [String: SourceStatus]
        /// The facts of each source's latest working measurement: what a facts change is measured against.
        var lastWorkingFacts: [String: StreamFacts]
    }

    private let store: Store
    private let ordering: SourceOrdering
    private let logger: Logger
    private let now: @Sendable () -> Date
    private var cache: Cache? {
        // Every change of channels or scores goes through here, so relay loops always read the current order.
        didSet { publishDirectory() }
    }
    private var loading: Task<Cache, any Error>?
    /// The store is written through in the order the cache changed, even when calls interleave.
    private var writes: Task<Void, Never>?
    private nonisolated let hooks = Locked(Hooks())
    private nonisolated let counters = Locked(ChannelCounts())
    /// Each channel's working sources best first, for relay loops (`ChannelDirectory`).
    nonisolated let directory = Locked<[String: [ContentKey]]>([:])
    /// Sources reported failed whose failure is not recorded yet: left out of `directory` meanwhile.
    nonisolated let reportedFailures = Locked<Set<String>>([])

    /// `margin` is `CHANNEL_REORDER_MARGIN`; `now` is injected for tests.
    public init(store: Store, margin: Int = 10, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.ordering = SourceOrdering(margin: margin)
        self.logger = logger
        self.now = now
    }

    /// Sets the hook told of each real change of a channel's order: the working
    /// sources best first, then the failed ones in their previous order.
    public nonisolated func onOrderChanged(_ hook: @escaping OrderChanged) {
        hooks.withLock { $0.orderChanged = hook }
    }

    /// Sets the hook told when a working source's stream facts changed.
    public nonisolated func onFactsChanged(_ hook: @escaping FactsChanged) {
        hooks.withLock { $0.factsChanged = hook }
    }

    /// Measurements by result and reorders, since start.
    public nonisolated var counts: ChannelCounts { counters.withLock { $0 } }

    // MARK: Reading

    /// Every channel, in order of creation.
    public func channels() async throws -> [ChannelSnapshot] {
        let cache = try await loaded()
        return cache.channels.map { snapshot($0, cache) }
    }

    /// One channel, or nil.
    public func channel(id: String) async throws -> ChannelSnapshot? {
        let cache = try await loaded()
        return cache.channels.first { $0.channel.id == id }.map { snapshot($0, cache) }
    }

    /// The score history of a channel's current sources since `since`, oldest
    /// first; nil when there is no such channel.
    public func history(channelID: String, since: Date?) async throws -> [ScoreHistoryEntry]? {
        guard let channel = try await loaded().channels.first(where: { $0.channel.id == channelID }) else { return nil }
        let records = try await store.measurements(contentIDs: channel.sources.map(\.contentID), since: since)
        return records.map { ScoreHistoryEntry(contentID: $0.contentID, status: Self.status($0)) }
    }

    /// Each channel's best score and source states, for `/metrics`.
    public func gauges() async -> [ChannelGauge] {
        guard let cache = try? await loaded() else { return [] }
        return cache.channels.map { channel in
            let statuses = channel.sources.compactMap { cache.latest[$0.contentID] }
            let working = statuses.filter { !$0.failed }
            return ChannelGauge(channelID: channel.channel.id, bestScore: working.map(\.score.total).max() ?? 0,
                                ok: working.count, failed: statuses.count - working.count)
        }
    }

    // MARK: Changing

    /// Creates a channel; its id is the slug of its name, made unique with `-2`, `-3`, ...
    public func create(_ draft: ChannelDraft) async throws -> ChannelSnapshot {
        let name = draft.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty else { throw ChannelValidationError.emptyName }
        let sources = try Self.normalized(draft.sources)
        _ = try await loaded()
        let at = now()
        let record = ChannelRecord(id: ChannelSlug(name).value, name: name, groupTitle: Self.nonEmpty(draft.groupTitle),
                                   tvgID: Self.nonEmpty(draft.tvgID), logo: Self.nonEmpty(draft.logo), origin: draft.origin,
                                   dispatcharrChannelID: draft.dispatcharrChannelID, createdAt: at, updatedAt: at)
        let stored = try await store.createChannel(record, sources: sources)
        cache?.channels.append(stored)
        return snapshot(stored, cache!)
    }

    /// Applies `patch`; nil when there is no such channel.
    public func update(id: String, _ patch: ChannelPatch) async throws -> ChannelSnapshot? {
        _ = try await loaded()
        guard let index = cache?.channels.firstIndex(where: { $0.channel.id == id }), var stored = cache?.channels[index] else { return nil }
        if let name = patch.name {
            let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw ChannelValidationError.emptyName }
            stored.channel.name = trimmed
        }
        if let group = patch.groupTitle { stored.channel.groupTitle = Self.nonEmpty(group) }
        if let tvgID = patch.tvgID { stored.channel.tvgID = Self.nonEmpty(tvgID) }
        if let logo = patch.logo { stored.channel.logo = Self.nonEmpty(logo) }
        if let sources = patch.sources { stored.sources = try Self.normalized(sources) }
        stored.channel.updatedAt = now()
        guard try await store.updateChannel(stored.channel, sources: patch.sources == nil ? nil : stored.sources) else { return nil }
        // Re-find it: another call may have changed the list while the store wrote,
        // and a measurement meanwhile may have reordered the sources this patch left alone.
        guard let current = cache?.channels.firstIndex(where: { $0.channel.id == id }), let latest = cache?.channels[current] else { return nil }
        if patch.sources == nil { stored.sources = latest.sources }
        cache?.channels[current] = stored
        return snapshot(stored, cache!)
    }

    /// Deletes a channel; false when there is no such channel.
    public func delete(id: String) async throws -> Bool {
        _ = try await loaded()
        guard try await store.deleteChannel(id: id) else { return false }
        cache?.channels.removeAll { $0.channel.id == id }
        return true
    }

    /// Adds a playlist's channels: an entry joins the existing channel with its
    /// `tvg-id` (else the same name, case-folded) and adds its missing sources;
    /// other channels are created with origin `m3u`. Channels read from
    /// Dispatcharr are left to Dispatcharr. Infohash references are skipped: a
    /// source is a content id.
    public func importPlaylist(_ playlist: M3UImport) async throws -> ChannelImportSummary {
        _ = try await loaded()
        var summary = ChannelImportSummary()
        summary.skipped = playlist.skipped
        for entry in playlist.channels {
            var sources: [ChannelSourceRecord] = []
            for (reference, line) in zip(entry.sources, entry.sourceLines) {
                if reference.isInfohash {
                    summary.skipped.append(.init(line: line, reason: "an infohash, not a content id: channels take content ids"))
                } else {
                    sources.append(ChannelSourceRecord(contentID: reference.id))
                }
            }
            guard !sources.isEmpty else { continue }
            if let existing = matching(entry) {
                if existing.channel.origin == .dispatcharr {
                    for line in entry.sourceLines {
                        summary.skipped.append(.init(line: line, reason: "channel \(existing.channel.id) is managed by Dispatcharr"))
                    }
                    continue
                }
                let known = Set(existing.sources.map(\.contentID))
                let added = sources.filter { !known.contains($0.contentID) }
                var patch = ChannelPatch()
                if !added.isEmpty { patch.sources = existing.sources + added }
                if existing.channel.groupTitle == nil, let group = entry.groupTitle { patch.groupTitle = group }
                if existing.channel.logo == nil, let logo = entry.tvgLogo { patch.logo = logo }
                if existing.channel.tvgID == nil, let tvgID = entry.tvgID { patch.tvgID = tvgID }
                guard patch != ChannelPatch() else { continue }
                _ = try await update(id: existing.channel.id, patch)
                summary.channelsUpdated += 1
                summary.sourcesAdded += added.count
            } else {
                _ = try await create(ChannelDraft(name: entry.name, groupTitle: entry.groupTitle, tvgID: entry.tvgID,
                                                  logo: entry.tvgLogo, origin: .m3u, sources: sources))
                summary.channelsCreated += 1
                summary.sourcesAdded += sources.count
            }
        }
        summary.skipped.sort { $0.line < $1.line }
        return summary
    }

    // MARK: Measuring

    /// Every source of every channel once, with when it was last measured
    /// (seconds since 1970), for the prober.
    public func sourcesToMeasure() async -> [SourceDue] {
        guard let cache = try? await loaded() else { return [] }
        var seen: Set<String> = []
        var due: [SourceDue] = []
        for channel in cache.channels {
            for source in channel.sources where seen.insert(source.contentID).inserted {
                due.append(SourceDue(contentID: source.contentID, lastMeasuredAt: cache.latest[source.contentID]?.measuredAt.timeIntervalSince1970))
            }
        }
        return due
    }

    /// Scores and stores the measurement, reorders the channels holding the
    /// source, and calls the hooks for what really changed.
    public func record(contentID: String, measurement: SourceMeasurement) async {
        guard (try? await loaded()) != nil else {
            logger.warning("cannot load channels from the store; a measurement was dropped", metadata: ["channels.content": "\(contentID)"])
            return
        }
        let score = SourceScorer.score(measurement)
        let status = SourceStatus(score: score, measuredAt: now(), facts: measurement.facts, bitrateKbps: measurement.bitrateKbps)
        let result = score.failure?.rawValue ?? "ok"
        counters.withLock { $0.measurements[result, default: 0] += 1 }
        cache?.latest[contentID] = status

        var factsChanged = false
        if !status.failed, status.facts != StreamFacts() {
            factsChanged = cache?.lastWorkingFacts[contentID] != status.facts
            cache?.lastWorkingFacts[contentID] = status.facts
        }

        var changes: [(channelID: String, working: [String], failed: [String])] = []
        for index in cache?.channels.indices ?? 0..<0 {
            guard let channel = cache?.channels[index], channel.sources.contains(where: { $0.contentID == contentID }) else { continue }
            let entries = channel.sources.map { source in
                let latest = cache?.latest[source.contentID]
                return SourceOrdering.Entry(contentID: source.contentID, score: latest?.score.total, failed: latest?.failed ?? false)
            }
            let ordered = ordering.order(entries)
            guard ordered.map(\.contentID) != entries.map(\.contentID) else { continue }
            let byID = Dictionary(channel.sources.map { ($0.contentID, $0) }, uniquingKeysWith: { first, _ in first })
            cache?.channels[index].sources = ordered.compactMap { byID[$0.contentID] }
            changes.append((channel.channel.id, ordered.filter { !$0.failed }.map(\.contentID), ordered.filter(\.failed).map(\.contentID)))
        }
        if !changes.isEmpty { counters.withLock { $0.reorders += UInt64(changes.count) } }

        let record = Self.record(contentID: contentID, measurement: measurement, status: status)
        let orders = changes.map { (channelID: $0.channelID, contentIDs: $0.working + $0.failed) }
        await persist { [store, logger] in
            do {
                try await store.recordMeasurement(record)
                for order in orders {
                    try await store.replaceSourceOrder(channelID: order.channelID, contentIDs: order.contentIDs)
                }
            } catch {
                logger.warning("cannot store a source's score; it stays in memory", metadata: ["channels.reason": "\(error)"])
            }
        }

        let hooks = hooks.withLock { $0 }
        for change in changes {
            logger.info("channel reordered", metadata: ["channels.channel": "\(change.channelID)", "channels.first": "\(change.working.first ?? "-")"])
            hooks.orderChanged?(change.channelID, change.working, change.failed)
        }
        if factsChanged { hooks.factsChanged?(contentID, status.facts, status.bitrateKbps) }
    }

    // MARK: Internals

    /// Rebuilds what relay loops read: per channel, its sources in order without the failed ones.
    private func publishDirectory() {
        guard let cache else { return }
        let reported = reportedFailures.withLock { $0 }
        var sources: [String: [ContentKey]] = [:]
        for channel in cache.channels {
            sources[channel.channel.id] = channel.sources.compactMap { source in
                guard cache.latest[source.contentID]?.failed != true, !reported.contains(source.contentID) else { return nil }
                return ContentKey(kind: .contentID, value: source.contentID)
            }
        }
        directory.withLock { $0 = sources }
    }

    /// Loads the channels now, so `/ace/channel/{id}` knows them before anyone asked the API.
    public func warmUp() async {
        do { _ = try await loaded() } catch {
            logger.warning("cannot load channels from the store yet; channel playback answers 404 until it can", metadata: ["channels.reason": "\(error)"])
        }
    }

    private func loaded() async throws -> Cache {
        if let cache { return cache }
        if loading == nil {
            loading = Task { [store] in
                let channels = try await store.channels()
                let latest = try await store.latestMeasurements().mapValues(Self.status)
                let working = try await store.latestSuccessfulMeasurements().mapValues { Self.status($0).facts }
                return Cache(channels: channels, latest: latest, lastWorkingFacts: working)
            }
        }
        do {
            let fresh = try await loading!.value
            if cache == nil { cache = fresh }
            return cache!
        } catch {
            // Let the next call try again: the store may have been briefly locked.
            loading = nil
            throw error
        }
    }

    /// Runs `write` after every write queued before it, and waits for it.
    private func persist(_ write: @escaping @Sendable () async -> Void) async {
        let previous = writes
        let task = Task {
            await previous?.value
            await write()
        }
        writes = task
        await task.value
    }

    private func matching(_ entry: M3UImport.Channel) -> StoredChannel? {
        guard let channels = cache?.channels else { return nil }
        if let tvgID = entry.tvgID?.lowercased(), !tvgID.isEmpty,
           let found = channels.first(where: { $0.channel.tvgID?.lowercased() == tvgID }) {
            return found
        }
        // A channel made without a tvg-id is the same channel when the names agree.
        let name = entry.name.lowercased()
        return channels.first { $0.channel.tvgID == nil && $0.channel.name.lowercased() == name }
    }

    private func snapshot(_ stored: StoredChannel, _ cache: Cache) -> ChannelSnapshot {
        ChannelSnapshot(record: stored.channel, sources: stored.sources.map {
            SourceSnapshot(contentID: $0.contentID, dispatcharrStreamID: $0.dispatcharrStreamID, latest: cache.latest[$0.contentID])
        })
    }

    /// Content ids checked and lower-cased, the first of each kept.
    public static func normalized(_ sources: [ChannelSourceRecord]) throws(ChannelValidationError) -> [ChannelSourceRecord] {
        var seen: Set<String> = []
        var result: [ChannelSourceRecord] = []
        for source in sources {
            let text = source.contentID.trimmingCharacters(in: .whitespaces)
            guard let reference = AceStreamReference(id: text) else { throw .invalidContentID(source.contentID) }
            guard seen.insert(reference.id).inserted else { continue }
            result.append(ChannelSourceRecord(contentID: reference.id, dispatcharrStreamID: source.dispatcharrStreamID))
        }
        return result
    }

    private static func nonEmpty(_ text: String?) -> String? {
        guard let trimmed = text?.trimmingCharacters(in: .whitespacesAndNewlines), !trimmed.isEmpty else { return nil }
        return trimmed
    }

    private static func record(contentID: String, measurement m: SourceMeasurement, status: SourceStatus) -> SourceMeasurementRecord {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let components = (try? encoder.encode(status.score.components)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let facts = (try? encoder.encode(StoredStreamFacts(m.facts))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return SourceMeasurementRecord(
            contentID: contentID, measuredAt: status.measuredAt, score: status.score.total, components: components,
            failure: status.score.failure?.rawValue, facts: facts, timeToFirstByte: m.timeToFirstByte, measuredSeconds: m.measuredSeconds,
            stallSeconds: m.stallSeconds, continuityErrors: m.continuityErrors, nullPacketShare: m.nullPacketShare,
            bitrateKbps: m.bitrateKbps, peers: m.peers, speedDownKBps: m.speedDownKBps, speedUpKBps: m.speedUpKBps,
            liveposAdvancing: m.liveposAdvancing)
    }

    private static func status(_ record: SourceMeasurementRecord) -> SourceStatus {
        let decoder = JSONDecoder()
        let components = (try? decoder.decode(SourceScore.Components.self, from: Data(record.components.utf8))) ?? .init()
        let facts = (try? decoder.decode(StoredStreamFacts.self, from: Data(record.facts.utf8)))?.facts ?? StreamFacts()
        let score = SourceScore(total: record.score, components: components, failure: record.failure.flatMap(SourceFailure.init(rawValue:)))
        return SourceStatus(score: score, measuredAt: record.measuredAt, facts: facts, bitrateKbps: record.bitrateKbps)
    }
}
