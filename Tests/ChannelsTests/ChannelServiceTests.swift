import Channels
import Foundation
import Logging
import RelayCore
import Store
import StreamFacts
import Locking
import Testing

/// The channel service over a real store: scores stored, orders changed only
/// past the margin and persisted, hooks called exactly once per real change.
@Suite struct ChannelServiceTests {
    static let a = String(repeating: "a", count: 40)
    static let b = String(repeating: "b", count: 40)
    static let c = String(repeating: "c", count: 40)
    static let hd = StreamFacts(videoCodec: .h264, width: 1920, height: 1080, fps: 50, audioCodec: .aac, audioChannels: 2)
    static let sd = StreamFacts(videoCodec: .h264, width: 640, height: 360, fps: 25, audioCodec: .mp2, audioChannels: 2)

    /// Starts fast, flows, strong swarm, 1080p50.
    static func strong(peers: Int = 30, bitrate: Int = 8000, facts: StreamFacts = hd) -> SourceMeasurement {
        SourceMeasurement(timeToFirstByte: 1, measuredSeconds: 20, bitrateKbps: bitrate, peers: peers, speedDownKBps: 1500,
                          liveposAdvancing: true, facts: facts)
    }

    /// Slow to start, stalls, a thin swarm that cannot keep up, 360p.
    static let weak = SourceMeasurement(timeToFirstByte: 8, measuredSeconds: 20, stallSeconds: 4, bitrateKbps: 1500, peers: 2,
                                        speedDownKBps: 150, liveposAdvancing: false, facts: sd)

    /// What the hooks heard, in order.
    final class Heard: Sendable {
        struct Order: Equatable { var channel: String; var working: [String]; var failed: [String] }
        let orders = Locked<[Order]>([])
        let facts = Locked<[(String, StreamFacts, Int?)]>([])
        var orderCount: Int { orders.withLock { $0.count } }
        var factsCount: Int { facts.withLock { $0.count } }
    }

    struct Rig {
        let directory: String
        let store: Store
        let service: ChannelService
        let heard = Heard()

        init(margin: Int = 10) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-chsvc-\(UUID().uuidString)").path
            store = try Store(directory: directory)
            let clock = Locked(Date(timeIntervalSince1970: 1_800_000_000))
            service = ChannelService(store: store, margin: margin, logger: Logger(label: "test")) {
                clock.withLock { $0 = $0.addingTimeInterval(1); return $0 }
            }
            let heard = heard
            service.onOrderChanged { channel, working, failed in
                heard.orders.withLock { $0.append(.init(channel: channel, working: working, failed: failed)) }
            }
            service.onFactsChanged { content, facts, bitrate in heard.facts.withLock { $0.append((content, facts, bitrate)) } }
        }

        func channel(_ name: String, _ sources: [String]) async throws -> String {
            try await service.create(ChannelDraft(name: name, sources: sources.map { ChannelSourceRecord(contentID: $0) })).id
        }

        func order(_ id: String) async throws -> [String] {
            try await service.channel(id: id)?.sources.map(\.contentID) ?? []
        }

