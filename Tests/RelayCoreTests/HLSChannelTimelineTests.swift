import Testing
@testable import RelayCore

@Suite struct HLSChannelTimelineTests {
    private let a = ContentKey(kind: .contentID, value: String(repeating: "a1", count: 20))!
    private let b = ContentKey(kind: .contentID, value: String(repeating: "b2", count: 20))!

    private func timeline(capacity: Int = 64) -> HLSChannelTimeline {
        HLSChannelTimeline(firstSequence: 1000, policy: SwitchPolicy(failoverAfter: 4, maxSwitchesPerMinute: 6), capacity: capacity)
    }

    private func segments(_ numbers: ClosedRange<UInt64>, duration: Double = 2, discontinuityAt: UInt64? = nil) -> [HLSSegment] {
        numbers.map { HLSSegment(sequence: $0, range: $0 * 100..<($0 + 1) * 100, duration: duration,
                                 discontinuity: $0 == discontinuityAt, discontinuitySequence: 0) }
    }

    @Test func segmentsOfOneHubAreAppendedOnceUnderTheChannelsOwnNumbers() throws {
        var t = timeline()
        t.play(a, hub: HubID(content: a, serial: 1))
        t.append(segments(50...52), content: a, targetDuration: 2)
        t.append(segments(51...54), content: a, targetDuration: 2)
        let playlist = try #require(t.playlist(window: 3))
        #expect(playlist.mediaSequence == 1002)
        #expect(playlist.entries.map(\.uri) == (52...54).map { HLSSegmentPath.path(content: a, sequence: $0) })
        #expect(playlist.entries.allSatisfy { !$0.discontinuity })
        #expect(playlist.discontinuitySequence == 0)
    }

    @Test func aNewSourceStartsWithADiscontinuityAtItsNewestSegmentAndTheSequenceGoesOn() throws {
        var t = timeline()
        t.play(a, hub: HubID(content: a, serial: 1))
        t.append(segments(50...53), content: a, targetDuration: 2)
        t.sourceFailed()
        t.play(b, hub: HubID(content: b, serial: 2))
        // The new hub's backlog is skipped: only its newest segment joins.
        t.append(segments(900...905, duration: 3), content: b, targetDuration: 3)
        t.append(segments(904...906, duration: 3), content: b, targetDuration: 3)
        let playlist = try #require(t.playlist(window: 4))
        #expect(playlist.mediaSequence == 1002)
        #expect(playlist.entries.map(\.uri) == [HLSSegmentPath.path(content: a, sequence: 52), HLSSegmentPath.path(content: a, sequence: 53),
                                                HLSSegmentPath.path(content: b, sequence: 905), HLSSegmentPath.path(content: b, sequence: 906)])
        #expect(playlist.entries.map(\.discontinuity) == [false, false, true, false])
        #expect(playlist.targetDuration == 3)
        // Once the marked segment leaves the window, the discontinuity sequence counts it.
        t.append(segments(907...909, duration: 3), content: b, targetDuration: 3)
        let later = try #require(t.playlist(window: 4))
        #expect(later.mediaSequence == 1005)
        #expect(later.discontinuitySequence == 1)
        #expect(later.entries.allSatisfy { !$0.discontinuity })
    }

    @Test func aReopenedHubOfTheSameSourceIsMarkedAndTheHubsOwnDiscontinuitiesKept() throws {
        var t = timeline(capacity: 3)
        t.play(a, hub: HubID(content: a, serial: 1))
        t.append(segments(10...11, discontinuityAt: 11), content: a, targetDuration: 2)
        t.play(a, hub: HubID(content: a, serial: 1))
        t.append(segments(10...12), content: a, targetDuration: 2)
        t.play(a, hub: HubID(content: a, serial: 7))
        t.append(segments(500...500), content: a, targetDuration: 2)
        // Capacity 3: the first entry left, with no discontinuity of its own.
        #expect(t.entries.map(\.discontinuity) == [true, false, true])
        let playlist = try #require(t.playlist(window: 2))
        #expect(playlist.discontinuitySequence == 1, "the hub's own discontinuity left the window")
        #expect(playlist.mediaSequence == 1002)
    }

    @Test func nothingToListBeforeTheFirstSegment() {
        var t = timeline()
        t.play(a, hub: HubID(content: a, serial: 1))
        t.append([], content: a, targetDuration: 2)
        #expect(t.playlist(window: 6) == nil)
    }
}
