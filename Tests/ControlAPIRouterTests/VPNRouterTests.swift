import EngineFleet
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RelayCore
import Store
import Testing
import VPN
@testable import ControlAPI

/// `/vpn/status`, `/vpn/publicip`, the status's `vpn` and the VPN metrics, with a monitor fed checks by hand.
@Suite struct VPNRouterTests {
    static let gluetunKey = "gk-never-shown-7731"

    static func rig(vpn: VPNMonitor?) throws -> (ControlPlane, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-vpn-router-\(UUID().uuidString)").path
        let logger = Logger(label: "test")
        let fleet = EngineFleet(maxStreamsPerEngine: 3, startupTimeout: 5, failureThreshold: 1, logger: logger)
        let url = "http://127.0.0.1:6878"
        fleet.register(FleetEngine(endpoint: EngineEndpoint(id: url, baseURL: url), name: "engine-1", host: "127.0.0.1", port: 6878,
                                   managed: false, failureThreshold: 1, now: Date()))
        fleet.recordProbe(id: url, success: true)
        let plane = ControlPlane(fleet: fleet, provisioner: nil, store: try Store(directory: directory), relay: nil,
                                 metrics: MetricsExporter(), apiKey: nil, version: "test", streamPort: { 8080 }, vpn: vpn)
        return (plane, directory)
    }

    static func check(ip: String, port: Int?) -> VPNCheck {
        VPNCheck(containerHealth: "healthy", publicIP: .success(ip), forwardedPort: .success(port))
    }

    static func body(_ response: TestResponse) -> String { String(buffer: response.body) }

    @Test func theStatusFollowsTheTunnelInTheOrchestratorsShapesWithoutTheKey() async throws {
        let monitor = VPNMonitor(settings: VPNSettings(containerName: "gluetun", controlURL: "http://127.0.0.1:9", apiKey: Self.gluetunKey),
                                 containerHealth: { nil }, logger: Logger(label: "test"))
        let (plane, directory) = try Self.rig(vpn: monitor)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Application(router: ControlServer.router(plane: plane)).test(.router) { client in
            await monitor.apply(Self.check(ip: "198.51.100.20", port: 45_678))
            try await client.execute(uri: "/vpn/status", method: .get) { response in
                let json = try #require(ControlRouterTests.json(response))
                #expect(Set(json.keys).isSuperset(of: ["enabled", "status", "container_name", "health", "connected", "forwarded_port", "last_check"]))
                #expect(json["status"] as? String == "running")
                #expect(json["health"] as? String == "healthy")
                #expect(json["connected"] as? Bool == true)
                #expect(json["forwarded_port"] as? Int == 45_678)
                #expect(json["container_name"] as? String == "gluetun")
            }
            try await client.execute(uri: "/api/v1/vpn/publicip", method: .get) { response in
                #expect(ControlRouterTests.json(response)?["public_ip"] as? String == "198.51.100.20")
            }
            try await client.execute(uri: "/orchestrator/status", method: .get) { response in
                let json = try #require(ControlRouterTests.json(response))
                #expect(json["status"] as? String == "healthy")
                let vpn = try #require(json["vpn"] as? [String: Any])
                #expect(vpn["connected"] as? Bool == true)
                #expect(vpn["forwarded_port"] as? Int == 45_678)
                #expect(vpn["container"] as? String == "gluetun")
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(Self.body(response).contains("acerelay_vpn_up 1"))
                #expect(Self.body(response).contains("acerelay_vpn_forwarded_port 45678"))
            }

            await monitor.apply(VPNCheck(containerHealth: "unhealthy", publicIP: .success(""), forwardedPort: .failure(.status(503))))
            try await client.execute(uri: "/orchestrator/status", method: .get) { response in
                let json = try #require(ControlRouterTests.json(response))
                #expect(json["status"] as? String == "degraded", "healthy engines behind a dead tunnel")
                #expect((json["vpn"] as? [String: Any])?["health"] as? String == "unhealthy")
                #expect(!Self.body(response).contains(Self.gluetunKey))
            }
            try await client.execute(uri: "/vpn/status", method: .get) { response in
                let json = try #require(ControlRouterTests.json(response))
                #expect(json["status"] as? String == "down")
                #expect(json["connected"] as? Bool == false)
                #expect(json["public_ip"] is NSNull)
                #expect((json["reason"] as? String)?.contains("unhealthy") == true)
                #expect(json["forwarded_port"] as? Int == 45_678, "a failed port lookup keeps the last port")
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(Self.body(response).contains("acerelay_vpn_up 0"))
                #expect(!Self.body(response).contains(Self.gluetunKey))
            }
            try await client.execute(uri: "/panel/snapshot", method: .get) { response in
                let vpn = try #require(ControlRouterTests.json(response)?["vpn"] as? [String: Any])
                #expect(vpn["connected"] as? Bool == false)
                #expect(!Self.body(response).contains(Self.gluetunKey))
            }
        }
    }

    @Test func withoutAVPNTheStatusSaysDisabled() async throws {
        let (plane, directory) = try Self.rig(vpn: nil)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Application(router: ControlServer.router(plane: plane)).test(.router) { client in
            try await client.execute(uri: "/vpn/status", method: .get) { response in
                let json = try #require(ControlRouterTests.json(response))
                #expect(json["enabled"] as? Bool == false)
                #expect(json["status"] as? String == "disabled")
                #expect(json["forwarded_port"] is NSNull)
            }
            try await client.execute(uri: "/vpn/publicip", method: .get) { response in #expect(response.status == .notFound) }
            try await client.execute(uri: "/orchestrator/status", method: .get) { response in
                #expect(ControlRouterTests.json(response)?["status"] as? String == "healthy")
                #expect((ControlRouterTests.json(response)?["vpn"] as? [String: Any])?["enabled"] as? Bool == false)
            }
        }
    }
}
