import Synchronization

/// The memory all hubs' histories may hold together (`--history-budget`).
///
/// memfd pages are shared memory: they count in `/proc/meminfo`'s Shmem, not in
/// the process's RSS, so nothing else would notice 200 hubs holding gigabytes.
/// Each history reports the bytes it holds (published minus punched) and the
/// window it would keep without a budget; when the windows together would not
/// fit, every hub keeps the same fraction of its window, which is the same
/// number of seconds for every hub, but never less than its joining players
/// need (two spans between join points). A new hub is refused while the
/// budget could not hold even the smallest window for it.
public final class HistoryBudget: Sendable {
    /// Bytes all histories may hold; 0 for no budget.
    public let limit: UInt64
    private let held = Atomic<UInt64>(0)
    private let wanted = Atomic<UInt64>(0)
    private let needed = Atomic<UInt64>(0)
    private let histories = Atomic<Int>(0)

    /// A history holds up to this much more than its window: the whole block kept
    /// behind the readable floor and the block the floor is in (see `StreamHistory.punchBlock`).
    static let slackPerHistory = 2 * StreamHistory.punchBlock
    /// The smallest window a history keeps (`StreamHistory.retain`).
    static let smallestWindow = 2 * StreamHistory.punchBlock

    public init(limit: UInt64) { self.limit = limit }

    /// Memfd bytes every history holds now, published minus punched.
    public var bytesHeld: UInt64 { held.load(ordering: .relaxed) }

    /// Histories counted now (open hubs, and closed ones a reader still holds).
    public var historyCount: Int { histories.load(ordering: .relaxed) }

    /// Whether one more history fits: the smallest windows of all, with their
    /// slack, stay within the limit. Always true without a budget.
    public var hasRoomForAnotherHistory: Bool {
        guard limit > 0 else { return true }
        let smallest = HistoryBudget.smallestWindow + HistoryBudget.slackPerHistory
        return needed.load(ordering: .relaxed) + smallest <= limit
    }

    /// The window a history may keep, given the one it wants and the one its
    /// joining players need. `previous` are the values it reported last time
    /// (replaced by these).
    func window(wanted: UInt64, needed minimum: UInt64, replacing previous: (wanted: UInt64, needed: UInt64)) -> UInt64 {
        let floor = max(minimum, HistoryBudget.smallestWindow)
        replace(self.wanted, previous.wanted, with: wanted)
        replace(self.needed, previous.needed + HistoryBudget.slackPerHistory, with: floor + HistoryBudget.slackPerHistory)
        guard limit > 0 else { return wanted }
        let count = UInt64(max(histories.load(ordering: .relaxed), 1))
        let slack = count * HistoryBudget.slackPerHistory
        // A sixteenth kept back: the hubs recompute their windows at different ticks.
        let usable = limit > slack ? (limit - slack) / 16 * 15 : 0
        let total = self.wanted.load(ordering: .relaxed)
        guard total > usable else { return wanted }
        let share = UInt64(Double(wanted) * Double(usable) / Double(total))
        return max(share, floor)
    }

    private func replace(_ sum: borrowing Atomic<UInt64>, _ old: UInt64, with new: UInt64) {
        if new > old { sum.add(new - old, ordering: .relaxed) } else if old > new { sum.subtract(old - new, ordering: .relaxed) }
    }

    // Called by `StreamHistory` only.

    func historyOpened() {
        histories.add(1, ordering: .relaxed)
        needed.add(HistoryBudget.smallestWindow + HistoryBudget.slackPerHistory, ordering: .relaxed)
    }

    func historyClosed(held bytes: UInt64, wanted window: UInt64, needed minimum: UInt64) {
        histories.subtract(1, ordering: .relaxed)
        held.subtract(bytes, ordering: .relaxed)
        wanted.subtract(window, ordering: .relaxed)
        needed.subtract(minimum + HistoryBudget.slackPerHistory, ordering: .relaxed)
    }

    func bytesAppended(_ count: UInt64) { held.add(count, ordering: .relaxed) }
    func bytesPunched(_ count: UInt64) { held.subtract(count, ordering: .relaxed) }
}

/// No new hub: the history budget could not hold another window.
struct HistoryBudgetExhausted: Error {
    let limit: UInt64
    var message: String {
        "the stream history budget (\(limit >> 20) MiB, --history-budget) is taken by the open streams; retry later"
    }
}
