import Synchronization

/// What the relay counts, per hub and per worker alike.
enum RelayCount: Sendable {
    case bytesIn, bytesOut, skips, drops, continuityErrors, reconnects, stalls, playersServed
    /// Players that got their first byte, and the sum of their waits in microseconds.
    case firstBytes, firstByteMicroseconds
    /// HLS playlist and segment requests.
    case hlsPlaylistRequests, hlsSegmentRequests
}

/// Running totals, added on relay threads with relaxed atomics and read at any
/// time by status pages and metrics. A hub has one (its own numbers) and each
/// worker has one (totals that outlive hubs); `CounterScope` adds to both at once.
final class RelayCounters: Sendable {
    private let bytesIn = Atomic<UInt64>(0)
    private let bytesOut = Atomic<UInt64>(0)
    private let skips = Atomic<UInt64>(0)
    private let drops = Atomic<UInt64>(0)
    private let continuityErrors = Atomic<UInt64>(0)
    private let reconnects = Atomic<UInt64>(0)
    private let stalls = Atomic<UInt64>(0)
    private let playersServed = Atomic<UInt64>(0)
    private let firstBytes = Atomic<UInt64>(0)
    private let firstByteMicroseconds = Atomic<UInt64>(0)
    private let hlsPlaylistRequests = Atomic<UInt64>(0)
    private let hlsSegmentRequests = Atomic<UInt64>(0)

    func add(_ which: RelayCount, _ amount: UInt64 = 1) {
        switch which {
        case .bytesIn: bytesIn.add(amount, ordering: .relaxed)
        case .bytesOut: bytesOut.add(amount, ordering: .relaxed)
        case .skips: skips.add(amount, ordering: .relaxed)
        case .drops: drops.add(amount, ordering: .relaxed)
        case .continuityErrors: continuityErrors.add(amount, ordering: .relaxed)
        case .reconnects: reconnects.add(amount, ordering: .relaxed)
        case .stalls: stalls.add(amount, ordering: .relaxed)
        case .playersServed: playersServed.add(amount, ordering: .relaxed)
        case .firstBytes: firstBytes.add(amount, ordering: .relaxed)
        case .firstByteMicroseconds: firstByteMicroseconds.add(amount, ordering: .relaxed)
        case .hlsPlaylistRequests: hlsPlaylistRequests.add(amount, ordering: .relaxed)
        case .hlsSegmentRequests: hlsSegmentRequests.add(amount, ordering: .relaxed)
        }
    }

    subscript(which: RelayCount) -> UInt64 {
        switch which {
        case .bytesIn: bytesIn.load(ordering: .relaxed)
        case .bytesOut: bytesOut.load(ordering: .relaxed)
        case .skips: skips.load(ordering: .relaxed)
        case .drops: drops.load(ordering: .relaxed)
        case .continuityErrors: continuityErrors.load(ordering: .relaxed)
        case .reconnects: reconnects.load(ordering: .relaxed)
        case .stalls: stalls.load(ordering: .relaxed)
        case .playersServed: playersServed.load(ordering: .relaxed)
        case .firstBytes: firstBytes.load(ordering: .relaxed)
        case .firstByteMicroseconds: firstByteMicroseconds.load(ordering: .relaxed)
        case .hlsPlaylistRequests: hlsPlaylistRequests.load(ordering: .relaxed)
        case .hlsSegmentRequests: hlsSegmentRequests.load(ordering: .relaxed)
        }
    }
}

/// A hub's counters and its owner's or its player's worker's: each event is
/// counted in both with one call, so the two can never disagree on what is counted.
struct CounterScope {
    let hub: RelayCounters
    let worker: RelayCounters

    func add(_ which: RelayCount, _ amount: UInt64 = 1) {
        hub.add(which, amount)
        worker.add(which, amount)
    }
}
