import Foundation
import Store
import Testing
@testable import EngineFleet

/// The one `FleetEngine` → `EngineRecord` builder carries every field the API and a restart read.
@Suite struct FleetEngineRecordTests {
    @Test func theRecordKeepsHealthUsageAndVersion() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var engine = FleetEngine(endpoint: .init(id: "c1", baseURL: "http://127.0.0.1:19001"), name: "acestream-1", host: "127.0.0.1",
                                 port: 19001, apiPort: 19002, labels: ["a": "b"], managed: true, forwarded: true,
                                 failureThreshold: 3, now: now)
        _ = engine.health.record(success: true, at: now)
        engine.lastStreamUsage = now
        engine.version = "3.1.70"
        engine.platform = "linux"
        let record = engine.record
        #expect(record.containerID == "c1")
        #expect(record.managed && record.forwarded)
        #expect(record.apiPort == 19002)
        #expect(record.healthStatus == engine.health.status.rawValue)
        #expect(record.lastHealthCheck == now)
        #expect(record.lastStreamUsage == now)
        #expect(record.version == "3.1.70")
        #expect(record.platform == "linux")
    }
}
