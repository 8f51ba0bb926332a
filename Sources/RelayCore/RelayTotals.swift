import Synchronization

/// One worker's running totals. Only that worker's thread adds, so the relaxed
/// atomics never contend; metrics sum all workers at scrape time.
final class WorkerCounters: Sendable {
    let bytesIn = Atomic<UInt64>(0)
    let bytesOut = Atomic<UInt64>(0)
    let skips = Atomic<UInt64>(0)
    let drops = Atomic<UInt64>(0)
    let continuityErrors = Atomic<UInt64>(0)
    let reconnects = Atomic<UInt64>(0)
    let playersServed = Atomic<UInt64>(0)
    let stalls = Atomic<UInt64>(0)
}

/// The relay's totals since start, for metrics: monotonic, whatever hubs came and went.
public struct RelayTotals: Sendable, Equatable {
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    public var skips: UInt64 = 0
    public var drops: UInt64 = 0
    public var continuityErrors: UInt64 = 0
    public var reconnects: UInt64 = 0
    public var playersServed: UInt64 = 0
    public var stalls: UInt64 = 0
    /// Open hubs and connected players right now.
    public var hubs = 0
    public var players = 0
}
