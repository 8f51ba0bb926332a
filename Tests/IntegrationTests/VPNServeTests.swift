import Foundation
import Testing

/// `acerelay serve` with `GLUETUN_*` set and the control server unreachable:
/// the VPN reads down everywhere it is shown, its key nowhere, and players of
/// a static engine keep playing.
@Suite(.serialized) struct VPNServeTests {
    static let key = "gluetun-key-not-for-eyes-4471"

    @Test func anUnreachableControlServerIsADownVPNThatStopsNoPlayer() throws {
        let deadPort = try ProcessTests.freePort()
        let server = try ControlAPITests.Server(environment: [
            "GLUETUN_CONTAINER_NAME": "gluetun", "GLUETUN_API_URL": "http://127.0.0.1:\(deadPort)",
            "GLUETUN_API_KEY": Self.key, "GLUETUN_HEALTH_CHECK_INTERVAL_S": "0.5",
        ])
        defer { server.stop() }
        var vpn: [String: Any] = [:]
        #expect(eventually(timeout: 10) {
            vpn = ((try? server.call("GET", "/vpn/status"))?.json as? [String: Any]) ?? [:]
            return vpn["status"] as? String == "down"
        })
        #expect(vpn["enabled"] as? Bool == true)
        #expect(vpn["container_name"] as? String == "gluetun")
        #expect((vpn["reason"] as? String)?.contains("could not connect") == true)
        #expect(!(vpn["last_check"] is NSNull))
        var status: [String: Any] = [:]
        #expect(eventually(timeout: 10) {
            status = ((try? server.call("GET", "/orchestrator/status"))?.json as? [String: Any]) ?? [:]
            return (status["engines"] as? [String: Any])?["healthy"] as? Int == 1
        })
        #expect(status["status"] as? String == "degraded")
        #expect((status["vpn"] as? [String: Any])?["connected"] as? Bool == false)

        let player = try TestPlayer(port: server.streamPort, path: RelayHarness.path(RelayHarness.contentID(90)))
        #expect(try player.readHead(timeout: 15).status == 200)
        #expect(player.readBody(count: 188 * 200).count == 188 * 200, "the relay plays while the VPN is down")

        for path in ["/vpn/status", "/orchestrator/status", "/metrics", "/panel/snapshot"] {
            let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            let client = try TestPlayer(port: server.apiPort, request: request)
            _ = try client.readHead()
            let body = client.readShortBody()
            #expect(!body.isEmpty, "\(path)")
            #expect(!body.contains(Self.key), "\(path) shows the Gluetun key")
            if path == "/metrics" { #expect(body.contains("acerelay_vpn_up 0")) }
        }
    }
}
