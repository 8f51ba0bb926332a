import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Store
import Testing
@testable import ControlAPI

/// The panel's routes driven in-process: the page from the binary, the polling
/// snapshot, and `/metrics/dashboard` from samples in a real store.
@Suite struct PanelRouterTests {
    typealias Rig = ControlRouterTests.Rig

    @Test func thePageAndItsFilesAreServedFromTheBinaryWithTheTestHooks() async throws {
        try await Rig().run { client in
            let page = try await client.execute(uri: "/panel", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            let html = String(buffer: page.body)
            for hook in ["kpi-players", "kpi-streams", "kpi-engines-healthy", "kpi-engines-total", "kpi-egress-mbps", "kpi-vpn",
                         "stream-chart", "api-key-input", "loop-threshold-input", "loop-save"] {
                #expect(html.contains("data-testid=\"\(hook)\""), "no \(hook) on the page")
            }
            // Nothing from another host: every script and stylesheet is the binary's own.
            #expect(!html.contains("http://") && !html.contains("https://"))
            let script = try await client.execute(uri: "/panel/panel.js", method: .get)
            #expect(script.status == .ok)
            #expect(script.headers[.contentType]?.hasPrefix("text/javascript") == true)
            #expect(String(buffer: script.body).contains("EventSource"))
            let style = try await client.execute(uri: "/api/v1/panel/panel.css", method: .get)
            #expect(style.headers[.contentType]?.hasPrefix("text/css") == true)
        }
    }

    @Test func theSnapshotHasTheKPIsEnginesAndStreams() async throws {
        try await Rig().run { client in
            let response = try await client.execute(uri: "/api/v1/panel/snapshot", method: .get)
            #expect(response.status == .ok)
            let json = try #require(ControlRouterTests.json(response))
            let kpis = try #require(json["kpis"] as? [String: Any])
            #expect(kpis["engines_total"] as? Int == 1)
            #expect(kpis["engines_healthy"] as? Int == 0)
            #expect(kpis["players"] as? Int == 0)
            #expect((json["engines"] as? [[String: Any]])?.first?["container_id"] as? String == Rig.engineURL)
            #expect((json["streams"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func liveEventsWithoutLiveUpdatesAreNotFound() async throws {
        try await Rig().run { client in
            let response = try await client.execute(uri: "/api/v1/events/live", method: .get)
            #expect(response.status == .notFound)
        }
    }

    @Test func theDashboardHistoryComesFromStoredSamplesWithinTheWindowAndPointLimit() async throws {
        let rig = try Rig()
        let now = Date()
        // 100 samples 5 s apart over the last 500 s, and one older than any window asked for below.
        for i in 0..<100 {
            try await rig.plane.store.saveDashboardSample(DashboardSample(
                at: now.addingTimeInterval(-Double(500 - i * 5)), egressBytesPerSecond: 250_000, ingressBytesPerSecond: 125_000,
                activeStreams: 2, activeClients: 3, firstByteP95Milliseconds: 40, cpuPercent: 12.5, memoryBytes: 50_000_000))
        }
        try await rig.plane.store.saveDashboardSample(DashboardSample(
            at: now.addingTimeInterval(-7_200), egressBytesPerSecond: 1, ingressBytesPerSecond: 1, activeStreams: 9, activeClients: 9,
            firstByteP95Milliseconds: 0, cpuPercent: 0, memoryBytes: 0))
        try await rig.run { client in
            let all = try await client.execute(uri: "/metrics/dashboard?window_seconds=900&max_points=2000", method: .get)
            #expect(all.status == .ok)
            let json = try #require(ControlRouterTests.json(all))
            let history = try #require(json["history"] as? [String: Any])
            #expect(Set(history.keys) == ["timestamps", "egressMbps", "ingressMbps", "activeStreams", "activeClients",
                                          "ttfbP95Ms", "cpuPercent", "memoryBytes"])
            #expect((history["timestamps"] as? [String])?.count == 100)
            #expect((history["egressMbps"] as? [Double])?.allSatisfy { $0 == 2.0 } == true)
            #expect((history["ingressMbps"] as? [Double])?.first == 1.0)
            #expect((history["activeClients"] as? [Int])?.first == 3)
            #expect((history["memoryBytes"] as? [Double])?.first == 50_000_000)
            #expect(json["observation_window_seconds"] as? Int == 900)

            let thinned = try await client.execute(uri: "/api/v1/metrics/dashboard?window_seconds=900&max_points=30", method: .get)
            let points = (ControlRouterTests.json(thinned)?["history"] as? [String: Any])?["timestamps"] as? [String]
            #expect(points.map { $0.count <= 30 && $0.count >= 25 } == true, "\(points?.count ?? -1) points for max_points=30")

            let bad = try await client.execute(uri: "/metrics/dashboard?window_seconds=10", method: .get)
            #expect(bad.status == .badRequest)
            #expect((ControlRouterTests.json(bad)?["detail"] as? String)?.contains("window_seconds") == true)
        }
    }

    @Test func retentionPrunesDashboardSamplesWithTheStatSamples() async throws {
        let rig = try Rig()
        let now = Date()
        for age in [10.0, 7_200] {
            try await rig.plane.store.saveDashboardSample(DashboardSample(
                at: now.addingTimeInterval(-age), egressBytesPerSecond: 0, ingressBytesPerSecond: 0, activeStreams: 0, activeClients: 0,
                firstByteP95Milliseconds: 0, cpuPercent: 0, memoryBytes: 0))
        }
        try await rig.plane.store.prune(Store.Retention(samples: 3_600), now: now)
        let left = try await rig.plane.store.dashboardSamples(since: .distantPast)
        #expect(left.count == 1)
        try? FileManager.default.removeItem(atPath: rig.directory)
    }

    /// A command name with spaces and parentheses must not shift the fields; real values come from this process.
    @Test func processUsageReadsCPUTimeAfterTheCommandNameAndResidentPages() {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 200"
        #expect(ProcessUsage.cpuSeconds(stat: stat) == 300 / ticks)
        #expect(ProcessUsage.residentBytes(statm: "1000 200 50 1 0 100 0") == 200 * Double(sysconf(Int32(_SC_PAGESIZE))))
        let own = ProcessUsage.current()
        #expect(own.residentBytes > 1_000_000)
        #expect(own.cpuSeconds > 0)
    }
}
