import EngineSimulator
import Foundation
import Testing
@testable import RelayCore

/// Reads a playlist back line by line and checks RFC 8216's live-playlist rules.
struct ParsedPlaylist {
    var targetDuration = 0
    var mediaSequence: UInt64 = 0
    var discontinuitySequence: UInt64 = 0
    var version = 0
    var segments: [(uri: String, duration: Double, discontinuity: Bool)] = []
    var hasEndList = false
    var problems: [String] = []

    init(_ text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.first != "#EXTM3U" { problems.append("first line is not #EXTM3U") }
        var duration: Double?
        var discontinuity = false
        for line in lines.dropFirst() where !line.isEmpty {
            if line.hasPrefix("#EXT-X-VERSION:") { version = Int(line.dropFirst(15)) ?? -1 }
            else if line.hasPrefix("#EXT-X-TARGETDURATION:") { targetDuration = Int(line.dropFirst(22)) ?? -1 }
            else if line.hasPrefix("#EXT-X-MEDIA-SEQUENCE:") { mediaSequence = UInt64(line.dropFirst(22)) ?? 0 }
            else if line.hasPrefix("#EXT-X-DISCONTINUITY-SEQUENCE:") { discontinuitySequence = UInt64(line.dropFirst(30)) ?? 0 }
            else if line == "#EXT-X-DISCONTINUITY" { discontinuity = true }
            else if line == "#EXT-X-ENDLIST" { hasEndList = true }
            else if line.hasPrefix("#EXTINF:") {
                duration = Double(line.dropFirst(8).split(separator: ",", omittingEmptySubsequences: false)[0])
                if duration == nil { problems.append("bad EXTINF: \(line)") }
            } else if line.hasPrefix("#") {
                problems.append("unknown tag \(line)")
            } else {
                guard let d = duration else { problems.append("URI without EXTINF: \(line)"); continue }
                segments.append((line, d, discontinuity))
                duration = nil
                discontinuity = false
            }
        }
        if version != 3 { problems.append("version \(version)") }
        if targetDuration <= 0 { problems.append("no target duration") }
        for s in segments where Int(s.duration.rounded()) > targetDuration {
            problems.append("EXTINF \(s.duration) over target \(targetDuration)")
        }
        if hasEndList { problems.append("EXT-X-ENDLIST in a live playlist") }
    }
}


/// One HTTP exchange with the stream port, as an HLS player makes them (a new
/// connection each time, the body read to its Content-Length).
struct HLSFetch {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }

    init(port: UInt16, _ path: String, userAgent: String = "HLSTest/1.0", method: String = "GET") throws {
        let player = try TestPlayer(port: port, request: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: \(userAgent)\r\n\r\n")
        let head = try player.readHead(timeout: 15)
        status = head.status
        headers = head.headers
        let length = head.headers["content-length"].flatMap(Int.init) ?? 0
        body = method == "HEAD" ? [] : player.readBody(count: length, timeout: 15)
    }
}

/// What a segment's packets show: PAT first, a key frame (random_access_indicator) somewhere.
struct SegmentCheck {
    var startsWithPAT = false
    var hasKeyFrame = false
    var aligned = false

    init(_ bytes: [UInt8]) {
        aligned = !bytes.isEmpty && bytes.count % 188 == 0 && stride(from: 0, to: bytes.count, by: 188).allSatisfy { bytes[$0] == 0x47 }
        guard aligned else { return }
        startsWithPAT = bytes[1] & 0x1F == 0 && bytes[2] == 0 && bytes[1] & 0x40 != 0
        for i in stride(from: 0, to: bytes.count, by: 188) where bytes[i + 3] & 0x20 != 0 && bytes[i + 4] > 0 && bytes[i + 5] & 0x40 != 0 {
            hasKeyFrame = true
            break
        }
    }
}

