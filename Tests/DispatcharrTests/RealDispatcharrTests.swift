import CurlHTTP
import Dispatcharr
import Foundation
import Logging
import Testing

/// The module against the real Dispatcharr backend: channels read, orders written and
/// read back, stream_stats merged, tokens refreshed, logins throttled. The server's own
/// access log counts what was sent. Serialized: they share one server and one login budget.
@Suite(.serialized, .realDispatcharr, .timeLimit(.minutes(10)))
struct RealDispatcharrTests {
    let http = HTTPClient(name: "test-real-cli")
    let logger = Logger(label: "test.dispatcharr.real")

    var server: RealDispatcharr {
        get throws { try #require(RealDispatcharr.current) }
    }

    func sync(groups: [String], reorder: Bool = true) throws -> DispatcharrSync {
        let configuration = DispatcharrConfiguration(baseURL: try server.baseURL, authentication: .apiKey(try server.apiKey),
                                                     channelGroups: groups, reorder: reorder)
        return DispatcharrSync(client: DispatcharrClient(configuration: configuration, http: http, logger: logger),
                               configuration: configuration, logger: logger,
                               retry: .init(initialDelay: .milliseconds(200), maxDelay: .seconds(1), maxAttempts: 3))
    }

    func client(_ authentication: DispatcharrConfiguration.Authentication) throws -> DispatcharrClient {
        DispatcharrClient(configuration: DispatcharrConfiguration(baseURL: try server.baseURL, authentication: authentication),
                          http: http, logger: logger)
    }

    @Test func channelsWithAceStreamsArePickedUpFromPlainAndPagedLists() async throws {
        let server = try server
        let other = "other-\(UUID().uuidString.prefix(8))"
        let group = try await server.createGroup(other)
        let plain = try await server.createStream(name: "plain", url: "http://127.0.0.1:9/live/plain.ts", group: group)
        let ace = try await server.createStream(name: "ace", url: "http://127.0.0.1:6878/ace/getstream?infohash=\(String(repeating: "ab", count: 20))", group: group)
        let mixed = try await server.createChannel(name: "Mixed", group: group, streams: [plain, ace])
        let plainOnly = try await server.createChannel(name: "Plain only", group: group, streams: [plain])

        let dispatcharr = try client(.apiKey(server.apiKey))
        var mark = try await server.logMark()
        let unpaged = try await dispatcharr.channels(pageSize: nil)
        let paged = try await dispatcharr.channels(pageSize: 1)
        #expect(unpaged.count >= 5)
        #expect(paged.map(\.id).sorted() == unpaged.map(\.id).sorted())
        #expect(paged.map(\.streamIDs) == paged.map { channel in unpaged.first { $0.id == channel.id }?.streamIDs ?? [] })
        // One request for the plain list, one per channel for pages of one.
        #expect(try await server.requests("GET", "/api/channels/channels/", status: 200, since: mark) == 1 + unpaged.count)

        let seeded = server.seedChannels
        let managed = try await sync(groups: [server.seedGroup]).syncOnce()
        #expect(Set(managed.map(\.id)) == Set(seeded.map(\.id)))
        for channel in seeded {
            let found = managed.first { $0.id == channel.id }
            #expect(found?.sources.map(\.contentID) == channel.contentIDs)
            #expect(found?.sources.map(\.streamID) == channel.streams)
            #expect(found?.groupName == server.seedGroup)
        }

        mark = try await server.logMark()
        let everything = try await sync(groups: []).syncOnce()
        let mixedChannel = everything.first { $0.id == mixed }
        #expect(mixedChannel?.sources.map(\.streamID) == [ace])
        #expect(mixedChannel?.otherStreamIDs == [plain])
        #expect(!everything.contains { $0.id == plainOnly })
        // groups, channels (pages of 500: one), streams by ids (one chunk).
        #expect(try await server.requests("GET", "/api/channels/streams/", status: 200, since: mark) == 1)
    }

    @Test func theOrderIsPushedAndReadBackWithExactlyOnePatchPerChange() async throws {
        let server = try server
        let name = "order-\(UUID().uuidString.prefix(8))"
        let group = try await server.createGroup(name)
        let ids = (0..<3).map { String(repeating: String(format: "%x", $0 + 1), count: 40) }
        let a = try await server.createStream(name: "a", url: "http://127.0.0.1:6878/ace/getstream?id=\(ids[0])", group: group)
        let b = try await server.createStream(name: "b", url: "http://127.0.0.1:6878/ace/getstream?content_id=\(ids[1])", group: group)
        let c = try await server.createStream(name: "c", url: "http://127.0.0.1:6878/ace/manifest.m3u8?id=\(ids[2])", group: group)
        let o1 = try await server.createStream(name: "o1", url: "http://127.0.0.1:9/o1.ts", group: group)
        let o2 = try await server.createStream(name: "o2", url: "http://127.0.0.1:9/o2.ts", group: group)
        let channel = try await server.createChannel(name: "Order", group: group, streams: [o1, a, b, o2, c])
        let path = "/api/channels/channels/\(channel)/"

        let sync = try sync(groups: [name])
        try await sync.syncOnce()
        #expect(sync.managedChannels.map(\.id) == [channel])
        let mark = try await server.logMark()
        #expect(sync.pushOrder(channelID: channel, rankedContentIDs: [ids[2], ids[0]], failedContentIDs: [ids[1]]) == .queued)
        await sync.waitForWrites()
        #expect(try await server.channelStreams(channel) == [c, a, b, o1, o2])
        #expect(try await server.requests("PATCH", path, status: 200, since: mark) == 1)

        // Stable scores: nothing written, before and after a re-sync.
        #expect(sync.pushOrder(channelID: channel, rankedContentIDs: [ids[2], ids[0]], failedContentIDs: [ids[1]]) == .unchanged)
        try await sync.syncOnce()
        #expect(sync.pushOrder(channelID: channel, rankedContentIDs: [ids[2], ids[0]], failedContentIDs: [ids[1]]) == .unchanged)
        await sync.waitForWrites()
        #expect(try await server.requests("PATCH", path, since: mark) == 1)

        // A real change: one more PATCH.
        #expect(sync.pushOrder(channelID: channel, rankedContentIDs: [ids[1], ids[2], ids[0]], failedContentIDs: []) == .queued)
        await sync.waitForWrites()
        #expect(try await server.channelStreams(channel) == [b, c, a, o1, o2])
        #expect(try await server.requests("PATCH", path, since: mark) == 2)
        #expect(sync.status.writesDone == 2 && sync.status.lastError == nil)

        // Duplicates never reach Dispatcharr (it answers them with a 500).
        let dispatcharr = try client(.apiKey(server.apiKey))
        await #expect(throws: DispatcharrError.self) { try await dispatcharr.setChannelStreams(channelID: channel, streamIDs: [a, a]) }
        #expect(try await server.requests("PATCH", path, since: mark) == 2)
    }

    @Test func streamStatsAreMergedAndWhatAnotherToolWroteSurvives() async throws {
        let server = try server
        let seeded = try #require(server.seedChannels.first)
        let (s0, s1, s2) = (seeded.streams[0], seeded.streams[1], seeded.streams[2])
        // Another tool's writes: an object, a string, and (s2) the initial null.
        try await server.call(.patch, "/api/channels/streams/\(s0)/", .object(["stream_stats": .object([
            "ace_peers": .int(7), "video_codec": .string("mpeg2video"), "note": .object(["by": .string("other tool")]),
        ])]))
        try await server.call(.patch, "/api/channels/streams/\(s1)/", .object(["stream_stats": .string("probe pending")]))

        let sync = try sync(groups: [server.seedGroup])
        try await sync.syncOnce()
        let facts = DispatcharrStreamFacts(width: 1280, height: 720, fps: 25, videoCodec: "h264", audioCodec: "aac",
                                           audioChannels: 2, bitrateKbps: 3500)
        for contentID in seeded.contentIDs {
            #expect(sync.pushFacts(contentID: contentID, facts: facts) == .queued)
        }
        await sync.waitForWrites()
        let written: [String: JSONValue] = ["resolution": .string("1280x720"), "source_fps": .double(25), "video_codec": .string("h264"),
                                            "audio_codec": .string("aac"), "audio_channels": .int(2), "ffmpeg_output_bitrate": .int(3500)]
        var expected = written
        expected["ace_peers"] = .int(7)
        expected["note"] = .object(["by": .string("other tool")])
        #expect(try await server.streamStats(s0) == .object(expected))
        #expect(try await server.streamStats(s1) == .object(written))
        #expect(try await server.streamStats(s2) == .object(written))

        let mark = try await server.logMark()
        #expect(sync.pushFacts(contentID: seeded.contentIDs[0], facts: facts) == .unchanged)
        await sync.waitForWrites()
        #expect(try await server.requests("PATCH", "/api/channels/streams/\(s0)/", since: mark) == 0)
    }

    /// One sequence because every login, failed or not, spends the same 3-a-minute budget.
    @Test func tokensAreRefreshedWrongPasswordsAreNotHammeredAndThrottlingIsHonoured() async throws {
        let server = try server
        let tokenPath = "/api/accounts/token/"

        // 1. Log in, let the access token expire, and read again: one refresh, no second login.
        var mark = try await server.logMark()
        let good = try client(.jwt(token: nil, user: server.user, password: server.password))
        _ = try await good.groups()
        try await Task.sleep(for: .seconds(RealDispatcharr.accessTokenSeconds + 1))
        _ = try await good.groups()
        #expect(try await server.requests("POST", tokenPath, since: mark) == 1)
        #expect(try await server.requests("POST", tokenPath + "refresh/", status: 200, since: mark) == 1)
        #expect(try await server.requests("GET", "/api/channels/groups/", status: 401, since: mark) == 1)
        #expect(try await server.requests("GET", "/api/channels/groups/", status: 200, since: mark) == 2)

        // 2. A wrong password: unauthorized every time, one login attempt in all.
        mark = try await server.logMark()
        let wrong = try client(.jwt(token: nil, user: server.user, password: "not-the-password"))
        for _ in 0..<3 {
            do {
                _ = try await wrong.channels()
                Issue.record("a wrong password was accepted")
            } catch {
                guard case .unauthorized(let detail) = error else { Issue.record("expected unauthorized, got \(error)"); continue }
                #expect(detail.contains("No active account found with the given credentials"))
            }
        }
        #expect(try await server.requests("POST", tokenPath, status: 401, since: mark) == 1)
        #expect(try await server.requests("POST", tokenPath, since: mark) == 1)

        // 3. Spend the rest of the budget until the real server throttles (429, Retry-After).
        var status = 0
        for _ in 0..<4 where status != 429 { status = try await server.rawLogin(password: "not-the-password") }
        #expect(status == 429)

        // 4. A new client's login meets the throttle: throttled with the server's Retry-After,
        //    and a second request within it sends nothing to the login endpoint.
        mark = try await server.logMark()
        let throttled = try client(.jwt(token: nil, user: server.user, password: server.password))
        var retryAfter = Duration.zero
        do {
            _ = try await throttled.channels()
            Issue.record("no throttle")
        } catch {
            guard case .throttled(let wait) = error else { Issue.record("expected throttled, got \(error)"); return }
            retryAfter = wait
        }
        #expect(retryAfter > .zero && retryAfter <= .seconds(60))
        await #expect {
            try await throttled.channels()
        } throws: { error in
            guard let error = error as? DispatcharrError, case .throttled(let wait) = error else { return false }
            return wait <= retryAfter
        }
        #expect(try await server.requests("POST", tokenPath, status: 429, since: mark) == 1)
        #expect(try await server.requests("POST", tokenPath, since: mark) == 1)
        #expect(try await server.requests("GET", "/api/channels/channels/", since: mark) == 0)
    }
}
