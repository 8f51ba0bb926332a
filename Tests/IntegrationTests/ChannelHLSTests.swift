import EngineSimulator
import Foundation
import Testing
@testable import RelayCore

/// `/ace/channel/{id}.m3u8` against two engine simulators: one live playlist
/// across the channel's sources, with a discontinuity where the source changed.
@Suite(.serialized) struct ChannelHLSTests {
    static let a = ContentKey(kind: .contentID, value: RelayHarness.contentID(0xE1))!
    static let b = ContentKey(kind: .contentID, value: RelayHarness.contentID(0xE2))!
    static let path = "/ace/channel/sport.m3u8"

    private func engine(of key: ContentKey, in harness: RelayHarness) -> EngineSimulator? {
        guard let url = harness.hub(key.value)?.engine else { return nil }
        return harness.engines.first { url.hasSuffix(":\($0.port)") }
    }

    /// Every playlist read, checked as it comes: it follows the rules, its media
    /// sequence never goes back, and a number always names the same segment.
    final class Reader {
        let port: UInt16
        private(set) var latest = ParsedPlaylist("")
        private(set) var problems: [String] = []
        private var seen: [UInt64: String] = [:]
        private var lastSequence: UInt64 = 0

        init(port: UInt16) { self.port = port }

        @discardableResult
        func read() throws -> ParsedPlaylist {
            let fetched = try HLSFetch(port: port, ChannelHLSTests.path)
            guard fetched.status == 200 else {
                problems.append("status \(fetched.status): \(fetched.text)")
                return latest
            }
            let playlist = ParsedPlaylist(fetched.text)
            problems += playlist.problems
            if playlist.mediaSequence < lastSequence { problems.append("media sequence went back: \(lastSequence) → \(playlist.mediaSequence)") }
            lastSequence = playlist.mediaSequence
            for (i, segment) in playlist.segments.enumerated() {
                let n = playlist.mediaSequence + UInt64(i)
                if let earlier = seen[n], earlier != segment.uri { problems.append("segment \(n) was \(earlier), now \(segment.uri)") }
                seen[n] = segment.uri
            }
            latest = playlist
            return playlist
        }
    }

    private func isOf(_ key: ContentKey, _ uri: String) -> Bool { uri.hasPrefix("/ace/hls/id/\(key.value)/") }

