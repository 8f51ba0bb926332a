import Channels
import EngineFleet
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Store
import StreamFacts
import Streams
import Testing
@testable import ControlAPI

/// The channel routes driven in-process: CRUD and its error shapes, the key on
/// writes, M3U import (body and URL, against a loopback server), score
/// history, `/channels.m3u`, `/modify_m3u`, and the channel metrics.
@Suite struct ChannelRouterTests {
    static let a = String(repeating: "a", count: 40)
    static let b = String(repeating: "b", count: 40)
    static let c = String(repeating: "c", count: 40)
    static let key: HTTPFields = [.authorization: "Bearer s3cret"]
    static let jsonKey: HTTPFields = [.authorization: "Bearer s3cret", .contentType: "application/json"]

    struct Rig {
        let plane: ControlPlane
        let channels: ChannelService
        let directory: String

        init(publicURL: String? = nil) throws {
            directory = TestDirectory.path("chroutes")
            let store = try Store(directory: directory)
            let logger = Logger(label: "test")
            let fleet = EngineFleet(maxStreamsPerEngine: 3, startupTimeout: 5, failureThreshold: 3, logger: logger)
            channels = ChannelService(store: store, logger: logger)
            plane = ControlPlane(fleet: fleet, provisioner: nil, store: store, relay: nil, metrics: MetricsExporter(),
                                 apiKey: "s3cret", version: "test", streamPort: { 8080 }, channels: channels,
                                 playlists: PlaylistSettings(publicURL: publicURL, fetchTimeout: .seconds(5)))
        }

        func run(_ test: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await Application(router: ControlServer.router(plane: plane)).test(.router, test)
        }
    }

    static func body(_ object: [String: Any]) -> ByteBuffer {
        ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
    }

