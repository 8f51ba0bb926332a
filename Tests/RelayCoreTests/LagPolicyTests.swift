import Testing
@testable import RelayCore

@Suite struct LagPolicyTests {
    let policy = LagPolicy(maxLagSeconds: 4, skipLimit: 3)

    @Test func maxLagIsSecondsOfTheMeasuredRateCappedAtHalfTheHistory() {
        #expect(policy.maxLagBytes(bitsPerSecond: 2_000_000, retainedBytes: 64 << 20) == 1_000_000)
        // Unmeasured: assume 8 Mbit/s.
        #expect(policy.maxLagBytes(bitsPerSecond: 0, retainedBytes: 64 << 20) == 4_000_000)
        #expect(policy.maxLagBytes(bitsPerSecond: 100_000_000, retainedBytes: 8 << 20) == 4 << 20)
    }

    @Test func aPlayerWithinTheLagLimitIsKept() {
        #expect(policy.decide(readOffset: 9_000, oldestReadable: 0, end: 10_000, maxLag: 1_000, recentSkips: 5) == .keep)
        #expect(policy.decide(readOffset: 10_000, oldestReadable: 0, end: 10_000, maxLag: 0, recentSkips: 0) == .keep)
    }

    @Test func aPlayerTooFarBehindSkipsUntilItHasSkippedTooOften() {
        #expect(policy.decide(readOffset: 8_999, oldestReadable: 0, end: 10_000, maxLag: 1_000, recentSkips: 0) == .skip)
        #expect(policy.decide(readOffset: 8_999, oldestReadable: 0, end: 10_000, maxLag: 1_000, recentSkips: 2) == .skip)
        #expect(policy.decide(readOffset: 8_999, oldestReadable: 0, end: 10_000, maxLag: 1_000, recentSkips: 3) == .drop)
    }

    @Test func aPlayerBehindTheTrimmedHistoryLagsWhateverTheLimit() {
        #expect(policy.decide(readOffset: 4_000, oldestReadable: 5_000, end: 5_100, maxLag: 1_000_000, recentSkips: 0) == .skip)
    }

    @Test func aSkipGoesToTheNewestJoinPointWhenItIsReadableAndRecent() {
        #expect(policy.skipTarget(joinPoint: 9_400, oldestReadable: 0, end: 10_000, maxLag: 1_000) == 9_400)
    }

    @Test func aSkipGoesToTheLiveEdgeWithoutAUsableJoinPoint() {
        #expect(policy.skipTarget(joinPoint: nil, oldestReadable: 0, end: 10_000, maxLag: 1_000) == 10_000)
        // Trimmed already.
        #expect(policy.skipTarget(joinPoint: 400, oldestReadable: 500, end: 1_000, maxLag: 1_000) == 1_000)
        // Further behind than a player may lag: it would be lagging at once.
        #expect(policy.skipTarget(joinPoint: 8_000, oldestReadable: 0, end: 10_000, maxLag: 1_000) == 10_000)
    }
}
