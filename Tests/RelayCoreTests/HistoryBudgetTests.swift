import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import RelayCore

@Suite struct HistoryBudgetTests {
    private static let mib: UInt64 = 1 << 20

    /// Writes `bytes` of packets to `history` at its end and publishes them.
    private func feed(_ history: StreamHistory, _ bytes: Int) throws {
        let block = [UInt8](repeating: 0x47, count: 188 * 1000)
        var left = bytes
        while left > 0 {
            let count = min(left, block.count)
            let end = history.end
            try block.withUnsafeBytes { try history.append(UnsafeRawBufferPointer(rebasing: $0[0..<count]), at: end) }
            history.publish(upTo: end + UInt64(count))
            left -= count
        }
    }

    @Test func windowsFitWithoutABudgetAreKeptWhole() {
        let budget = HistoryBudget(limit: 0)
        #expect(budget.window(wanted: 40 * Self.mib, needed: 0, replacing: (0, HistoryBudget.smallestWindow)) == 40 * Self.mib)
        #expect(budget.hasRoomForAnotherHistory)
    }

    @Test func threeHubsOverTheBudgetKeepTheSameFractionOfTheirWindows() throws {
        let budget = HistoryBudget(limit: 64 * Self.mib)
        let histories = try (0..<3).map { _ in try StreamHistory(name: "b", retainedBytes: 8 << 20, budget: budget) }
        #expect(budget.historyCount == 3)
        // Each reports once (first at full size), then the shares settle on the sum of all three.
        var windows: [UInt64] = []
        for round in 0..<2 {
            windows = []
            for (n, history) in histories.enumerated() {
                let wanted = UInt64(n + 1) * 30 * Self.mib
                windows.append(budget.window(wanted: wanted, needed: 0,
                                             replacing: round == 0 ? (0, HistoryBudget.smallestWindow) : (wanted, HistoryBudget.smallestWindow)))
                _ = history
            }
        }
        let usable = (64 * Self.mib - 3 * HistoryBudget.slackPerHistory) / 16 * 15
        #expect(windows.reduce(0, +) <= usable)
        // 30, 60 and 90 MiB wanted: the same fraction of each.
        #expect(windows[1] / 2 == windows[0] || windows[1] / 2 + 1 == windows[0])
        #expect(windows[0] < 30 * Self.mib)
    }

    @Test func aWindowNeverShrinksBelowWhatJoiningPlayersNeed() {
        let budget = HistoryBudget(limit: 32 * Self.mib)
        let others = budget.window(wanted: 500 * Self.mib, needed: 0, replacing: (0, HistoryBudget.smallestWindow))
        let window = budget.window(wanted: 40 * Self.mib, needed: 12 * Self.mib, replacing: (0, HistoryBudget.smallestWindow))
        #expect(others >= HistoryBudget.smallestWindow)
        #expect(window == 12 * Self.mib)
    }

    @Test func bytesHeldFollowAppendsPunchesAndClosedHistories() throws {
        let budget = HistoryBudget(limit: 256 * Self.mib)
        var first: StreamHistory? = try StreamHistory(name: "b1", retainedBytes: 4 << 20, budget: budget)
        let second = try StreamHistory(name: "b2", retainedBytes: 4 << 20, budget: budget)
        try feed(first!, 20 << 20)
        try feed(second, 3 << 20)
        #expect(budget.bytesHeld == first!.residentBytes + second.residentBytes)
        // The first punched: it holds its window and some slack, not all 20 MiB.
        #expect(first!.residentBytes <= 4 * Self.mib + HistoryBudget.slackPerHistory)
        first = nil
        #expect(budget.bytesHeld == second.residentBytes)
        #expect(budget.historyCount == 1)
    }

    @Test func noRoomForAnotherHistoryOnceTheSmallestWindowsFillTheBudget() throws {
        let smallest = HistoryBudget.smallestWindow + HistoryBudget.slackPerHistory
        let budget = HistoryBudget(limit: 2 * smallest)
        let one = try StreamHistory(name: "r1", retainedBytes: 4 << 20, budget: budget)
        #expect(budget.hasRoomForAnotherHistory)
        let two = try StreamHistory(name: "r2", retainedBytes: 4 << 20, budget: budget)
        #expect(!budget.hasRoomForAnotherHistory)
        _ = (one, two)
    }

    @Test func theWidestRecentSpanCountsTheBytesSinceTheNewestJoinPoint() {
        var index = JoinPointIndex(capacity: 16)
        #expect(index.widestRecentSpan(upTo: 1_000) == 0)
        for offset: UInt64 in [0, 100, 500, 600] { index.record(JoinPoint(offset: offset, pcr: nil, time: 0)) }
        #expect(index.widestRecentSpan(upTo: 700) == 400)
        #expect(index.widestRecentSpan(upTo: 1_600) == 1_000)
    }
}

@Suite struct PlayerAdmissionTests {
    @Test func slotsBeyondTheLimitAreRefusedAndCountedAndComeBackWhenReleased() {
        let admission = PlayerAdmission(limit: 2)
        #expect(admission.admit())
        #expect(admission.admit())
        #expect(!admission.admit())
        #expect(admission.refusedTotal == 1)
        #expect(admission.inUse == 2)
        admission.release()
        #expect(admission.admit())
    }

    @Test func noLimitAdmitsEveryone() {
        let admission = PlayerAdmission(limit: 0)
        for _ in 0..<1_000 { #expect(admission.admit()) }
        #expect(admission.refusedTotal == 0)
    }
}