    static func json(_ response: TestResponse) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
    }

    static func list(_ response: TestResponse) -> [[String: Any]]? {
        try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [[String: Any]]
    }

    static func text(_ response: TestResponse) -> String { String(buffer: response.body) }

    @Test func createReadUpdateDeleteUnderBothPrefixes() async throws {
        try await Rig().run { client in
            let created = try await client.execute(uri: "/channels", method: .post, headers: Self.jsonKey, body: Self.body([
                "name": "Sport 1", "group": "Sport", "tvg_id": "sport1.tv", "logo": "http://logo.example/s1.png",
                "sources": [Self.a.uppercased(), Self.b, Self.a],
            ]))
            #expect(created.status == .created)
            let channel = try #require(Self.json(created))
            #expect(channel["id"] as? String == "sport-1")
            #expect(channel["group"] as? String == "Sport")
            #expect(channel["tvg_id"] as? String == "sport1.tv")
            #expect(channel["origin"] as? String == "api")
            #expect(channel["dispatcharr_channel_id"] is NSNull)
            let sources = try #require(channel["sources"] as? [[String: Any]])
            #expect(sources.map { $0["content_id"] as? String } == [Self.a, Self.b], "lower-cased, duplicates dropped, in order")
            #expect(sources[0]["score"] is NSNull && sources[0]["reason"] is NSNull && sources[0]["last_measured_at"] is NSNull)
            let clash = try await client.execute(uri: "/api/v1/channels", method: .post, headers: Self.jsonKey, body: Self.body(["name": "Sport-1"]))
            #expect(Self.json(clash)?["id"] as? String == "sport-1-2")

            let all = try await client.execute(uri: "/channels", method: .get)
            #expect(Self.list(all)?.map { $0["id"] as? String } == ["sport-1", "sport-1-2"])
            let one = try await client.execute(uri: "/api/v1/channels/sport-1", method: .get)
            #expect(one.status == .ok)
            #expect(Self.json(one)?["name"] as? String == "Sport 1")

            let patched = try await client.execute(uri: "/channels/sport-1", method: .patch, headers: Self.jsonKey,
                                                   body: Self.body(["name": "Sport 1 HD", "sources": [Self.c, Self.a]]))
            #expect(patched.status == .ok)
            let after = try #require(Self.json(patched))
            #expect(after["name"] as? String == "Sport 1 HD")
            #expect(after["group"] as? String == "Sport", "fields not sent stay")
            #expect((after["sources"] as? [[String: Any]])?.map { $0["content_id"] as? String } == [Self.c, Self.a])

            let deleted = try await client.execute(uri: "/api/v1/channels/sport-1", method: .delete, headers: Self.key)
            #expect(deleted.status == .ok)
            let gone = try await client.execute(uri: "/channels/sport-1", method: .get)
            #expect(gone.status == .notFound)
            #expect(Self.json(gone)?["detail"] as? String == "no channel with id sport-1")
            let patchGone = try await client.execute(uri: "/channels/sport-1", method: .patch, headers: Self.jsonKey, body: Self.body(["name": "x"]))
            #expect(patchGone.status == .notFound)
            let deleteGone = try await client.execute(uri: "/channels/sport-1", method: .delete, headers: Self.key)
            #expect(deleteGone.status == .notFound)
        }
    }

    @Test func writesNeedTheKeyAndReadsDoNot() async throws {
        try await Rig().run { client in
            let missing = try await client.execute(uri: "/channels", method: .post, headers: [.contentType: "application/json"],
                                                   body: Self.body(["name": "X"]))
            #expect(missing.status == .unauthorized)
            #expect(Self.json(missing)?["detail"] as? String == "missing bearer token")
            let wrong = try await client.execute(uri: "/api/v1/channels/import", method: .post, headers: [.authorization: "Bearer no"],
                                                 body: ByteBuffer(string: "#EXTM3U\n"))
            #expect(wrong.status == .forbidden)
            #expect(Self.json(wrong)?["detail"] as? String == "invalid token")
            for (method, uri) in [(HTTPRequest.Method.patch, "/channels/x"), (.delete, "/channels/x")] {
                #expect(try await client.execute(uri: uri, method: method).status == .unauthorized)
            }
            for uri in ["/channels", "/api/v1/channels", "/channels.m3u", "/api/v1/channels.m3u"] {
                #expect(try await client.execute(uri: uri, method: .get).status == .ok, "\(uri) is open")
            }
        }
    }

    @Test func badBodiesAre400sNamingWhatWasWrong() async throws {
        try await Rig().run { client in
            let badID = try await client.execute(uri: "/channels", method: .post, headers: Self.jsonKey,
                                                 body: Self.body(["name": "X", "sources": [Self.a, "not-a-content-id"]]))
            #expect(badID.status == .badRequest)
            #expect((Self.json(badID)?["detail"] as? String)?.contains("not-a-content-id") == true)
            let noName = try await client.execute(uri: "/channels", method: .post, headers: Self.jsonKey, body: Self.body(["sources": []]))
            #expect(noName.status == .badRequest)
            #expect((Self.json(noName)?["detail"] as? String)?.contains("name") == true)
            let emptyName = try await client.execute(uri: "/channels", method: .post, headers: Self.jsonKey, body: Self.body(["name": " "]))
            #expect(emptyName.status == .badRequest)
            let notJSON = try await client.execute(uri: "/channels", method: .post, headers: Self.jsonKey, body: ByteBuffer(string: "{"))
            #expect(notJSON.status == .badRequest)
            #expect(try await client.execute(uri: "/channels", method: .get).body.readableBytes == 2, "nothing was created: []")
        }
    }

    @Test func anImportedBodyCreatesChannelsAndListsSkippedLines() async throws {
        let playlist = """
            #EXTM3U
            #EXTINF:-1 tvg-id="s1" group-title="Sport" tvg-logo="http://logo.example/s1.png",Sport 1
            acestream://\(Self.a)
            #EXTINF:-1 tvg-id="s1",Sport 1 (backup)
            http://192.168.1.5:6878/ace/getstream?content_id=\(Self.b)
            #EXTINF:-1,Broken
            acestream://1234
            #EXTINF:-1,Film
            http://127.0.0.1:6878/ace/getstream?id=\(Self.c)
            #EXTINF:-1,Web
            https://cdn.example/live.m3u8
            """
        try await Rig().run { client in
            let imported = try await client.execute(uri: "/channels/import", method: .post,
                                                    headers: [.authorization: "Bearer s3cret", .contentType: "audio/x-mpegurl"],
                                                    body: ByteBuffer(string: playlist))
            #expect(imported.status == .ok)
            let summary = try #require(Self.json(imported))
            #expect(summary["channels_created"] as? Int == 2)
            #expect(summary["channels_updated"] as? Int == 0)
            #expect(summary["sources_added"] as? Int == 3)
            let skipped = try #require(summary["skipped"] as? [[String: Any]])
            #expect(skipped.map { $0["line"] as? Int } == [7, 11])
            #expect((skipped.first?["reason"] as? String)?.contains("40 hex") == true)
            let sport = try #require(Self.json(try await client.execute(uri: "/channels/sport-1", method: .get)))
            #expect(sport["origin"] as? String == "m3u")
            #expect(sport["logo"] as? String == "http://logo.example/s1.png")
            #expect((sport["sources"] as? [[String: Any]])?.map { $0["content_id"] as? String } == [Self.a, Self.b])

            let again = try await client.execute(uri: "/channels/import", method: .post, headers: Self.key, body: ByteBuffer(string: playlist))
            #expect(Self.json(again)?["channels_created"] as? Int == 0)
            #expect(Self.json(again)?["sources_added"] as? Int == 0)

            let html = try await client.execute(uri: "/channels/import", method: .post, headers: Self.key,
                                                body: ByteBuffer(string: "\n<!DOCTYPE html>\n<html>"))
            #expect(html.status == .badRequest)
            #expect((Self.json(html)?["detail"] as? String)?.contains("line 2") == true)
        }
    }

    @Test func importByURLFetchesAndRefusesRedirectsOversizeAndOtherSchemes() async throws {
        let good = try PlaylistServer(text: "#EXTM3U\n#EXTINF:-1,News\nacestream://\(Self.a)\n")
        let moved = try PlaylistServer(status: 302, headers: ["Location: http://elsewhere.example/list.m3u"], text: "")
        let huge = try PlaylistServer(body: Array("#EXTM3U\n".utf8) + [UInt8](repeating: 0x23, count: 9 << 20))
        defer { good.stop(); moved.stop(); huge.stop() }
        try await Rig().run { client in
            func importing(_ url: String) async throws -> TestResponse {
                try await client.execute(uri: "/channels/import", method: .post, headers: Self.jsonKey, body: Self.body(["url": url]))
            }
            let fetched = try await importing(good.url)
            #expect(fetched.status == .ok)
            #expect(Self.json(fetched)?["channels_created"] as? Int == 1)
            let redirect = try await importing(moved.url)
            #expect(redirect.status == .badGateway)
            let redirectDetail = Self.json(redirect)?["detail"] as? String ?? ""
            #expect(redirectDetail.contains("http://elsewhere.example/list.m3u"), "\(redirectDetail)")
            let tooLarge = try await importing(huge.url)
            #expect(tooLarge.status == .badGateway)
            #expect((Self.json(tooLarge)?["detail"] as? String)?.contains("8 MiB") == true)
            let ftp = try await importing("ftp://127.0.0.1/list.m3u")
            #expect(ftp.status == .badRequest)
            #expect(moved.requests.load(ordering: .relaxed) == 1, "the redirect was not followed")
        }
    }

    @Test func scoresAndSourceStatusAfterMeasurements() async throws {
        let rig = try Rig()
        _ = try await rig.channels.create(ChannelDraft(name: "Sport 1", sources: [ChannelSourceRecord(contentID: Self.a), ChannelSourceRecord(contentID: Self.b)]))
        let hd = StreamFacts(videoCodec: .h264, width: 1280, height: 720, fps: 25, audioCodec: .aac, audioChannels: 2)
        await rig.channels.record(contentID: Self.b, measurement: SourceMeasurement(
            timeToFirstByte: 1, measuredSeconds: 20, bitrateKbps: 4000, peers: 25, speedDownKBps: 900, liveposAdvancing: true, facts: hd))
        await rig.channels.record(contentID: Self.a, measurement: SourceMeasurement(failure: .refused))
        try await rig.run { client in
            let channel = try #require(Self.json(try await client.execute(uri: "/channels/sport-1", method: .get)))
            let sources = try #require(channel["sources"] as? [[String: Any]])
            #expect(sources.map { $0["content_id"] as? String } == [Self.b, Self.a], "the working source first, the refused one last")
            let best = sources[0]
            #expect((best["score"] as? Int ?? 0) > 50)
            #expect((best["components"] as? [String: Any])?["start"] as? Double == 15)
            let facts = try #require(best["facts"] as? [String: Any])
            #expect(facts["video_codec"] as? String == "h264")
            #expect(facts["width"] as? Int == 1280 && facts["height"] as? Int == 720)
            #expect(facts["audio_codec"] as? String == "aac" && facts["audio_channels"] as? Int == 2)
            #expect(facts["bitrate_kbps"] as? Int == 4000)
            #expect(sources[1]["score"] as? Int == 0)
            #expect(sources[1]["reason"] as? String == "refused")

            let history = try #require(Self.list(try await client.execute(uri: "/api/v1/channels/sport-1/scores", method: .get)))
            #expect(history.map { $0["content_id"] as? String } == [Self.b, Self.a])
            #expect(history.allSatisfy { $0["measured_at"] is String })
            let future = try await client.execute(uri: "/channels/sport-1/scores?since=2099-01-01T00:00:00Z", method: .get)
            #expect(Self.list(future)?.isEmpty == true)
            let badSince = try await client.execute(uri: "/channels/sport-1/scores?since=yesterday", method: .get)
            #expect(badSince.status == .badRequest)
            #expect(try await client.execute(uri: "/channels/nope/scores", method: .get).status == .notFound)
        }
    }

    @Test func theChannelsPlaylistPointsAtTheStreamPortOfTheRequestsHost() async throws {
        let rig = try Rig()
        _ = try await rig.channels.create(ChannelDraft(name: "Sport 1", groupTitle: "Sport", tvgID: "s1.tv", logo: "http://logo.example/s1.png",
                                                       sources: [ChannelSourceRecord(contentID: Self.a), ChannelSourceRecord(contentID: Self.b)]))
        _ = try await rig.channels.create(ChannelDraft(name: "Empty"))
        try await rig.run { client in
            let response = try await client.execute(uri: "/channels.m3u", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "audio/x-mpegurl")
            let playlist = try M3UPlaylist(text: Self.text(response))
            #expect(playlist.entries.count == 1, "a channel without sources has nothing to play")
            let entry = try #require(playlist.entries.first)
            // The router test client always sends authority "localhost"; the port is the stream port, not the control port.
            #expect(entry.url == "http://localhost:8080/ace/channel/sport-1", "the channel itself, which fails over between its sources")
            #expect(entry.name == "Sport 1")
            #expect(entry.tvgID == "s1.tv")
            #expect(entry.groupTitle == "Sport")
            #expect(entry.tvgLogo == "http://logo.example/s1.png")
            let head = try await client.execute(uri: "/channels.m3u", method: .head)
            #expect(head.status == .ok)
            #expect(head.headers[.contentType] == "audio/x-mpegurl")
            #expect(head.body.readableBytes == 0)
        }
    }

    @Test func theChannelsPlaylistOffersTheHLSFormWithFormatHLS() async throws {
        let rig = try Rig()
        _ = try await rig.channels.create(ChannelDraft(name: "Sport 1", sources: [ChannelSourceRecord(contentID: Self.a)]))
        try await rig.run { client in
            let hls = try M3UPlaylist(text: Self.text(try await client.execute(uri: "/channels.m3u?format=hls", method: .get)))
            #expect(hls.entries.map(\.url) == ["http://localhost:8080/ace/channel/sport-1.m3u8"])
            let ts = try M3UPlaylist(text: Self.text(try await client.execute(uri: "/channels.m3u?format=ts", method: .get)))
            #expect(ts.entries.map(\.url) == ["http://localhost:8080/ace/channel/sport-1"], "anything but hls keeps the TS form")
        }
    }

    @Test func theChannelsPlaylistUsesThePublicURLWhenSet() async throws {
        let rig = try Rig(publicURL: "http://tv.example:9090/")
        _ = try await rig.channels.create(ChannelDraft(name: "News", sources: [ChannelSourceRecord(contentID: Self.c)]))
        try await rig.run { client in
            let playlist = try M3UPlaylist(text: Self.text(try await client.execute(uri: "/api/v1/channels.m3u", method: .get)))
            #expect(playlist.entries.map(\.url) == ["http://tv.example:9090/ace/channel/news"])
        }
    }

    @Test func modifyM3URewritesEngineURLsWithTheOrchestratorsErrors() async throws {
        let source = try PlaylistServer(text: """
            #EXTM3U
            #EXTINF:-1 tvg-logo="http://127.0.0.1:6878/logo.png",One
            acestream://\(Self.a)
            #EXTINF:-1,Two
            http://localhost:6878/ace/getstream?id=\(Self.b)
            #EXTINF:-1,Web
            https://cdn.example/live.m3u8

            """)
        let down = try PlaylistServer(status: 404, text: "no")
        defer { source.stop(); down.stop() }
        try await Rig().run { client in
            let url = source.url.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let rewritten = try await client.execute(uri: "/modify_m3u?m3u_url=\(url)&host=relay.lan&port=8080", method: .get)
            #expect(rewritten.status == .ok)
            #expect(rewritten.headers[.contentType] == "audio/x-mpegurl")
            let playlist = try M3UPlaylist(text: Self.text(rewritten))
            #expect(playlist.entries.map(\.url) == [
                "http://relay.lan:8080/ace/getstream?id=\(Self.a)",
                "http://relay.lan:8080/ace/getstream?id=\(Self.b)",
                "https://cdn.example/live.m3u8",
            ])
            #expect(playlist.entries.first?.tvgLogo == "http://relay.lan:8080/logo.png")
            let proxied = try await client.execute(uri: "/api/v1/modify_m3u?m3u_url=\(url)&host=relay.lan&port=8000&mode=proxy", method: .get)
            #expect(Self.text(proxied).contains("http://relay.lan:8000/proxy?url=https%3A%2F%2Fcdn.example%2Flive.m3u8"))

            let missing = try await client.execute(uri: "/modify_m3u?host=relay.lan", method: .get)
            #expect(missing.status.code == 422)
            let detail = Self.json(missing)?["detail"] as? [[String: Any]]
            #expect(detail?.map { ($0["loc"] as? [String])?.last } == ["m3u_url", "port"])
            #expect(detail?.first?["msg"] as? String == "Field required")
            func detail400(_ query: String) async throws -> String? {
                let response = try await client.execute(uri: "/modify_m3u?\(query)", method: .get)
                #expect(response.status == .badRequest)
                return Self.json(response)?["detail"] as? String
            }
            #expect(try await detail400("m3u_url=\(url)&host=relay.lan&port=8080&mode=hls") == "Parameter 'mode' must be 'default' or 'proxy'.")
            #expect(try await detail400("m3u_url=\(url)&host=relay.lan&port=80a") == "Parameter 'port' must be an integer.")
            #expect(try await detail400("m3u_url=\(url)&host=relay.lan&port=70000") == "Parameter 'port' out of range (1-65535).")
            #expect(try await detail400("m3u_url=\(url)&host=re_lay&port=80") == "Invalid 'host' parameter.")
            #expect(try await detail400("m3u_url=\(url)&host=relay.lan&port=80&timeout=0") == "Parameter 'timeout' must be a positive number.")
            let failed = try await detail400("m3u_url=\(down.url)&host=relay.lan&port=80")
            #expect(failed?.hasPrefix("Failed to download the M3U file.") == true)
            #expect(failed?.contains("404") == true)
        }
    }

    @Test func channelMetricsAreBoundedAndPassPromtool() async throws {
        let rig = try Rig()
        _ = try await rig.channels.create(ChannelDraft(name: "Sport 1", sources: [ChannelSourceRecord(contentID: Self.a), ChannelSourceRecord(contentID: Self.b)]))
        await rig.channels.record(contentID: Self.a, measurement: SourceMeasurement(
            timeToFirstByte: 1, measuredSeconds: 20, bitrateKbps: 8000, peers: 30, speedDownKBps: 1500, liveposAdvancing: true))
        await rig.channels.record(contentID: Self.b, measurement: SourceMeasurement(failure: .looping))
        let expectedBest = SourceScorer.score(SourceMeasurement(
            timeToFirstByte: 1, measuredSeconds: 20, bitrateKbps: 8000, peers: 30, speedDownKBps: 1500, liveposAdvancing: true)).total
        try await rig.run { client in
            let text = Self.text(try await client.execute(uri: "/metrics", method: .get))
            #expect(text.contains("acerelay_channel_best_score{channel=\"sport-1\"} \(expectedBest)"))
            #expect(text.contains("acerelay_channel_sources{channel=\"sport-1\",state=\"ok\"} 1"))
            #expect(text.contains("acerelay_channel_sources{channel=\"sport-1\",state=\"failed\"} 1"))
            #expect(text.contains("acerelay_channel_measurements_total{result=\"ok\"} 1"))
            #expect(text.contains("acerelay_channel_measurements_total{result=\"looping\"} 1"))
            #expect(text.contains("acerelay_channel_reorders_total 0"))
            #expect(!text.contains(Self.a), "no content id label")
            // A second scrape does not count the same measurements twice.
            let again = Self.text(try await client.execute(uri: "/metrics", method: .get))
            #expect(again.contains("acerelay_channel_measurements_total{result=\"ok\"} 1"))
            #expect(try Self.promtool(again) == 0)
            _ = try await client.execute(uri: "/channels/sport-1", method: .delete, headers: Self.key)
            let afterDelete = Self.text(try await client.execute(uri: "/metrics", method: .get))
            #expect(!afterDelete.contains("channel=\"sport-1\""), "a deleted channel's series go")
        }
    }

    /// `promtool check metrics` over `text`; its exit status.
    static func promtool(_ text: String) throws -> Int32 {
        let path = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("promtool is not installed at \(path)")
            return -1
        }
        let lint = try ChildProcess.run(path, ["check", "metrics"], input: Array(text.utf8))
        if lint.status != 0 { Issue.record("promtool: \(lint.output)") }
        return lint.status
    }
}
