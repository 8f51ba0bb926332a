import Foundation
import Testing
@testable import Store

@Suite struct StoreTests {
    private func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-store-\(UUID().uuidString)").path
        return path
    }

    @Test func opensInWALModeAndMigrates() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(directory: directory)
        #expect(try await store.journalMode() == "wal")
        #expect(try await store.synchronousMode() == 1, "NORMAL: WAL commits are not each synced")
        #expect(FileManager.default.fileExists(atPath: store.path))
    }

    @Test func engineStreamsAndSettingsSurviveReopening() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let store = try Store(directory: directory)
            try await store.saveEngine(EngineRecord(containerID: "abc", containerName: "acestream-1", host: "127.0.0.1", port: 19001,
                                                    apiPort: 19002, labels: ["acestream.http_port": "6878"], managed: true))
            try await store.saveStream(StreamRecord(id: "k|s1", keyType: "content_id", key: "k", containerID: "abc", playbackSessionID: "s1"))
            try await store.saveStream(StreamRecord(id: "k|s2", keyType: "content_id", key: "k", containerID: "abc", playbackSessionID: "s2"))
            #expect(try await store.endStream(id: "k|s1", reason: "done")?.status == .ended)
            try await store.setSetting("loop", to: ["threshold": 120])
            try await store.record(EventRecord(kind: "engine_provisioned", message: "started acestream-1", containerID: "abc"))
        }
        let reopened = try Store(directory: directory)
        let engines = try await reopened.engines()
        #expect(engines.count == 1)
        #expect(engines.first?.labels["acestream.http_port"] == "6878")
        #expect(engines.first?.apiPort == 19002)
        #expect(try await reopened.streams(status: .started).map(\.id) == ["k|s2"])
        #expect(try await reopened.streams(status: .ended).first?.endReason == "done")
        #expect(try await reopened.streams(containerID: "other").isEmpty)
        #expect(try await reopened.setting("loop", as: [String: Int].self) == ["threshold": 120])
        #expect(try await reopened.events().first?.kind == "engine_provisioned")
        #expect(try await reopened.endStreams(containerID: "abc", reason: "engine removed") == 1)
        #expect(try await reopened.endStream(id: "missing", reason: nil) == nil)
    }

    struct Sample: Codable, Sendable, Equatable { var at: Date; var peers: Int }

    @Test func samplesKeepTheirOrderTheLatestAndTheRetention() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(directory: directory)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for i in 0..<5 {
            let at = start.addingTimeInterval(Double(i))
            try await store.saveSample(streamID: "a", at: at, Sample(at: at, peers: i))
        }
        try await store.saveSample(streamID: "b", at: start, Sample(at: start, peers: 42))
        #expect(try await store.samples(streamID: "a", since: nil, as: Sample.self).map(\.peers) == [0, 1, 2, 3, 4])
        #expect(try await store.samples(streamID: "a", since: start.addingTimeInterval(3), as: Sample.self).map(\.peers) == [3, 4])
        let latest = try await store.latestSamples(streamIDs: ["a", "b", "c"], as: Sample.self)
        #expect(latest["a"]?.peers == 4)
        #expect(latest["b"]?.peers == 42)
        #expect(latest["c"] == nil)
        #expect(try await store.pruneSamples(before: start.addingTimeInterval(2)) == 3)
        #expect(try await store.samples(streamID: "a", since: nil, as: Sample.self).map(\.peers) == [2, 3, 4])
    }

    @Test func aRetentionPassDeletesOldEventsAndSamplesOnly() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(directory: directory)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.record(EventRecord(at: now.addingTimeInterval(-8 * 86_400), kind: "engine_provisioned", message: "old"))
        try await store.record(EventRecord(at: now.addingTimeInterval(-60), kind: "engine_healthy", message: "new"))
        try await store.saveSample(streamID: "a", at: now.addingTimeInterval(-7_200), Sample(at: now, peers: 1))
        try await store.saveSample(streamID: "a", at: now.addingTimeInterval(-10), Sample(at: now, peers: 2))
        let pruned = try await store.prune(Store.Retention(samples: 3_600, events: 7 * 86_400), now: now)
        #expect(pruned.events == 1)
        #expect(pruned.samples == 1)
        #expect(try await store.events().map(\.message) == ["new"])
        #expect(try await store.samples(streamID: "a", since: nil, as: Sample.self).map(\.peers) == [2])
    }

    @Test func aRetentionPassDeletesLongEndedStreamsButKeepsEachEnginesNewest() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(directory: directory)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        // Churn: 200 sessions on engine "e" that ended two hours ago, one still playing.
        for i in 0..<200 {
            let started = now.addingTimeInterval(-10_000 + Double(i))
            try await store.saveStream(StreamRecord(id: "old|\(i)", keyType: "content_id", key: "old", containerID: "e", playbackSessionID: "\(i)",
                                                    startedAt: started, endedAt: started.addingTimeInterval(60), status: .ended))
        }
        try await store.saveStream(StreamRecord(id: "recent|1", keyType: "content_id", key: "recent", containerID: "e", playbackSessionID: "1",
                                                startedAt: now.addingTimeInterval(-600), endedAt: now.addingTimeInterval(-60), status: .ended))
        try await store.saveStream(StreamRecord(id: "live|1", keyType: "content_id", key: "live", containerID: "e", playbackSessionID: "1",
                                                startedAt: now.addingTimeInterval(-20_000)))
        // An engine idle for hours keeps its newest stream: it says when the engine last streamed.
        try await store.saveStream(StreamRecord(id: "idle|1", keyType: "content_id", key: "idle", containerID: "idle-engine", playbackSessionID: "1",
                                                startedAt: now.addingTimeInterval(-9_000), endedAt: now.addingTimeInterval(-8_000), status: .ended))
        #expect(try await store.streamCount() == 203)
        let pruned = try await store.prune(Store.Retention(samples: 3_600), now: now)
        #expect(pruned.streams == 200)
        #expect(Set(try await store.streams().map(\.id)) == ["recent|1", "live|1", "idle|1"])
        #expect(try await store.streamCount(status: .started) == 1)
        #expect(try await store.lastStreamStarts()["idle-engine"] != nil)
    }

    @Test func statusAndOriginAreStoredAsTheOrchestratorsWords() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(directory: directory)
        let id = StreamRecord.streamID(key: "k", playbackSessionID: "s")
        #expect(id == "k|s")
        try await store.saveStream(StreamRecord(id: id, keyType: "content_id", key: "k", containerID: "e", playbackSessionID: "s", origin: .external))
        try await store.saveStream(StreamRecord(id: "k|r", keyType: "content_id", key: "k", containerID: "e", playbackSessionID: "r"))
        #expect(try await store.endRelayStreamsAfterRestart() == 1, "only the relay's own")
        #expect(try await store.stream(id: id)?.origin == .external)
        #expect(try await store.streams(status: .started).map(\.id) == [id])
        let starts = try await store.lastStreamStarts()
        #expect(starts["e"] != nil)
        #expect(starts["other"] == nil)
    }

    @Test func anUnwritableDataDirectoryIsAClearError() throws {
        // A regular file where the directory should be: creating the directory fails.
        let file = temporaryDirectory()
        FileManager.default.createFile(atPath: file, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect {
            _ = try Store(directory: file + "/data")
        } throws: { error in
            "\(error)".contains("--data-dir")
        }
    }

    @Test func theStreamListingReadPageByPageIsTheWholeListingInItsOrder() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(directory: directory)
        // 23 streams in 9 distinct start times: pages of 4 split runs of equal starts.
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        for n in 0..<23 {
            let container = n % 3 == 0 ? "b" : "a"
            try await store.saveStream(StreamRecord(id: "k\(n)|s", keyType: "content_id", key: "k\(n)", containerID: container,
                                                    playbackSessionID: "s", startedAt: base.addingTimeInterval(Double(n / 3)),
                                                    status: n % 2 == 0 ? .ended : .started))
        }
        func paged(status: StreamStatus? = nil, containerID: String? = nil, limit: Int) async throws -> [String] {
            var ids: [String] = []
            var cursor: StreamListCursor?
            while true {
                let page = try await store.streams(status: status, containerID: containerID, after: cursor, limit: limit)
                #expect(page.count <= limit)
                ids += page.map(\.id)
                guard page.count == limit, let last = page.last else { return ids }
                cursor = StreamListCursor(after: last)
            }
        }
        let whole = try await store.streams().map(\.id)
        #expect(whole.count == 23)
        for limit in [1, 4, 23, 200] {
            #expect(try await paged(limit: limit) == whole, "pages of \(limit)")
        }
        #expect(try await paged(status: .ended, limit: 4) == (try await store.streams(status: .ended).map(\.id)))
        #expect(try await paged(status: .started, containerID: "b", limit: 2) == (try await store.streams(status: .started, containerID: "b").map(\.id)))
        #expect(try await paged(containerID: "none", limit: 4).isEmpty)
        // Newest first, ties broken by id, so a page boundary inside a run of equal starts loses nothing.
        #expect(whole.first == "k22|s")
        #expect(Array(whole.prefix(3)) == ["k22|s", "k21|s", "k20|s"])
    }
}