        func storedOrder(_ id: String) async throws -> [String] {
            try await store.channel(id: id)?.sources.map(\.contentID) ?? []
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }
    }

    @Test func aClearlyBetterSourceTakesFirstPlaceOnceAndStableScoresNeverCallTheHook() async throws {
        let rig = try Rig()
        defer { rig.cleanUp() }
        let id = try await rig.channel("Sport 1", [Self.a, Self.b])
        await rig.service.record(contentID: Self.a, measurement: Self.weak)
        #expect(try await rig.order(id) == [Self.a, Self.b], "the measured first keeps its place over an unmeasured source")
        #expect(rig.heard.orderCount == 0)
        await rig.service.record(contentID: Self.b, measurement: Self.strong())
        #expect(try await rig.order(id) == [Self.b, Self.a])
        #expect(try await rig.storedOrder(id) == [Self.b, Self.a], "the new order is persisted")
        #expect(rig.heard.orders.withLock { $0 } == [.init(channel: id, working: [Self.b, Self.a], failed: [])])
        for _ in 0..<5 {
            await rig.service.record(contentID: Self.a, measurement: Self.weak)
            await rig.service.record(contentID: Self.b, measurement: Self.strong())
        }
        #expect(rig.heard.orderCount == 1, "no hook while scores are stable")
        #expect(rig.service.counts.reorders == 1)
        #expect(rig.service.counts.measurements["ok"] == 12)
        let first = try #require(try await rig.service.channel(id: id)?.sources.first?.latest)
        #expect(first.score.total == SourceScorer.score(Self.strong()).total)
        #expect(first.facts == Self.hd)
    }

    @Test func concurrentMeasurementsLeaveTheStoredOrderEqualToTheServedOne() async throws {
        let rig = try Rig()
        defer { rig.cleanUp() }
        let id = try await rig.channel("Busy", [Self.a, Self.b, Self.c])
        await withTaskGroup(of: Void.self) { group in
            for round in 0..<30 {
                let (content, measurement) = [(Self.a, Self.weak), (Self.b, Self.strong()), (Self.c, SourceMeasurement(failure: .looping))][round % 3]
                group.addTask { await rig.service.record(contentID: content, measurement: measurement) }
            }
        }
        #expect(try await rig.order(id) == [Self.b, Self.a, Self.c])
        #expect(try await rig.storedOrder(id) == [Self.b, Self.a, Self.c])
        // c failing where it already is (last) changes no order, so the last report may predate it.
        #expect(rig.heard.orders.withLock { $0.last.map { $0.working + $0.failed } } == [Self.b, Self.a, Self.c])
        #expect(UInt64(rig.heard.orderCount) == rig.service.counts.reorders)
        #expect(try await rig.store.measurements(contentIDs: [Self.a, Self.b, Self.c], since: nil).count == 30)
    }

    @Test func aChallengerWithinTheMarginDoesNotSwap() async throws {
        let rig = try Rig(margin: 10)
        defer { rig.cleanUp() }
        let incumbent = Self.strong(peers: 10)
        let challenger = Self.strong(peers: 30)
        let gap = SourceScorer.score(challenger).total - SourceScorer.score(incumbent).total
        #expect(gap > 0 && gap < 10, "the fixture: a better challenger inside the margin")
        let id = try await rig.channel("News", [Self.a, Self.b])
        await rig.service.record(contentID: Self.a, measurement: incumbent)
        await rig.service.record(contentID: Self.b, measurement: challenger)
        await rig.service.record(contentID: Self.b, measurement: challenger)
        #expect(try await rig.order(id) == [Self.a, Self.b])
        #expect(rig.heard.orderCount == 0)
    }

    @Test func aFailedFirstSourceGoesLastAndTheHookListsItAsFailed() async throws {
        let rig = try Rig()
        defer { rig.cleanUp() }
        let id = try await rig.channel("Movies", [Self.a, Self.b, Self.c])
        await rig.service.record(contentID: Self.a, measurement: Self.strong())
        await rig.service.record(contentID: Self.b, measurement: Self.weak)
        await rig.service.record(contentID: Self.c, measurement: Self.weak)
        #expect(rig.heard.orderCount == 0)
        await rig.service.record(contentID: Self.a, measurement: SourceMeasurement(failure: .stalled, measuredSeconds: 12))
        #expect(try await rig.order(id) == [Self.b, Self.c, Self.a])
        #expect(try await rig.storedOrder(id) == [Self.b, Self.c, Self.a])
        #expect(rig.heard.orders.withLock { $0 } == [.init(channel: id, working: [Self.b, Self.c], failed: [Self.a])])
        let failed = try #require(try await rig.service.channel(id: id)?.sources.last?.latest)
        #expect(failed.score.total == 0)
        #expect(failed.score.failure == .stalled)
        #expect(rig.service.counts.measurements["stalled"] == 1)
        await rig.service.record(contentID: Self.a, measurement: SourceMeasurement(failure: .stalled, measuredSeconds: 12))
        #expect(rig.heard.orderCount == 1, "failing again changes nothing")
    }

    @Test func factsHookFiresOnlyWhenAWorkingSourcesFactsChange() async throws {
        let rig = try Rig()
        defer { rig.cleanUp() }
        _ = try await rig.channel("HD", [Self.a])
        await rig.service.record(contentID: Self.a, measurement: Self.strong(bitrate: 6887))
        #expect(rig.heard.factsCount == 1)
        #expect(rig.heard.facts.withLock { $0.first?.2 } == 6887)
        await rig.service.record(contentID: Self.a, measurement: Self.strong(bitrate: 6901))
        #expect(rig.heard.factsCount == 1, "bitrate alone moving is not a change")
        await rig.service.record(contentID: Self.a, measurement: SourceMeasurement(failure: .noData))
        #expect(rig.heard.factsCount == 1, "a failure tells nothing about the stream")
        await rig.service.record(contentID: Self.a, measurement: Self.strong(bitrate: 6890))
        #expect(rig.heard.factsCount == 1, "the same facts after a failure are not a change")
        let hd720 = StreamFacts(videoCodec: .h264, width: 1280, height: 720, fps: 25, audioCodec: .aac, audioChannels: 2)
        await rig.service.record(contentID: Self.a, measurement: Self.strong(facts: hd720))
        #expect(rig.heard.factsCount == 2)
        #expect(rig.heard.facts.withLock { $0.last?.1 } == hd720)
    }

    @Test func aNewServiceOverTheSameStoreSeesOrderScoresAndLastFacts() async throws {
        let rig = try Rig()
        defer { rig.cleanUp() }
        let id = try await rig.channel("Sport 2", [Self.a, Self.b])
        await rig.service.record(contentID: Self.a, measurement: Self.weak)
        await rig.service.record(contentID: Self.b, measurement: Self.strong())
        let reopened = ChannelService(store: try Store(directory: rig.directory), logger: Logger(label: "test"),
                                      now: { Date(timeIntervalSince1970: 1_900_000_000) })
        let heard = Heard()
        reopened.onFactsChanged { content, facts, bitrate in heard.facts.withLock { $0.append((content, facts, bitrate)) } }
        let channel = try #require(try await reopened.channel(id: id))
        #expect(channel.sources.map(\.contentID) == [Self.b, Self.a])
        #expect(channel.sources.first?.latest?.score.total == SourceScorer.score(Self.strong()).total)
        #expect(channel.sources.first?.latest?.facts == Self.hd)
        await reopened.record(contentID: Self.b, measurement: Self.strong())
        #expect(heard.factsCount == 0, "facts are compared with what was stored before the restart")
        let history = try #require(try await reopened.history(channelID: id, since: nil))
        #expect(history.map(\.contentID) == [Self.a, Self.b, Self.b])
    }

    @Test func sourcesToMeasureListsEachSourceOnceWithItsLastMeasurement() async throws {
        let rig = try Rig()
        defer { rig.cleanUp() }
        _ = try await rig.channel("One", [Self.a, Self.b])
        _ = try await rig.channel("Two", [Self.b, Self.c])
        await rig.service.record(contentID: Self.b, measurement: Self.strong())
        let due = await rig.service.sourcesToMeasure()
        // b, measured, moved ahead of the unmeasured a in channel One.
        #expect(due.map(\.contentID) == [Self.b, Self.a, Self.c])
        let byID = Dictionary(uniqueKeysWithValues: due.map { ($0.contentID, $0.lastMeasuredAt) })
        #expect(byID[Self.a] == .some(nil))
        #expect(byID[Self.c] == .some(nil))
        let measuredAt = try #require(byID[Self.b] ?? nil)
        #expect(measuredAt > 1_800_000_000)
    }

    @Test func createChecksIDsDropsDuplicatesAndMakesSlugsUnique() async throws {
        let rig = try Rig()
        defer { rig.cleanUp() }
        let upper = Self.a.uppercased()
        let first = try await rig.service.create(ChannelDraft(name: "Canal+ Sport", sources: [upper, Self.a, Self.b].map { ChannelSourceRecord(contentID: $0) }))
        #expect(first.id == "canal-sport")
        #expect(first.sources.map(\.contentID) == [Self.a, Self.b])
        #expect(first.sources.allSatisfy { $0.latest == nil })
        let second = try await rig.service.create(ChannelDraft(name: "Canal Sport"))
        #expect(second.id == "canal-sport-2")
        await #expect(throws: ChannelValidationError.invalidContentID("xyz")) {
            try await rig.service.create(ChannelDraft(name: "Bad", sources: [ChannelSourceRecord(contentID: "xyz")]))
        }
        await #expect(throws: ChannelValidationError.emptyName) { try await rig.service.create(ChannelDraft(name: "  ")) }
    }

    @Test func anImportJoinsExistingChannelsByTvgIDAndAddsOnlyNewSources() async throws {
        let rig = try Rig()
        defer { rig.cleanUp() }
        _ = try await rig.service.create(ChannelDraft(name: "Sport One", tvgID: "sport1", sources: [ChannelSourceRecord(contentID: Self.a)]))
        let text = """
            #EXTM3U
            #EXTINF:-1 tvg-id="sport1" group-title="Sport",Sport 1 HD
            acestream://\(Self.a)
            #EXTINF:-1 tvg-id="sport1",Sport 1 backup
            http://127.0.0.1:6878/ace/getstream?id=\(Self.b)
            #EXTINF:-1,Film
            acestream://\(Self.c)
            #EXTINF:-1,Web
            http://example.com/live.m3u8
            """
        let summary = try await rig.service.importPlaylist(try M3UImport(text: text))
        #expect(summary.channelsCreated == 1)
        #expect(summary.channelsUpdated == 1)
        #expect(summary.sourcesAdded == 2)
        #expect(summary.skipped.map(\.line) == [9])
        let sport = try #require(try await rig.service.channel(id: "sport-one"))
        #expect(sport.sources.map(\.contentID) == [Self.a, Self.b])
        #expect(sport.record.groupTitle == "Sport", "a missing group is filled in")
        let film = try #require(try await rig.service.channel(id: "film"))
        #expect(film.record.origin == .m3u)
        let again = try await rig.service.importPlaylist(try M3UImport(text: text))
        #expect(again.channelsCreated == 0 && again.channelsUpdated == 0 && again.sourcesAdded == 0)
    }
}

