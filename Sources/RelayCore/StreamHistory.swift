import CSupport
import Locking
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The bytes of one hub's stream, in a memfd written append-only at an offset
/// that only grows.
///
/// Players read it with `sendfile` at their own offsets. A page handed to
/// `sendfile` stays referenced by socket queues after the call returns, so a
/// page is never written twice: memory goes back to the system by punching
/// holes far behind the live edge, in whole aligned blocks (a partial-page
/// punch would zero bytes in place).
///
/// Threads: one writer (the hub's loop) appends and trims; readers on any loop
/// load `end` and `oldestReadable` and read the file through its descriptor,
/// holding a reference to the history while they do.
///
/// The history also indexes its recent join points, dropped as the readable
/// window moves past them, so a player can find where to start; HLS segments
/// are byte ranges between two of them (`HLSSegmentIndex`).
public final class StreamHistory: Sendable {
    /// Punches happen in blocks of this size, aligned to it, so no punch ever
    /// touches part of a page (or of a huge page).
    static let punchBlock: UInt64 = 2 << 20

    /// The memfd; open for the history's whole life.
    public let fd: Int32
    private let retained: Atomic<UInt64>
    private let published = Atomic<UInt64>(0)
    private let readableFrom = Atomic<UInt64>(0)
    private let punchedUpTo = Atomic<UInt64>(0)
    /// Guarded: written by the hub's loop, read by players on any loop when they
    /// join or skip (never per packet).
    private let joinPointIndex: Locked<JoinPointIndex>

    /// Shared with every other history; nil when the history is on its own (tests).
    private let budget: HistoryBudget?
    /// What this history last told the budget it wants and needs (writer only; read at deinit).
    private let reportedWanted = Atomic<UInt64>(0)
    private let reportedNeeded = Atomic<UInt64>(HistoryBudget.smallestWindow)

    /// - Parameter retainedBytes: how much history to keep for joining and lagging players.
    /// - Parameter joinPointCapacity: join points kept at most; the oldest go first.
    /// - Parameter budget: the memory shared by every hub's history, which this one reports to.
    public init(name: String, retainedBytes: UInt64, joinPointCapacity: Int = 1024, budget: HistoryBudget? = nil) throws {
        let fd = csupport_memfd_create(name)
        guard fd >= 0 else { throw SystemError("memfd_create") }
        self.fd = fd
        retained = Atomic(max(retainedBytes, 2 * StreamHistory.punchBlock))
        joinPointIndex = Locked(JoinPointIndex(capacity: joinPointCapacity))
        self.budget = budget
        budget?.historyOpened()
    }

    /// Bytes kept behind the live edge; older bytes may be punched.
    public var retainedBytes: UInt64 { retained.load(ordering: .relaxed) }

    /// Changes how much is kept, e.g. once the bitrate is known. Writer only.
    public func retain(bytes: UInt64) {
        retained.store(max(bytes, 2 * StreamHistory.punchBlock), ordering: .relaxed)
    }

    /// Keeps `wanted` bytes, or less when the shared budget is short, never less
    /// than joining players need: two of the recent spans between join points,
    /// since a player starts at a join point only within half the window. Writer only.
    public func retain(wanted: UInt64) {
        guard let budget else {
            retain(bytes: wanted)
            return
        }
        let needed = 2 * joinPointIndex.withLock { $0.widestRecentSpan(upTo: end) } + StreamHistory.punchBlock / 2
        let window = budget.window(wanted: wanted, needed: needed,
                                   replacing: (reportedWanted.load(ordering: .relaxed), reportedNeeded.load(ordering: .relaxed)))
        reportedWanted.store(wanted, ordering: .relaxed)
        reportedNeeded.store(max(needed, HistoryBudget.smallestWindow), ordering: .relaxed)
        // Shrink by at most two punch blocks beyond what is held per call (the hub
        // calls twice a second): players lagging past the new half-window skip
        // forward at their next send before the punches reach the bytes they read.
        let from = min(retainedBytes, residentBytes)
        retain(bytes: window >= from ? window : max(window, from - min(from, 2 * StreamHistory.punchBlock)))
    }

    /// The memfd closes only when the last reader lets go of the history: a
    /// descriptor closed while another loop may still `sendfile` from it could be
    /// reused by an unrelated file and leak its bytes to a player.
    deinit {
        budget?.historyClosed(held: residentBytes, wanted: reportedWanted.load(ordering: .relaxed),
                              needed: reportedNeeded.load(ordering: .relaxed))
        Syscall.close(fd)
    }

    /// Offset one past the last byte readers may send.
    public var end: UInt64 { published.load(ordering: .acquiring) }

    /// The oldest offset still guaranteed readable; readers behind it must skip forward.
    public var oldestReadable: UInt64 { readableFrom.load(ordering: .acquiring) }

    /// Appends whole packets at the end. Writer only. Readers see them after `publish()`.
    public func append(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try Syscall.pwriteAll(fd, bytes, at: Int(offset))
    }

    /// Makes bytes up to `newEnd` visible to readers and gives back memory far behind it.
    public func publish(upTo newEnd: UInt64) {
        let previousEnd = published.exchange(newEnd, ordering: .acquiringAndReleasing)
        if newEnd > previousEnd { budget?.bytesAppended(newEnd - previousEnd) }
        let keep = retainedBytes
        guard newEnd > keep else { return }
        let floor = newEnd - keep
        readableFrom.store(floor, ordering: .releasing)
        joinPointIndex.withLock { $0.prune(before: floor) }
        // Readers are kept well ahead of `floor` (they skip at a smaller lag), so
        // punching one more block behind it cannot race a sendfile in progress.
        let punchLimit = floor > StreamHistory.punchBlock ? (floor - StreamHistory.punchBlock) / StreamHistory.punchBlock * StreamHistory.punchBlock : 0
        let from = punchedUpTo.load(ordering: .relaxed)
        if punchLimit > from {
            if csupport_punch_hole(fd, off_t(from), off_t(punchLimit - from)) == 0 {
                punchedUpTo.store(punchLimit, ordering: .relaxed)
                budget?.bytesPunched(punchLimit - from)
            }
        }
    }

    /// Records a join point of bytes appended (not necessarily published yet).
    /// Writer only; offsets must grow, an older one is ignored.
    public func recordJoinPoint(_ point: JoinPoint) {
        joinPointIndex.withLock { $0.record(point) }
    }

    /// The newest join point readers may start at, if any is published and still readable.
    public var latestJoinPoint: JoinPoint? {
        let end = end
        let floor = oldestReadable
        return joinPointIndex.withLock { index in
            var i = index.count - 1
            while i >= 0 {
                let point = index[i]
                if point.offset < floor { return nil }
                if point.offset < end { return point }
                i -= 1
            }
            return nil
        }
    }

    /// Readable, published join points with offsets in `range`, oldest first.
    public func joinPoints(in range: Range<UInt64>) -> [JoinPoint] {
        let readable = oldestReadable..<max(end, oldestReadable)
        let wanted = max(range.lowerBound, readable.lowerBound)..<max(min(range.upperBound, readable.upperBound), max(range.lowerBound, readable.lowerBound))
        return joinPointIndex.withLock { $0.points(in: wanted) }
    }

    /// Join points the index holds now (including any not yet published).
    public var joinPointCount: Int { joinPointIndex.withLock { $0.count } }

    /// Bytes of memory the history holds now (appended minus punched).
    public var residentBytes: UInt64 { end - punchedUpTo.load(ordering: .relaxed) }
}
