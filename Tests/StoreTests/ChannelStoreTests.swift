import Foundation
import Testing
@testable import Store

/// Channels, their ordered sources and the score history, in a real SQLite file.
@Suite struct ChannelStoreTests {
    static let a = String(repeating: "a", count: 40)
    static let b = String(repeating: "b", count: 40)
    static let c = String(repeating: "c", count: 40)

    private func withStore(_ body: (Store, String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-channels-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await body(try Store(directory: directory), directory)
    }

    private func measurement(_ content: String, at: Date, score: Int, failure: String? = nil) -> SourceMeasurementRecord {
        SourceMeasurementRecord(contentID: content, measuredAt: at, score: score, components: "{\"start\":15}", failure: failure,
                                facts: "{\"height\":720}", timeToFirstByte: 1.5, measuredSeconds: 20, bitrateKbps: 4000, peers: 12)
    }

    @Test func aChannelAndItsSourceOrderSurviveReopening() async throws {
        try await withStore { store, directory in
            let created = try await store.createChannel(
                ChannelRecord(id: "sport-1", name: "Sport 1", groupTitle: "Sport", tvgID: "sport1.tv", origin: .api),
                sources: [ChannelSourceRecord(contentID: Self.a), ChannelSourceRecord(contentID: Self.b, dispatcharrStreamID: 7)])
            #expect(created.channel.id == "sport-1")
            try await store.replaceSourceOrder(channelID: "sport-1", contentIDs: [Self.b, Self.a])
            let reopened = try Store(directory: directory)
            let channel = try #require(try await reopened.channel(id: "sport-1"))
            #expect(channel.channel.name == "Sport 1")
            #expect(channel.channel.groupTitle == "Sport")
            #expect(channel.channel.origin == .api)
            #expect(channel.sources.map(\.contentID) == [Self.b, Self.a])
            #expect(channel.sources.first?.dispatcharrStreamID == 7)
        }
    }

    @Test func aClashingSlugGetsTheNextFreeSuffix() async throws {
        try await withStore { store, _ in
            let first = try await store.createChannel(ChannelRecord(id: "news", name: "News", origin: .api), sources: [])
            let second = try await store.createChannel(ChannelRecord(id: "news", name: "NEWS", origin: .m3u), sources: [])
            let third = try await store.createChannel(ChannelRecord(id: "news", name: "News!", origin: .api), sources: [])
            #expect([first, second, third].map(\.channel.id) == ["news", "news-2", "news-3"])
            #expect(try await store.channels().map(\.channel.id) == ["news", "news-2", "news-3"])
        }
    }

    @Test func updateReplacesSourcesAndDeleteRemovesThem() async throws {
        try await withStore { store, _ in
            var record = ChannelRecord(id: "one", name: "One", origin: .api)
            _ = try await store.createChannel(record, sources: [ChannelSourceRecord(contentID: Self.a)])
            record.name = "One HD"
            record.logo = "http://logo.example/one.png"
            #expect(try await store.updateChannel(record, sources: [ChannelSourceRecord(contentID: Self.c), ChannelSourceRecord(contentID: Self.a)]))
            let updated = try #require(try await store.channel(id: "one"))
            #expect(updated.channel.name == "One HD")
            #expect(updated.channel.logo == "http://logo.example/one.png")
            #expect(updated.sources.map(\.contentID) == [Self.c, Self.a])
            #expect(try await store.updateChannel(record, sources: nil))
            #expect(try await store.channel(id: "one")?.sources.count == 2, "nil sources leaves them")
            #expect(try await store.deleteChannel(id: "one"))
            #expect(try await store.deleteChannel(id: "one") == false)
            #expect(try await store.channel(id: "one") == nil)
            var ghost = record
            ghost.id = "ghost"
            #expect(try await store.updateChannel(ghost, sources: nil) == false)
        }
    }

    @Test func latestMeasurementPerContentAndHistorySince() async throws {
        try await withStore { store, _ in
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            try await store.recordMeasurement(measurement(Self.a, at: start, score: 70))
            try await store.recordMeasurement(measurement(Self.a, at: start.addingTimeInterval(300), score: 0, failure: "stalled"))
            try await store.recordMeasurement(measurement(Self.b, at: start.addingTimeInterval(100), score: 55))
            let latest = try await store.latestMeasurements()
            #expect(latest[Self.a]?.score == 0)
            #expect(latest[Self.a]?.failure == "stalled")
            #expect(latest[Self.b]?.score == 55)
            #expect(latest[Self.c] == nil)
            #expect(try await store.latestSuccessfulMeasurements()[Self.a]?.score == 70)
            let all = try await store.measurements(contentIDs: [Self.a, Self.b], since: nil)
            #expect(all.map(\.score) == [70, 55, 0], "oldest first")
            #expect(all.first?.timeToFirstByte == 1.5)
            #expect(all.first?.peers == 12)
            #expect(all.first?.components == "{\"start\":15}")
            let recent = try await store.measurements(contentIDs: [Self.a], since: start.addingTimeInterval(1))
            #expect(recent.map(\.score) == [0])
        }
    }

    @Test func retentionPrunesOldScoresButKeepsEachSourcesNewest() async throws {
        try await withStore { store, _ in
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            try await store.recordMeasurement(measurement(Self.a, at: now.addingTimeInterval(-7_200), score: 40))
            try await store.recordMeasurement(measurement(Self.a, at: now.addingTimeInterval(-60), score: 60))
            try await store.recordMeasurement(measurement(Self.b, at: now.addingTimeInterval(-9_000), score: 30))
            let pruned = try await store.prune(Store.Retention(samples: 3_600), now: now)
            #expect(pruned.measurements == 1)
            #expect(try await store.measurements(contentIDs: [Self.a], since: nil).map(\.score) == [60])
            #expect(try await store.measurements(contentIDs: [Self.b], since: nil).map(\.score) == [30],
                    "a source not measured again keeps its last score")
        }
    }
}