    @Test func aChannelPlaylistSurvivesItsSourcesEngineDyingWithADiscontinuity() throws {
        let channels = TestChannels(["sport": [Self.a, Self.b]])
        let harness = try RelayHarness(engineCount: 2, channels: channels) { relay in
            relay.hlsSegmentSeconds = 1
            relay.hlsWindow = 4
            relay.channelWarmStandby = false
        }
        defer { harness.stop() }
        let first = try HLSFetch(port: harness.port, Self.path)
        #expect(first.status == 200, "\(first.text)")
        #expect(first.headers["content-type"] == "application/vnd.apple.mpegurl")
        #expect(first.headers["access-control-allow-origin"] == "*")
        #expect(first.headers["cache-control"] == "no-cache")
        let reader = Reader(port: harness.port)
        #expect(eventually(timeout: 20) { ((try? reader.read())?.segments.count ?? 0) >= 3 })
        #expect(reader.latest.segments.allSatisfy { isOf(Self.a, $0.uri) && !$0.discontinuity })
        for segment in reader.latest.segments {
            let fetched = try HLSFetch(port: harness.port, segment.uri)
            #expect(fetched.status == 200 && fetched.headers["content-type"] == "video/mp2t")
            #expect(SegmentCheck(fetched.body).startsWithPAT, "\(segment.uri)")
        }
        let before = reader.latest.mediaSequence
        // The playing source's engine dies: the playlist goes on with the second source.
        try #require(engine(of: Self.a, in: harness)).setFault(.die)
        #expect(eventually(timeout: 30) {
            _ = try? reader.read()
            return reader.latest.segments.filter { isOf(Self.b, $0.uri) }.count >= 2
        }, "\(reader.latest.segments.map(\.uri))")
        let segments = reader.latest.segments
        let firstOfB = try #require(segments.firstIndex { isOf(Self.b, $0.uri) })
        #expect(segments[firstOfB].discontinuity, "the first segment of the new source is marked")
        #expect(segments[firstOfB...].allSatisfy { isOf(Self.b, $0.uri) })
        #expect(reader.latest.mediaSequence >= before)
        for segment in segments[firstOfB...] {
            let fetched = try HLSFetch(port: harness.port, segment.uri)
            #expect(fetched.status == 200)
            #expect(SegmentCheck(fetched.body).startsWithPAT, "\(segment.uri)")
        }
        // Once the first source's segments left the window, the discontinuity is counted.
        #expect(eventually(timeout: 20) {
            _ = try? reader.read()
            return reader.latest.segments.allSatisfy { isOf(Self.b, $0.uri) && !$0.discontinuity }
        })
        #expect(reader.latest.discontinuitySequence == 1)
        #expect(reader.problems.isEmpty, "\(reader.problems)")
        #expect(channels.reports.map(\.source) == [Self.a])
        #expect(harness.relay.channelPlayback("sport")?.switches == 1)
        #expect(harness.relay.channelPlayback("sport")?.playingSource == Self.b.value)
    }

    // A stall, not a kill: with two engines the hub of a killed engine reopens on the
    // other one between ffmpeg's playlist reloads, and then the source has not failed.
    @Test func ffmpegKeepsDecodingTheChannelPlaylistAcrossAStalledSource() throws {
        let media = try #require(RealPlayerTests.media, "ffmpeg must be installed to make the test media (apt-get install ffmpeg)")
        let channels = TestChannels(["sport": [Self.a, Self.b]])
        let harness = try RelayHarness(engineCount: 2, media: .file(media), channels: channels) { relay in
            relay.hlsSegmentSeconds = 1
            relay.hlsWindow = 4
            relay.channelFailoverAfter = 1.5
        }
        defer { harness.stop() }
        let ffmpeg = try DecodingPlayer(url: "http://127.0.0.1:\(harness.port)\(Self.path)", seconds: 120)
        defer { ffmpeg.stop() }
        #expect(eventually(timeout: 20) { ffmpeg.decodedFrames > 50 }, "\(ffmpeg.errors)")
        try #require(engine(of: Self.a, in: harness)).setFault(.stall(seconds: 120), for: Self.a.value)
        let framesAtStall = ffmpeg.decodedFrames
        #expect(eventually(timeout: 20) { (harness.hub(Self.b.value)?.hlsSegmentRequests ?? 0) >= 3 }, "ffmpeg fetches the second source's segments; \(ffmpeg.decodedFrames) frames, ffmpeg \(ffmpeg.isRunning ? "running" : "exited"): \(ffmpeg.errors)")
        // About 6 s of video decoded after the stall (25 fps), with ffmpeg still running.
        #expect(eventually(timeout: 20) { ffmpeg.decodedFrames > framesAtStall + 150 }, "\(ffmpeg.decodedFrames) frames; \(ffmpeg.errors)")
        #expect(ffmpeg.isRunning, "\(ffmpeg.errors)")
        #expect(harness.relay.channelPlayback("sport")?.playingSource == Self.b.value)
    }

    @Test func unknownChannelsAre404AndAChannelWithNoSourceIs503() throws {
        let channels = TestChannels(["sport": [Self.a], "empty": []])
        let harness = try RelayHarness(channels: channels)
        defer { harness.stop() }
        let unknown = try HLSFetch(port: harness.port, "/ace/channel/nope.m3u8")
        #expect(unknown.status == 404 && unknown.text.contains("unknown_channel"))
        #expect(try HLSFetch(port: harness.port, "/ace/channel/nope.m3u8", method: "HEAD").status == 404)
        let empty = try HLSFetch(port: harness.port, "/ace/channel/empty.m3u8")
        #expect(empty.status == 503 && empty.text.contains("no_working_source"))
        #expect(empty.headers["retry-after"] != nil)
        let head = try HLSFetch(port: harness.port, Self.path, method: "HEAD")
        #expect(head.status == 200 && head.headers["content-type"] == "application/vnd.apple.mpegurl")
        #expect(harness.hub(Self.a.value) == nil, "HEAD opens no engine session")
    }
}
