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
    /// Connections answered 503 at `--max-players`, since start.
    public var playersRefused: UInt64 = 0
    /// Memfd bytes all histories hold now (published minus punched), and their budget (0: none).
    public var historyBytes: UInt64 = 0
    public var historyBudgetBytes: UInt64 = 0
}
