import Testing
@testable import RelayCore

@Suite struct HLSPlaylistTests {
    private let content = ContentKey(kind: .contentID, value: String(repeating: "ab", count: 20))!
    private var base: String { "/ace/hls/id/\(content.value)/" }

    @Test func aPlaylistListsItsSegmentsUnderTheRulesOfALivePlaylist() {
        let segments = [2.0, 2.6, 2.0].enumerated().map { (i: Int, duration: Double) -> HLSSegment in
            let start = UInt64(i) * 1000
            return HLSSegment(sequence: 100 + UInt64(i), range: start..<(start + 1000), duration: duration,
                              discontinuity: false, discontinuitySequence: 0)
        }
        let text = HLSPlaylist(segments: segments, content: content, minimumTargetDuration: 2).text
        // 2.6 s rounds to 3, so the target is 3; no end tag while live; no discontinuity.
        #expect(text == """
            #EXTM3U
            #EXT-X-VERSION:3
            #EXT-X-TARGETDURATION:3
            #EXT-X-MEDIA-SEQUENCE:100
            #EXTINF:2.000,
            \(base)100.ts
            #EXTINF:2.600,
            \(base)101.ts
            #EXTINF:2.000,
            \(base)102.ts

            """)
    }

    @Test func theTargetDurationNeverShrinksBelowWhatWasAnnounced() {
        let segment = HLSSegment(sequence: 1, range: 0..<188, duration: 1.2, discontinuity: false, discontinuitySequence: 0)
        #expect(HLSPlaylist(segments: [segment], content: content, minimumTargetDuration: 4).targetDuration == 4)
        #expect(HLSPlaylist(entries: [], mediaSequence: 0, discontinuitySequence: 0, minimumTargetDuration: 0).targetDuration == 1)
        // 2.5 rounds up to 3 (RFC 8216 rounds to the nearest integer).
        let long = HLSSegment(sequence: 1, range: 0..<188, duration: 2.5, discontinuity: false, discontinuitySequence: 0)
        #expect(HLSPlaylist(segments: [long], content: content, minimumTargetDuration: 2).targetDuration == 3)
    }

    @Test func discontinuitiesAreTaggedAndCountedOnceTheyLeaveTheWindow() {
        // Segment 11 starts a new timeline; segment 13 another.
        let marks: [(sequence: UInt64, discontinuity: Bool, count: UInt64)] = [(10, false, 0), (11, true, 1), (12, false, 1), (13, true, 2), (14, false, 2)]
        let all = marks.map { mark -> HLSSegment in
            let start = mark.sequence * 100
            return HLSSegment(sequence: mark.sequence, range: start..<(start + 100), duration: 2,
                              discontinuity: mark.discontinuity, discontinuitySequence: mark.count)
        }
        func lines(_ from: Int) -> [String] {
            HLSPlaylist(segments: Array(all[from...]), content: content, minimumTargetDuration: 2).text
                .split(separator: "\n").map(String.init).filter { $0.hasPrefix("#EXT-X-DISCONTINUITY") || $0.hasSuffix(".ts") }
        }
        #expect(lines(0) == ["\(base)10.ts", "#EXT-X-DISCONTINUITY", "\(base)11.ts", "\(base)12.ts", "#EXT-X-DISCONTINUITY", "\(base)13.ts", "\(base)14.ts"])
        // The window starts at 11: its own tag is still written, nothing before it counted.
        #expect(lines(1) == ["#EXT-X-DISCONTINUITY", "\(base)11.ts", "\(base)12.ts", "#EXT-X-DISCONTINUITY", "\(base)13.ts", "\(base)14.ts"])
        // From 12 on, the tag of 11 has left and is counted; 14's number stays 2 throughout.
        #expect(lines(2) == ["#EXT-X-DISCONTINUITY-SEQUENCE:1", "\(base)12.ts", "#EXT-X-DISCONTINUITY", "\(base)13.ts", "\(base)14.ts"])
        #expect(lines(4) == ["#EXT-X-DISCONTINUITY-SEQUENCE:2", "\(base)14.ts"])
    }

    @Test func entriesOfSeveralHubsMakeOnePlaylist() {
        let other = ContentKey(kind: .infohash, value: String(repeating: "cd", count: 20))!
        let entries = [
            HLSPlaylist.Entry(uri: HLSSegmentPath.path(content: content, sequence: 7), duration: 2, discontinuity: false),
            HLSPlaylist.Entry(uri: HLSSegmentPath.path(content: other, sequence: 900), duration: 2.04, discontinuity: true),
        ]
        let text = HLSPlaylist(entries: entries, mediaSequence: 42, discontinuitySequence: 3, minimumTargetDuration: 2).text
        #expect(text.hasSuffix("""
            #EXT-X-MEDIA-SEQUENCE:42
            #EXT-X-DISCONTINUITY-SEQUENCE:3
            #EXTINF:2.000,
            \(base)7.ts
            #EXT-X-DISCONTINUITY
            #EXTINF:2.040,
            /ace/hls/infohash/\(other.value)/900.ts

            """))
    }

    @Test func segmentPathsReadBackAndRejectWhatIsNotOne() throws {
        let path = HLSSegmentPath.path(content: content, sequence: 1_764_000_000)
        let parsed = try #require(HLSSegmentPath.parse(path))
        #expect(parsed.content == content && parsed.sequence == 1_764_000_000)
        #expect(HLSSegmentPath.parse("\(base)x.ts") == nil)
        #expect(HLSSegmentPath.parse("/ace/hls/id/abc/1.ts") == nil)
        #expect(HLSSegmentPath.parse("/ace/hls/pid/\(content.value)/1.ts") == nil)
        #expect(HLSSegmentPath.parse("\(base)1.ts/more") == nil)
    }

    @Test func theRouterSendsManifestsAndSegmentsToHLS() {
        func route(_ target: String, _ method: String = "GET") -> StreamRoute {
            StreamRouter.standard.route(HTTPRequestHead(method: method, target: target, version: "HTTP/1.1", headers: []))
        }
        #expect(route("/ace/manifest.m3u8?id=\(content.value)&pid=7") == .hlsPlaylist(content, includeBody: true))
        #expect(route("/ace/manifest.m3u8?content_id=\(content.value)", "HEAD") == .hlsPlaylist(content, includeBody: false))
        #expect(route("\(base)12.ts") == .hlsSegment(content, sequence: 12, includeBody: true))
        guard case .refuse(404, _, _, _, _) = route("/ace/hls/id/zz/1.ts") else { Issue.record("a malformed segment path is a 404"); return }
        guard case .refuse(400, _, _, _, _) = route("/ace/manifest.m3u8") else { Issue.record("a manifest without a content is a 400"); return }
    }
}

@Suite struct HLSSegmenterTests {
    private func point(_ offset: UInt64, stream: Double?, time: Double, keyFrame: Bool = true) -> JoinPoint {
        JoinPoint(offset: offset, pcr: nil, time: time, streamTime: stream, keyFrame: keyFrame)
    }

    @Test func segmentsCloseAtTheFirstKeyFrameAfterTheTarget() {
        let index = HLSSegmentIndex(firstSequence: 500)
        let segmenter = HLSSegmenter(index: index, targetSeconds: 2)
        // Key frames every 0.96 s of stream time (the last PCR before each lags a little).
        for i in 0..<6 { segmenter.joinPointFound(point(UInt64(i) * 100_000, stream: Double(i) * 0.96, time: 0)) }
        let segments = index.newest(10, readable: 0..<1_000_000)
        #expect(segments.map(\.sequence) == [500, 501])
        #expect(segments.map(\.range) == [0..<200_000, 200_000..<400_000])
        #expect(abs(segments[0].duration - 1.92) < 0.001, "1.92 s is within the slack of 2 s")
        #expect(index.nextSequence == 502)
    }

    @Test func theFirstSegmentWaitsForAKeyFrame() {
        let index = HLSSegmentIndex(firstSequence: 0)
        let segmenter = HLSSegmenter(index: index, targetSeconds: 1)
        segmenter.joinPointFound(point(0, stream: 0, time: 0, keyFrame: false))
        segmenter.joinPointFound(point(1000, stream: 1.5, time: 0))
        segmenter.joinPointFound(point(2000, stream: 3, time: 0))
        #expect(index.newest(5, readable: 0..<10_000).map(\.range) == [1000..<2000])
    }

    @Test func aLoopSeamAtAKeyFrameIsACutAndTheNextSegmentIsADiscontinuity() {
        let index = HLSSegmentIndex(firstSequence: 0)
        let segmenter = HLSSegmenter(index: index, targetSeconds: 2)
        segmenter.joinPointFound(point(0, stream: 0, time: 0))
        segmenter.joinPointFound(point(10_000, stream: 1, time: 0))
        // The seam: PAT at 20 000, the new timeline's first PCR just after it.
        segmenter.joinPointFound(point(20_000, stream: 1.5, time: 0))
        segmenter.timelineBroke(at: 20_376)
        segmenter.joinPointFound(point(30_000, stream: 2.5, time: 0))
        segmenter.joinPointFound(point(40_000, stream: 3.6, time: 0))
        let segments = index.newest(5, readable: 0..<100_000)
        #expect(segments.map(\.range) == [0..<20_000, 20_000..<40_000])
        #expect(segments.map(\.discontinuity) == [false, true])
        #expect(segments.map(\.discontinuitySequence) == [0, 1])
        #expect(abs(segments[0].duration - 1.5) < 0.001)
    }

    @Test func withoutAClockDurationsComeFromArrivalTimes() {
        let index = HLSSegmentIndex(firstSequence: 0)
        let segmenter = HLSSegmenter(index: index, targetSeconds: 2)
        for i in 0..<4 { segmenter.joinPointFound(point(UInt64(i) * 1000, stream: nil, time: 10 + Double(i))) }
        let segments = index.newest(5, readable: 0..<10_000)
        #expect(segments.map(\.range) == [0..<2000])
        #expect(segments[0].duration == 2)
    }

    @Test func segmentsTheHistoryNoLongerHoldsOrHasNotPublishedAreNotListed() {
        let index = HLSSegmentIndex(firstSequence: 0)
        for i in 0..<5 { index.append(range: UInt64(i * 100)..<UInt64(i * 100 + 100), duration: 2, discontinuity: false) }
        #expect(index.newest(3, readable: 150..<450).map(\.sequence) == [2, 3])
        #expect(index.segment(1, readable: 150..<450) == nil, "its start was trimmed")
        #expect(index.segment(4, readable: 150..<450) == nil, "not all of it is published")
        #expect(index.segment(9, readable: 0..<10_000) == nil, "never issued")
        #expect(index.segment(2, readable: 150..<450)?.range == 200..<300)
    }
}

@Suite struct TSInspectorClockTests {
    /// A packet on `pid` with a PCR (`ticks` in 90 kHz) and optionally the discontinuity flag.
    private func pcrPacket(pid: UInt16, ticks: UInt64, discontinuity: Bool = false) -> [UInt8] {
        var p = [UInt8](repeating: 0xFF, count: 188)
        p[0] = 0x47; p[1] = UInt8(pid >> 8); p[2] = UInt8(pid & 0xFF); p[3] = 0x20
        p[4] = 183; p[5] = 0x10 | (discontinuity ? 0x80 : 0)
        p[6] = UInt8(truncatingIfNeeded: ticks >> 25); p[7] = UInt8(truncatingIfNeeded: ticks >> 17)
        p[8] = UInt8(truncatingIfNeeded: ticks >> 9); p[9] = UInt8(truncatingIfNeeded: ticks >> 1)
        p[10] = UInt8(truncatingIfNeeded: ticks << 7) | 0x7E; p[11] = 0
        return p
    }

    @Test func theStreamClockRunsOnAcrossJumpsAndReportsThem() {
        let inspector = TSInspector()
        var breaks: [UInt64] = []
        inspector.timelineBreakFound = { breaks.append($0) }
        var bytes: [UInt8] = []
        for t in [0, 45_000, 90_000, 9_000, 54_000] as [UInt64] { bytes += pcrPacket(pid: 0x100, ticks: t) }
        bytes.withUnsafeBytes { _ = inspector.inspect($0, at: 0) }
        #expect(breaks == [188 * 3], "the clock went back at the fourth PCR")
        #expect(abs(inspector.streamSeconds - 1.5) < 0.0001, "0.5 + 0.5, then 0.5 after the jump")
        inspector.resetContinuity()
        pcrPacket(pid: 0x100, ticks: 99_000).withUnsafeBytes { _ = inspector.inspect($0, at: 188 * 5) }
        #expect(breaks == [188 * 3, 188 * 5], "the first PCR after a reconnect starts a new timeline")
    }
}
