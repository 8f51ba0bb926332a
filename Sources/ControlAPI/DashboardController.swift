import EngineFleet
import Foundation
import Hummingbird
import Store
import Streams

/// `GET /metrics/dashboard?window_seconds=&max_points=`: the orchestrator's
/// dashboard metrics, now and as `history` arrays from the samples the
/// dashboard sampler keeps in the store.
struct DashboardController: APIController {
    let plane: ControlPlane

    static let windowRange = 60...604_800
    static let pointsRange = 30...2_000

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("metrics/dashboard") { request, _ in
            try await dashboard(window: Self.integer(request, "window_seconds", default: 900, range: Self.windowRange),
                                maxPoints: Self.integer(request, "max_points", default: 360, range: Self.pointsRange))
        }
    }

    private static func integer(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = request.uri.queryParameters.get(name) else { return value }
        guard let parsed = Int(text), range.contains(parsed) else {
            throw APIError.badRequest("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return parsed
    }

    func dashboard(window: Int, maxPoints: Int, now: Date = Date()) async throws -> Response {
        let samples = try await plane.store.dashboardSamples(since: now.addingTimeInterval(-Double(window)))
        let started = try await plane.store.streams(status: .started)
        let latest = try await plane.store.latestSamples(streamIDs: started.map(\.id), as: StatSample.self)
        let engines = plane.fleet.engines
        let totals = plane.relay?.totals()
        let rates = plane.live?.rates ?? (ingress: 0, egress: 0)
        // Every step-th sample, the step rounded up so the history never exceeds max_points.
        let step = max(1, (samples.count + maxPoints - 1) / maxPoints)
        let points = stride(from: 0, to: samples.count, by: step).map { samples[$0] }
        let formatter = ISO8601DateFormatter()
        func mbps(_ bytesPerSecond: Double) -> Double { PanelSnapshot.megabits(bytesPerSecond) }
        let speedDown = latest.values.reduce(0) { $0 + ($1.speedDown ?? 0) }
        let speedUp = latest.values.reduce(0) { $0 + ($1.speedUp ?? 0) }
        let body: [String: Any] = [
            "timestamp": Int(now.timeIntervalSince1970),
            "north_star": ["global_active_streams": started.count, "global_egress_bandwidth_mbps": mbps(rates.egress),
                           "proxy_active_clients": totals?.players ?? 0],
            "proxy": [
                "active_clients": ["total": totals?.players ?? 0, "ts": totals?.players ?? 0, "hls": 0],
                "throughput": ["ingress_mbps": mbps(rates.ingress), "egress_mbps": mbps(rates.egress),
                               "ingress_bps": rates.ingress, "egress_bps": rates.egress,
                               "ingress_total_bytes": Double(totals?.bytesIn ?? 0), "egress_total_bytes": Double(totals?.bytesOut ?? 0)],
                "ttfb": ["p95_ms": plane.live?.firstByteP95Milliseconds(now: now) ?? 0],
            ],
            "engines": ["total": engines.count, "healthy": engines.filter { $0.health.status == .healthy }.count,
                        "unhealthy": engines.filter { $0.health.status == .unhealthy }.count,
                        "used": Set(started.map(\.containerID)).count],
            // Engines report speeds in KiB/s.
            "streams": ["active": started.count, "total_peers": latest.values.reduce(0) { $0 + ($1.peers ?? 0) },
                        "download_speed_mbps": mbps(Double(speedDown) * 1024), "upload_speed_mbps": mbps(Double(speedUp) * 1024)],
            "observation_window_seconds": window,
            "history": [
                "timestamps": points.map { formatter.string(from: $0.at) },
                "egressMbps": points.map { mbps($0.egressBytesPerSecond) },
                "ingressMbps": points.map { mbps($0.ingressBytesPerSecond) },
                "activeStreams": points.map(\.activeStreams),
                "activeClients": points.map(\.activeClients),
                "ttfbP95Ms": points.map(\.firstByteP95Milliseconds),
                "cpuPercent": points.map(\.cpuPercent),
                "memoryBytes": points.map(\.memoryBytes),
            ],
        ]
        return .rawJSON(body)
    }
}
