import Foundation
import Store
import Locking

/// Appends one `dashboard_samples` row per call, for `GET /metrics/dashboard`'s
/// history: throughput averaged since the previous call, the active streams
/// and players, the first-byte p95, and this process's CPU and memory.
public final class DashboardSampler: Sendable {
    private struct Previous {
        var rates = RateMeter()
        var cpu: (at: Date, seconds: Double)?
    }

    private let plane: ControlPlane
    private let previous = Locked(Previous())

    public init(plane: ControlPlane) { self.plane = plane }

    public func sampleOnce(now: Date = Date()) async throws {
        let active = try await plane.store.streams(status: .started).count
        let totals = plane.relay?.totals()
        let usage = ProcessUsage.current()
        let (rates, cpuPercent) = previous.withLock { previous in
            let rates = totals.map { previous.rates.rates(at: now, bytesIn: $0.bytesIn, bytesOut: $0.bytesOut) } ?? (ingress: 0, egress: 0)
            var percent = 0.0
            if let last = previous.cpu, now > last.at {
                percent = max(usage.cpuSeconds - last.seconds, 0) / now.timeIntervalSince(last.at) * 100
            }
            previous.cpu = (now, usage.cpuSeconds)
            return (rates, percent)
        }
        try await plane.store.saveDashboardSample(DashboardSample(
            at: now, egressBytesPerSecond: rates.egress, ingressBytesPerSecond: rates.ingress, activeStreams: active,
            activeClients: totals?.players ?? 0, firstByteP95Milliseconds: plane.live?.firstByteP95Milliseconds(now: now) ?? 0,
            cpuPercent: (cpuPercent * 100).rounded() / 100, memoryBytes: usage.residentBytes))
    }
}
