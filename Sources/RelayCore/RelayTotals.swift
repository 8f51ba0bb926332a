import Synchronization

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
    /// Accepts that failed (each pauses accepting for 100 ms).
    public var acceptFailures: UInt64 = 0
    /// Open hubs and connected players right now.
    public var hubs = 0
    public var players = 0
}
