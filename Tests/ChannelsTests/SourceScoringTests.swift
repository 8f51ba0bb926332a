import Channels
import StreamFacts
import Testing

@Suite struct SourceScoringTests {
    static let hd = StreamFacts(videoCodec: .h264, width: 1920, height: 1080, fps: 50, audioCodec: .aac, audioChannels: 2)

    @Test func aFailedMeasurementScoresZeroWithItsReason() {
        let score = SourceScorer.score(SourceMeasurement(failure: .stalled, measuredSeconds: 20, peers: 40, facts: Self.hd))
        #expect(score.total == 0)
        #expect(score.failure == .stalled)
        #expect(score.components.sum == 0)
    }

    @Test func aHealthyHDStreamWithAStrongSwarmScoresNearTheTop() {
        let m = SourceMeasurement(timeToFirstByte: 1.2, measuredSeconds: 20, bitrateKbps: 8000, peers: 30,
                                  speedDownKBps: 1500, liveposAdvancing: true, facts: Self.hd)
        let score = SourceScorer.score(m)
        #expect(score.total >= 95)
        #expect(score.total <= 100)
        #expect(abs(score.components.sum - Double(score.total)) < 0.5)
    }

    @Test func aSwarmDownloadingSlowerThanTheStreamPlaysLosesTheSpeedPoints() {
        // 3,000 kbit/s stream, 300 KB/s = 2,400 kbit/s: below 0.8 × the rate.
        let slow = SourceMeasurement(measuredSeconds: 20, bitrateKbps: 3000, peers: 5, speedDownKBps: 300, facts: Self.hd)
        let fast = SourceMeasurement(measuredSeconds: 20, bitrateKbps: 3000, peers: 5, speedDownKBps: 900, facts: Self.hd)
        #expect(SourceScorer.score(slow).components.speed == 0)
        #expect(SourceScorer.score(fast).components.speed == SourceScorer.Weights.speed)
    }

    @Test func stallsAndContinuityErrorsCostPointsInProportion() {
        let clean = SourceScorer.score(SourceMeasurement(measuredSeconds: 60, facts: Self.hd))
        let stalled = SourceScorer.score(SourceMeasurement(measuredSeconds: 60, stallSeconds: 15, facts: Self.hd))
        let damaged = SourceScorer.score(SourceMeasurement(measuredSeconds: 60, continuityErrors: 5, facts: Self.hd))
        #expect(clean.components.flow == SourceScorer.Weights.flow)
        #expect(stalled.components.flow == SourceScorer.Weights.flow / 2)
        #expect(damaged.components.continuity == SourceScorer.Weights.continuity / 2)
        #expect(stalled.total < clean.total && damaged.total < clean.total)
    }

    @Test func picturePointsFollowResolutionFrameRateCodecAndBitrate() {
        let sd = StreamFacts(videoCodec: .mpeg2, width: 720, height: 576, fps: 25)
        let hevc = StreamFacts(videoCodec: .hevc, width: 3840, height: 2160, fps: 50)
        let a = SourceScorer.score(SourceMeasurement(measuredSeconds: 20, bitrateKbps: 2000, facts: sd))
        let b = SourceScorer.score(SourceMeasurement(measuredSeconds: 20, bitrateKbps: 8000, facts: hevc))
        #expect(a.components.resolution == 5)
        #expect(b.components.resolution == 10)
        #expect(a.components.fps == 2.5)
        #expect(b.components.codec == SourceScorer.Weights.codec)
        #expect(a.components.bitrate == SourceScorer.Weights.bitrate / 4)
    }

    @Test func nullPacketsDoNotCountAsPicture() {
        let m = SourceMeasurement(measuredSeconds: 20, nullPacketShare: 0.5, bitrateKbps: 8000, facts: Self.hd)
        #expect(SourceScorer.score(m).components.bitrate == SourceScorer.Weights.bitrate / 2)
    }

    @Test func aSlowStartCostsTheStartPoints() {
        let quick = SourceScorer.score(SourceMeasurement(timeToFirstByte: 1, measuredSeconds: 20))
        let slow = SourceScorer.score(SourceMeasurement(timeToFirstByte: 12, measuredSeconds: 20))
        #expect(quick.components.start == SourceScorer.Weights.start)
        #expect(slow.components.start == 0)
    }
}

@Suite struct SourceOrderingTests {
    typealias Entry = SourceOrdering.Entry
    let ordering = SourceOrdering(margin: 10)

    func ids(_ entries: [Entry]) -> [String] { entries.map(\.contentID) }

    @Test func aChallengerTakesFirstPlaceOnlyByTheMargin() {
        let current = [Entry(contentID: "a", score: 70, failed: false), Entry(contentID: "b", score: 79, failed: false)]
        #expect(ids(ordering.order(current)) == ["a", "b"])
        let better = [Entry(contentID: "a", score: 70, failed: false), Entry(contentID: "b", score: 80, failed: false)]
        #expect(ids(ordering.order(better)) == ["b", "a"])
    }

    @Test func aFailedFirstSourceLosesItsPlaceAtOnceAndGoesLast() {
        let current = [Entry(contentID: "a", score: 0, failed: true), Entry(contentID: "b", score: 20, failed: false),
                       Entry(contentID: "c", score: 25, failed: false)]
        #expect(ids(ordering.order(current)) == ["c", "b", "a"])
    }

    @Test func tiesKeepThePreviousOrder() {
        let current = [Entry(contentID: "a", score: 50, failed: false), Entry(contentID: "b", score: 60, failed: false),
                       Entry(contentID: "c", score: 60, failed: false)]
        // b and c tie; neither beats a by 10 points... b does (60 ≥ 50 + 10): b first, c keeps its place after b.
        #expect(ids(ordering.order(current)) == ["b", "c", "a"])
    }

    @Test func belowTheFirstPlaceSourcesAreRankedByScoreWithoutHysteresis() {
        let current = [Entry(contentID: "a", score: 90, failed: false), Entry(contentID: "b", score: 40, failed: false),
                       Entry(contentID: "c", score: 41, failed: false)]
        #expect(ids(ordering.order(current)) == ["a", "c", "b"])
    }

    @Test func unmeasuredSourcesRankAfterMeasuredOnesThatWork() {
        let current = [Entry(contentID: "a", score: nil, failed: false), Entry(contentID: "b", score: 30, failed: false),
                       Entry(contentID: "c", score: 0, failed: true)]
        #expect(ids(ordering.order(current)) == ["b", "a", "c"])
    }

    @Test func aStableSetOfScoresGivesTheSameOrderEveryTime() {
        var entries = [Entry(contentID: "a", score: 72, failed: false), Entry(contentID: "b", score: 75, failed: false),
                       Entry(contentID: "c", score: 10, failed: false)]
        for _ in 0..<5 { entries = ordering.order(entries) }
        #expect(ids(entries) == ["a", "b", "c"])
    }
}
