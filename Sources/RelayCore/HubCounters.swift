import Synchronization

/// A hub's running totals, written on relay threads with relaxed atomics and
/// read at any time by status pages and metrics.
final class HubCounters: Sendable {
    let bytesIn = Atomic<UInt64>(0)
    let bytesOut = Atomic<UInt64>(0)
    let bitsPerSecond = Atomic<Int>(0)
    let continuityErrors = Atomic<UInt64>(0)
    let discardedBytes = Atomic<UInt64>(0)
    let reconnects = Atomic<UInt64>(0)
    let skips = Atomic<UInt64>(0)
    let drops = Atomic<UInt64>(0)
    let stalls = Atomic<UInt64>(0)
    let playersServed = Atomic<UInt64>(0)
    /// Players that got their first byte, and the sum of their waits in microseconds.
    let firstBytes = Atomic<UInt64>(0)
    let firstByteMicroseconds = Atomic<UInt64>(0)
}