/// The channel service as the relay's `ChannelDirectory`: synchronous reads of the
/// current order, failures reported by channel players applied to the order.
@Suite struct ChannelDirectoryTests {
    typealias Rig = ChannelServiceTests.Rig
    static let a = ChannelServiceTests.a
    static let b = ChannelServiceTests.b
    static let c = ChannelServiceTests.c

    private func key(_ id: String) -> ContentKey { ContentKey(kind: .contentID, value: id)! }

    /// Waits for the service's asynchronous work to land; true once `condition` holds.
    private func settle(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<200 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await condition()
    }

    @Test func aReportedFailureLeavesTheSourceOutAtOnceAndScoresItZeroUntilItMeasuresWellAgain() async throws {
        let rig = try Rig()
        let id = try await rig.channel("Sport", [Self.a, Self.b, Self.c])
        #expect(rig.service.sources(ofChannel: id) == [key(Self.a), key(Self.b), key(Self.c)])
        #expect(rig.service.sources(ofChannel: "nope") == nil)

        rig.service.sourceFailed(key(Self.a), ofChannel: id, reason: .stalled)
        // Synchronously: the next player of the channel, on any relay loop, skips it.
        #expect(rig.service.sources(ofChannel: id) == [key(Self.b), key(Self.c)])
        // The hook runs once the store has the new order, after the served order changed.
        #expect(try await settle { rig.heard.orderCount > 0 })
        #expect(try await rig.service.channel(id: id)?.sources.last?.contentID == Self.a)
        let failed = try #require(try await rig.service.channel(id: id)?.sources.last?.latest)
        #expect(failed.score.total == 0)
        #expect(failed.score.failure == .stalled)
        #expect(rig.heard.orders.withLock { $0.last } == .init(channel: id, working: [Self.b, Self.c], failed: [Self.a]),
                "the order change reaches the Dispatcharr hook")

        // A probe measures it well: it is a candidate again, ranked by its score.
        await rig.service.record(contentID: Self.a, measurement: ChannelServiceTests.strong())
        #expect(rig.service.sources(ofChannel: id)?.contains(key(Self.a)) == true)
    }

    @Test func switchReasonsReadAsMeasurementFailures() {
        #expect(ChannelService.failure(.stalled) == .stalled)
        #expect(ChannelService.failure(.eof) == .stalled)
        #expect(ChannelService.failure(.looping) == .looping)
        #expect(ChannelService.failure(.engineLost) == .failedOver)
        #expect(ChannelService.failure(.hubFailed) == .failedOver)
    }
}
