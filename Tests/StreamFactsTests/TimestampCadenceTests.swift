import Testing
@testable import StreamFacts

@Suite struct TimestampCadenceTests {
    static func rate(_ timestamps: [UInt64]) -> Double? {
        var cadence = TimestampCadence()
        for timestamp in timestamps { cadence.record(timestamp) }
        return cadence.frameRate
    }

    @Test func steadyDecodeOrderSteps() {
        #expect(Self.rate((0..<9).map { 1_000 + $0 * 3600 }) == 25)
        #expect(Self.rate((0..<9).map { $0 * 3003 }) == 30000.0 / 1001)
        // 59.94 fps: 1501.5 ticks per frame, written as 1501 and 1502.
        #expect(Self.rate((0..<9).map { $0 * 3003 / 2 }) == 60000.0 / 1001)
    }

    @Test func tooFewStepsGiveNothing() {
        #expect(Self.rate((0..<8).map { $0 * 3600 }) == nil)
    }

    @Test func presentationOrderWithBFrames() {
        // I P B B P B B ...: PTS in frames 0 3 1 2 6 4 5 9 7 8.
        let frames: [UInt64] = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8]
        #expect(Self.rate(frames.map { 90_000 + $0 * 1800 }) == 50)
    }

    @Test func wrapAroundOfThe33BitClock() {
        let start: UInt64 = (1 << 33) - 4 * 3600
        #expect(Self.rate((0..<9).map { (start + $0 * 3600) & 0x1_FFFF_FFFF }) == 25)
    }

    @Test func aLostPESStartRestartsTheWindow() {
        var timestamps = (0..<6).map { UInt64($0) * 3600 }
        timestamps += (7..<20).map { UInt64($0) * 3600 } // frame 6's PES was lost: one double step
        var cadence = TimestampCadence()
        for (index, timestamp) in timestamps.enumerated() {
            cadence.record(timestamp)
            if index < 8 { #expect(cadence.frameRate == nil, "a window with a double step must not give a rate") }
        }
        #expect(cadence.frameRate == 25)
    }

    @Test func splicesAndGarbageGiveNoWrongRate() {
        // A jump of minutes, then steps that fit no pattern.
        let junk: [UInt64] = [0, 3600, 7200, 9_000_000, 9_003_600, 9_004_000, 9_010_000, 9_010_001, 9_020_000, 9_020_500, 9_030_000]
        #expect(Self.rate(junk) == nil)
    }
}
