import Foundation
import GRDB

/// One point of the dashboard's history (`GET /metrics/dashboard`): the
/// relay's rates and counts and the process's own CPU and memory at `at`.
public struct DashboardSample: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "dashboard_samples"

    public var at: Date
    /// Bytes per second sent to players, averaged since the previous sample.
    public var egressBytesPerSecond: Double
    /// Bytes per second read from engines, averaged since the previous sample.
    public var ingressBytesPerSecond: Double
    public var activeStreams: Int
    public var activeClients: Int
    /// 95th percentile of players' time to first byte over the last minute; 0 without players.
    public var firstByteP95Milliseconds: Double
    /// This process's CPU use since the previous sample, 100 per fully used core.
    public var cpuPercent: Double
    /// This process's resident memory.
    public var memoryBytes: Double

    public init(at: Date, egressBytesPerSecond: Double, ingressBytesPerSecond: Double, activeStreams: Int, activeClients: Int,
                firstByteP95Milliseconds: Double, cpuPercent: Double, memoryBytes: Double) {
        self.at = at
        self.egressBytesPerSecond = egressBytesPerSecond
        self.ingressBytesPerSecond = ingressBytesPerSecond
        self.activeStreams = activeStreams
        self.activeClients = activeClients
        self.firstByteP95Milliseconds = firstByteP95Milliseconds
        self.cpuPercent = cpuPercent
        self.memoryBytes = memoryBytes
    }

    enum CodingKeys: String, CodingKey, ColumnExpression {
        case at, egressBytesPerSecond = "egress_bps", ingressBytesPerSecond = "ingress_bps"
        case activeStreams = "active_streams", activeClients = "active_clients"
        case firstByteP95Milliseconds = "ttfb_p95_ms", cpuPercent = "cpu_percent", memoryBytes = "memory_bytes"
    }
}

extension Store {
    public func saveDashboardSample(_ sample: DashboardSample) async throws {
        try await write { db in try sample.insert(db) }
    }

    /// The samples since `since`, oldest first.
    public func dashboardSamples(since: Date) async throws -> [DashboardSample] {
        try await read { db in
            try DashboardSample.filter(DashboardSample.CodingKeys.at >= since).order(DashboardSample.CodingKeys.at).fetchAll(db)
        }
    }

    /// Deletes dashboard samples older than `date`; returns how many.
    @discardableResult
    public func pruneDashboardSamples(before date: Date) async throws -> Int {
        try await write { db in try DashboardSample.filter(DashboardSample.CodingKeys.at < date).deleteAll(db) }
    }
}
