import EngineFleet
import Foundation
import VPN
import RelayCore
import Store
import Streams

/// What the panel shows at one moment: the KPIs, the engines and the active
/// streams, in the shapes `/engines` and `/streams` use. The `snapshot` event
/// of `GET /events/live` and `GET /panel/snapshot` both carry it.
struct PanelSnapshot: Encodable {
    struct KPIs: Encodable {
        var players: Int
        var hubs: Int
        var streams: Int
        var egress_mbps: Double
        var ingress_mbps: Double
        var engines_healthy: Int
        var engines_total: Int
    }

    var timestamp: Date
    var kpis: KPIs
    var engines: [EngineJSON]
    var streams: [StreamJSON]
    /// `GET /events/live` clients connected now.
    var live_clients: Int
    /// The VPN as `/vpn/status` shows it.
    var vpn: VPNJSON

    static func build(plane: ControlPlane, live: LiveUpdates?, now: Date = Date()) async throws -> PanelSnapshot {
        let started = try await plane.store.streams(status: .started)
        let latest = try await plane.store.latestSamples(streamIDs: started.map(\.id), as: StatSample.self)
        let lastStarts = try await plane.store.lastStreamStarts()
        let hubs = StreamsController(plane: plane).openHubs()
        let totals = plane.relay?.totals()
        let engines = plane.fleet.engines
        let rates = live?.rates ?? (ingress: 0, egress: 0)
        let kpis = KPIs(players: totals?.players ?? 0, hubs: totals?.hubs ?? 0, streams: started.count,
                        egress_mbps: megabits(rates.egress), ingress_mbps: megabits(rates.ingress),
                        engines_healthy: engines.filter { $0.health.status == .healthy }.count, engines_total: engines.count)
        return PanelSnapshot(
            timestamp: now, kpis: kpis,
            engines: engines.map { engine in
                EngineJSON(engine: engine, streams: started.filter { $0.containerID == engine.id }, latest: latest,
                           lastStreamStart: lastStarts[engine.id])
            },
            streams: started.map { StreamJSON(stream: $0, sample: latest[$0.id], hub: hubs[$0.id]) },
            live_clients: live?.clientCount ?? 0, vpn: VPNJSON(plane.vpn?.status))
    }

    /// Bytes per second as megabits per second, to three decimals.
    static func megabits(_ bytesPerSecond: Double) -> Double { (bytesPerSecond * 8 / 1_000_000 * 1000).rounded() / 1000 }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