/// HLS output against the engine simulator: the playlist's rules, segments as
/// history ranges, one engine session for TS and HLS players, 404s, the grace period.
@Suite(.serialized) struct HLSTests {
    static func manifest(_ id: String) -> String { "/ace/manifest.m3u8?id=\(id)" }

    @Test func aLivePlaylistFollowsTheRulesAndEverySegmentStartsWithAPATAndHoldsAKeyFrame() throws {
        let harness = try RelayHarness { $0.hlsSegmentSeconds = 1; $0.hlsWindow = 4 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(700)
        // Asked for while the hub starts: the answer waits for the first segment.
        let first = try HLSFetch(port: harness.port, Self.manifest(id))
        #expect(first.status == 200, "\(first.text)")
        #expect(first.headers["content-type"] == "application/vnd.apple.mpegurl")
        #expect(first.headers["access-control-allow-origin"] == "*")
        #expect(first.headers["cache-control"] == "no-cache")
        #expect(ParsedPlaylist(first.text).problems.isEmpty, "\(ParsedPlaylist(first.text).problems)")
        // Wait for a full window, then check it and every segment in it.
        var playlist = ParsedPlaylist(first.text)
        #expect(eventually(timeout: 20) {
            playlist = ParsedPlaylist((try? HLSFetch(port: harness.port, Self.manifest(id)).text) ?? "")
            return playlist.segments.count == 4
        })
        #expect(playlist.problems.isEmpty, "\(playlist.problems)")
        #expect(playlist.targetDuration >= 1)
        for (i, segment) in playlist.segments.enumerated() {
            #expect(segment.uri == HLSSegmentPath.path(content: ContentKey(kind: .contentID, value: id)!, sequence: playlist.mediaSequence + UInt64(i)))
            #expect(segment.duration > 0.5 && segment.duration < 3, "segment \(i) lasts \(segment.duration) s")
            let fetched = try HLSFetch(port: harness.port, segment.uri)
            #expect(fetched.status == 200)
            #expect(fetched.headers["content-type"] == "video/mp2t")
            #expect(fetched.headers["access-control-allow-origin"] == "*")
            #expect(fetched.headers["cache-control"]?.hasPrefix("max-age=") == true)
            #expect(fetched.body.count == Int(fetched.headers["content-length"] ?? "") ?? -1)
            let check = SegmentCheck(fetched.body)
            #expect(check.aligned && check.startsWithPAT && check.hasKeyFrame, "segment \(i): \(check)")
            #expect(TSCheck(fetched.body).continuityErrors == 0)
        }
        // The media sequence moves on as segments leave; the window keeps its size.
        var later = playlist
        #expect(eventually(timeout: 10) {
            later = ParsedPlaylist((try? HLSFetch(port: harness.port, Self.manifest(id)).text) ?? "")
            return later.mediaSequence > playlist.mediaSequence
        })
        #expect(later.segments.count == 4)
        #expect(later.segments.first?.uri == playlist.segments[Int(later.mediaSequence - playlist.mediaSequence)].uri)
        // HEAD answers the same head with no body and no engine session of its own.
        let head = try HLSFetch(port: harness.port, Self.manifest(RelayHarness.contentID(701)), method: "HEAD")
        #expect(head.status == 200 && head.headers["content-type"] == "application/vnd.apple.mpegurl")
        #expect(harness.simulator.counters(for: RelayHarness.contentID(701)).sessionsStarted == 0)
        #expect(harness.simulator.counters(for: id).sessionsStarted == 1)
    }

    @Test func twentyHLSPlayersAndFiveTSPlayersShareOneEngineSession() throws {
        let harness = try RelayHarness { $0.hlsSegmentSeconds = 1 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(702)
        let ts = try (0..<5).map { _ in try harness.player(id) }
        for player in ts { #expect(try player.readHead().status == 200) }
        // Each HLS player: the playlist, then its newest segment, three times over.
        let results = concurrently(20) { i -> Bool in
            var ok = true
            for _ in 0..<3 {
                guard let list = try? HLSFetch(port: harness.port, Self.manifest(id), userAgent: "HLSPlayer/\(i)"), list.status == 200,
                      let uri = ParsedPlaylist(list.text).segments.last?.uri,
                      let segment = try? HLSFetch(port: harness.port, uri, userAgent: "HLSPlayer/\(i)"), segment.status == 200,
                      SegmentCheck(segment.body).startsWithPAT else { ok = false; break }
                usleep(300_000)
            }
            return ok
        }
        #expect(results.allSatisfy { $0 }, "\(results)")
        let hub = try #require(harness.hub(id))
        #expect(hub.hlsPlayers == 20)
        #expect(hub.players == 25)
        #expect(hub.hlsSegmentRequests >= 60 && hub.hlsPlaylistRequests >= 60)
        #expect(harness.relay.status().hlsPlayerCount == 20)
        #expect(harness.relay.totals().hlsPlayers == 20)
        for player in ts { #expect(player.drain(seconds: 0.5).bytes > 0) }
        #expect(harness.simulator.counters(for: id).sessionsStarted == 1)
        #expect(harness.simulator.counters(for: id).playbackConnections == 1)
    }

    @Test func aSegmentLongGoneOrNotYetIssuedAnswers404() throws {
        // 16 Mbit/s into a 4 MiB history: a segment is trimmed a few seconds after it is cut.
        let harness = try RelayHarness(media: .synthetic(bitsPerSecond: 16_000_000)) {
            $0.hlsSegmentSeconds = 1
            $0.historySeconds = 1
            $0.historyMaxBytes = 4 << 20
        }
        defer { harness.stop() }
        let id = RelayHarness.contentID(703)
        let list = ParsedPlaylist(try HLSFetch(port: harness.port, Self.manifest(id)).text)
        let uri = try #require(list.segments.first?.uri)
        #expect(try HLSFetch(port: harness.port, uri).status == 200)
        let key = ContentKey(kind: .contentID, value: id)!
        let future = HLSSegmentPath.path(content: key, sequence: list.mediaSequence + 10_000)
        let notYet = try HLSFetch(port: harness.port, future)
        #expect(notYet.status == 404)
        #expect(notYet.text.contains("not issued yet"))
        #expect(notYet.headers["cache-control"] == "no-store")
        var gone: HLSFetch?
        #expect(eventually(timeout: 20) {
            gone = try? HLSFetch(port: harness.port, uri)
            return gone?.status == 404
        })
        #expect(gone?.text.contains("no longer held") == true)
        // A content with no hub, and a hub's number under another content, are 404 too.
        let other = HLSSegmentPath.path(content: ContentKey(kind: .contentID, value: RelayHarness.contentID(704))!, sequence: list.mediaSequence)
        #expect(try HLSFetch(port: harness.port, other).status == 404)
    }

    @Test func aSegmentStaysFetchableForItsDurationPlusThePlaylistsAfterLeavingIt() throws {
        // 16 Mbit/s with 1 s of history asked for: only the HLS floor keeps a segment
        // that long (the 8 MiB minimum alone holds about 4 s).
        let harness = try RelayHarness(media: .synthetic(bitsPerSecond: 16_000_000)) {
            $0.hlsSegmentSeconds = 1
            $0.hlsWindow = 3
            $0.historySeconds = 1
        }
        defer { harness.stop() }
        let id = RelayHarness.contentID(708)
        var playlist = ParsedPlaylist(try HLSFetch(port: harness.port, Self.manifest(id)).text)
        #expect(eventually(timeout: 15) {
            playlist = ParsedPlaylist((try? HLSFetch(port: harness.port, Self.manifest(id)).text) ?? "")
            return playlist.segments.count == 3
        })
        let watched = try #require(playlist.segments.first)
        let sequence = playlist.mediaSequence
        // Left the playlist, and then its duration plus the playlist's (3 more segments and 1) went by.
        var later = playlist
        #expect(eventually(timeout: 20) {
            later = ParsedPlaylist((try? HLSFetch(port: harness.port, Self.manifest(id)).text) ?? "")
            return later.mediaSequence >= sequence + 1 + 4
        })
        #expect(!later.segments.contains { $0.uri == watched.uri })
        let fetched = try HLSFetch(port: harness.port, watched.uri)
        #expect(fetched.status == 200)
        #expect(SegmentCheck(fetched.body).startsWithPAT)
    }

    @Test func aPlaylistOfAHubStillStartingAnswers503WithRetryAfter() throws {
        let harness = try RelayHarness { $0.hlsPlaylistWait = 1 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(705)
        // The engine takes the request and says nothing: the hub stays starting.
        harness.simulator.setFault(.hang, for: id)
        let started = Date()
        let answer = try HLSFetch(port: harness.port, Self.manifest(id))
        #expect(answer.status == 503)
        #expect(answer.headers["retry-after"] == "2")
        #expect(Date().timeIntervalSince(started) >= 0.9, "it waited for a first segment first")
        #expect(harness.hub(id)?.state == "starting")
        // Once the engine answers, a player that retries gets the playlist.
        harness.simulator.setFault(nil, for: id)
        #expect(eventually(timeout: 30) { (try? HLSFetch(port: harness.port, Self.manifest(id)).status) == 200 })
    }

    @Test func aDrainingRelayKeepsItsHLSPlayersAndRefusesNewOnes() throws {
        let harness = try RelayHarness { $0.hlsSegmentSeconds = 1 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(707)
        #expect(try HLSFetch(port: harness.port, Self.manifest(id), userAgent: "Watching/1").status == 200)
        harness.relay.beginDrain()
        let reload = try HLSFetch(port: harness.port, Self.manifest(id), userAgent: "Watching/1")
        #expect(reload.status == 200)
        let uri = try #require(ParsedPlaylist(reload.text).segments.last?.uri)
        #expect(try HLSFetch(port: harness.port, uri, userAgent: "Watching/1").status == 200)
        let newcomer = try HLSFetch(port: harness.port, Self.manifest(id), userAgent: "Newcomer/1")
        #expect(newcomer.status == 503)
        #expect(newcomer.headers["retry-after"] == "2")
    }

    @Test func theEngineSessionStopsAfterTheHLSPlayersStopAndTheGracePeriod() throws {
        let harness = try RelayHarness { $0.hlsSegmentSeconds = 1; $0.gracePeriod = 2 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(706)
        // A player's cadence for 6 s, longer than 3 target durations plus the grace
        // period, so a hub that did not count the HLS player would close meanwhile.
        let began = Date()
        var fetched = 0
        while Date().timeIntervalSince(began) < 6 {
            if let list = try? HLSFetch(port: harness.port, Self.manifest(id)), let uri = ParsedPlaylist(list.text).segments.last?.uri,
               (try? HLSFetch(port: harness.port, uri))?.status == 200 {
                fetched += 1
            }
            usleep(500_000)
        }
        let lastFetch = Date()
        #expect(fetched >= 6)
        #expect(harness.hub(id)?.hlsPlayers == 1)
        #expect(harness.hub(id)?.state == "live")
        #expect(!harness.publishedEvents.contains { if case .hubClosed = $0 { return true } else { return false } })
        #expect(harness.waitForEvent(timeout: 20) { if case .hubClosed(_, .idle) = $0 { return true } else { return false } })
        let quiet = Date().timeIntervalSince(lastFetch)
        // Three target durations (3 s) until the player counts as gone, then the 2 s grace period.
        #expect(quiet >= 4.5, "closed \(quiet) s after the last fetch")
        #expect(quiet < 9, "closed \(quiet) s after the last fetch")
        #expect(eventually(timeout: 5) { harness.simulator.counters(for: id).stops == 1 })
    }
}
