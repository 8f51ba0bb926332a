import Dispatcharr
import Foundation
import Testing

/// The pure parts: settings, AceStream URLs, which channels are managed, the order pushed, stats merging.
@Suite struct PlanningTests {
    static let idA = "0123456789abcdef0123456789abcdef01234567"
    static let idB = "89abcdef0123456789abcdef0123456789abcdef"

    // MARK: Configuration

    @Test func noBaseURLMeansNotConfigured() throws {
        #expect(try DispatcharrConfiguration.fromEnvironment(["DISPATCHARR_USER": "u"]).get() == nil)
        #expect(try DispatcharrConfiguration.fromEnvironment(["DISPATCHARR_BASE_URL": " "]).get() == nil)
    }

    @Test func environmentWithStreamFlowNamesIsRead() throws {
        let configuration = try #require(try DispatcharrConfiguration.fromEnvironment([
            "DISPATCHARR_BASE_URL": "http://dispatcharr:9191/", "DISPATCHARR_USER": "admin", "DISPATCHARR_PASS": "s3cret",
            "DISPATCHARR_CHANNEL_GROUPS": " Sports, News ,,", "DISPATCHARR_SYNC_INTERVAL_S": "60", "DISPATCHARR_REORDER": "false",
        ]).get())
        #expect(configuration.baseURL == "http://dispatcharr:9191")
        #expect(configuration.authentication == .jwt(token: nil, user: "admin", password: "s3cret"))
        #expect(configuration.channelGroups == ["Sports", "News"])
        #expect(configuration.syncInterval == .seconds(60))
        #expect(configuration.reorder == false)
        #expect(!configuration.description.contains("s3cret"))
    }

    @Test func defaultsAndAPIKeyWinOverPasswords() throws {
        let configuration = try #require(try DispatcharrConfiguration.fromEnvironment([
            "DISPATCHARR_BASE_URL": "https://d.example", "DISPATCHARR_API_KEY": "key-123", "DISPATCHARR_USER": "admin",
        ]).get())
        #expect(configuration.authentication == .apiKey("key-123"))
        #expect(configuration.syncInterval == .seconds(300))
        #expect(configuration.reorder)
        #expect(configuration.channelGroups.isEmpty)
        #expect(!configuration.description.contains("key-123"))
        let token = try #require(try DispatcharrConfiguration.fromEnvironment([
            "DISPATCHARR_BASE_URL": "http://d:9191", "DISPATCHARR_TOKEN": "eyJtoken",
        ]).get())
        #expect(token.authentication == .jwt(token: "eyJtoken", user: nil, password: nil))
        #expect(!token.description.contains("eyJtoken"))
    }

    @Test func everyBadValueGetsItsOwnLine() {
        let result = DispatcharrConfiguration.fromEnvironment([
            "DISPATCHARR_BASE_URL": "ftp://d", "DISPATCHARR_USER": "admin",
            "DISPATCHARR_SYNC_INTERVAL_S": "soon", "DISPATCHARR_REORDER": "maybe", "DISPATCHARR_CHANNEL_GROUPS": ",",
        ])
        guard case .failure(let error) = result else { Issue.record("accepted \(result)"); return }
        #expect(error.problems.count == 5)
        #expect(error.problems.contains { $0.hasPrefix("DISPATCHARR_BASE_URL=ftp://d") })
        #expect(error.problems.contains { $0.hasPrefix("DISPATCHARR_USER is set but DISPATCHARR_PASS is not") })
        #expect(error.problems.contains { $0.hasPrefix("DISPATCHARR_SYNC_INTERVAL_S=soon") })
        #expect(error.problems.contains { $0.hasPrefix("DISPATCHARR_REORDER=maybe") })
        #expect(error.problems.contains { $0.hasPrefix("DISPATCHARR_CHANNEL_GROUPS=,") })
        #expect(!error.description.contains("\n\n"))
        guard case .failure(let none) = DispatcharrConfiguration.fromEnvironment(["DISPATCHARR_BASE_URL": "http://d:9191"]) else {
            Issue.record("no credentials accepted"); return
        }
        #expect(none.problems == ["DISPATCHARR_BASE_URL is set but no credentials are; set DISPATCHARR_API_KEY, DISPATCHARR_TOKEN, or DISPATCHARR_USER and DISPATCHARR_PASS"])
    }

    // MARK: AceStream URLs

    @Test func aceStreamURLsYieldTheirContentID() {
        let upper = Self.idA.uppercased()
        #expect(AceStreamURL.contentID(from: "acestream://\(Self.idA)") == Self.idA)
        #expect(AceStreamURL.contentID(from: "acestream://\(upper)") == Self.idA)
        #expect(AceStreamURL.contentID(from: "http://127.0.0.1:6878/ace/getstream?id=\(upper)") == Self.idA)
        #expect(AceStreamURL.contentID(from: "https://relay:8080/ace/getstream?content_id=\(Self.idB)&pid=1") == Self.idB)
        #expect(AceStreamURL.contentID(from: "http://h/ace/getstream?infohash=\(Self.idB)") == Self.idB)
        #expect(AceStreamURL.contentID(from: "http://h:6878/ace/manifest.m3u8?id=\(Self.idA)") == Self.idA)
        #expect(AceStreamURL.contentID(from: "  acestream://\(Self.idA)/ ") == Self.idA)
    }

    @Test func otherURLsYieldNothing() {
        #expect(AceStreamURL.contentID(from: "http://h/live/\(Self.idA).ts") == nil)
        #expect(AceStreamURL.contentID(from: "http://h/ace/getstream?id=\(Self.idA.dropLast())") == nil)
        #expect(AceStreamURL.contentID(from: "http://h/ace/getstream?id=\(Self.idA)0") == nil)
        #expect(AceStreamURL.contentID(from: "http://h/ace/getstream?other=\(Self.idA)") == nil)
        #expect(AceStreamURL.contentID(from: "acestream://zz23456789abcdef0123456789abcdef01234567") == nil)
        #expect(AceStreamURL.contentID(from: "rtmp://h/ace/getstream?id=\(Self.idA)") == nil)
        #expect(AceStreamURL.contentID(from: "") == nil)
    }

    // MARK: Managed channels

    @Test func channelsWithAnAceStreamAreManagedWithSourcesInOrder() {
        let streams = [
            DispatcharrStream(id: 1, name: "a", url: "acestream://\(Self.idA)"),
            DispatcharrStream(id: 2, name: "plain", url: "http://h/live.ts"),
            DispatcharrStream(id: 3, name: "b", url: "http://e:6878/ace/getstream?id=\(Self.idB)"),
            DispatcharrStream(id: 4, name: "plain2", url: "http://h/other.ts"),
        ]
        let channels = [
            DispatcharrChannel(id: 10, name: "Mixed", groupID: 1, tvgID: "mixed.tv", streamIDs: [2, 3, 99, 1]),
            DispatcharrChannel(id: 11, name: "Plain only", groupID: 1, streamIDs: [4]),
            DispatcharrChannel(id: 12, name: "Elsewhere", groupID: 2, streamIDs: [1]),
            DispatcharrChannel(id: 13, name: "No group", streamIDs: [3]),
        ]
        let groups = [DispatcharrGroup(id: 1, name: "Sports"), DispatcharrGroup(id: 2, name: "News")]
        let all = ManagedChannelPlan(channels: channels, streams: streams, groups: groups, groupFilter: []).channels
        #expect(all.map(\.id) == [10, 12, 13])
        #expect(all[0].sources == [.init(contentID: Self.idB, streamID: 3), .init(contentID: Self.idA, streamID: 1)])
        #expect(all[0].otherStreamIDs == [2, 99])
        #expect(all[0].groupName == "Sports")
        #expect(all[0].tvgID == "mixed.tv")
        let sports = ManagedChannelPlan(channels: channels, streams: streams, groups: groups, groupFilter: ["sports"]).channels
        #expect(sports.map(\.id) == [10])
    }

    // MARK: Stream order

    @Test func orderIsWorkingByScoreThenFailedThenOthersAsBefore() {
        // Current: others 7 and 8 around AceStream streams 1, 2, 3.
        let planned = StreamOrderPlan.streams(current: [7, 1, 2, 8, 3], ranked: [3, 1], failed: [2], others: [7, 8])
        #expect(planned == [3, 1, 2, 7, 8])
    }

    @Test func unchangedOrderPlansNoWrite() {
        #expect(StreamOrderPlan.streams(current: [3, 1, 2, 7], ranked: [3, 1], failed: [2], others: [7]) == nil)
        #expect(StreamOrderPlan.streams(current: [], ranked: [], failed: [], others: []) == nil)
    }

    @Test func unmeasuredGoBeforeFailedAndStrangersAndRepeatsAreDropped() {
        let planned = StreamOrderPlan.streams(current: [1, 2, 3, 4, 9], ranked: [4, 4, 42], failed: [1, 4], others: [9])
        // 4 ranked (once; also "failed" but ranked wins), 2 and 3 unmeasured, 1 failed, 9 other; 42 is not the channel's.
        #expect(planned == [4, 2, 3, 1, 9])
    }

    @Test func sharedContentIDsMoveTogether() {
        let channel = ManagedChannel(id: 1, name: "c", sources: [.init(contentID: Self.idA, streamID: 1),
                                                                  .init(contentID: Self.idB, streamID: 2),
                                                                  .init(contentID: Self.idA, streamID: 3)],
                                     otherStreamIDs: [4], streamIDs: [4, 1, 2, 3])
        #expect(channel.plannedStreamIDs(rankedContentIDs: [Self.idB.uppercased(), Self.idA], failedContentIDs: []) == [2, 1, 3, 4])
        #expect(channel.plannedStreamIDs(rankedContentIDs: [Self.idA], failedContentIDs: [Self.idB]) == [1, 3, 2, 4])
    }

    // MARK: stream_stats

    @Test func factsMergeKeepingOtherKeys() {
        let facts = DispatcharrStreamFacts(width: 1280, height: 720, fps: 25, videoCodec: "h264", audioCodec: "aac",
                                           audioChannels: 2, bitrateKbps: 3500)
        let current = JSONValue.object(["ace_peers": .int(7), "video_codec": .string("mpeg2video")])
        let merged = StreamStatsMerge.merged(current, with: facts.statsFields)
        #expect(merged == .object(["ace_peers": .int(7), "video_codec": .string("h264"), "resolution": .string("1280x720"),
                                   "source_fps": .double(25), "audio_codec": .string("aac"), "audio_channels": .int(2),
                                   "ffmpeg_output_bitrate": .int(3500)]))
        #expect(StreamStatsMerge.merged(.null, with: ["a": .int(1)]) == .object(["a": .int(1)]))
        #expect(StreamStatsMerge.merged(.string("x"), with: ["a": .int(1)]) == .object(["a": .int(1)]))
        #expect(DispatcharrStreamFacts(width: 1920).statsFields.isEmpty)
    }

    @Test func jsonValuesRoundTrip() throws {
        let text = #"{"a":[1,2.5,"x",null,true],"b":{"c":-3}}"#
        let value = try #require(JSONValue.parse(Array(text.utf8)))
        #expect(value["a"]?.arrayValue?.count == 5)
        #expect(value["b"]?["c"] == .int(-3))
        #expect(JSONValue.parse(value.encoded()) == value)
        #expect(JSONValue.parse(Array("<html>".utf8)) == nil)
        let written = JSONValue.object(["fps": .double(25), "kbps": .int(3500), "s": .string("a\"b\\c\n\u{1}é"), "x": .double(0.5)])
        #expect(String(decoding: written.encoded(), as: UTF8.self) == #"{"fps":25.0,"kbps":3500,"s":"a\"b\\c\n\u0001é","x":0.5}"#)
        #expect(JSONValue.parse(written.encoded()) == written)
        #expect(JSONValue.parse(Array(#" "\u00e9\ud83d\ude00\/" "#.utf8)) == .string("é😀/"))
        #expect(JSONValue.parse(Array("[1,]".utf8)) == nil)
        #expect(JSONValue.parse(Array("{} x".utf8)) == nil)
        #expect(JSONValue.parse(Array(String(repeating: "[", count: 500).utf8)) == nil)
        #expect(JSONValue.parse(Array("-0.5e2".utf8)) == .double(-50))
    }

    @Test func aUnicodeEscapeIsExactlyFourHexDigits() {
        #expect(JSONValue.parse(Array(#""\u00C9\u00e9""#.utf8)) == .string("Éé"))
        for bad in [#""\u+fff""#, #""\u-fff""#, #""\u fff""#, #""\u0fg0""#, #""\u0ff""#] {
            #expect(JSONValue.parse(Array(bad.utf8)) == nil, "\(bad)")
        }
    }
}
