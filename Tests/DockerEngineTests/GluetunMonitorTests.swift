import ControlAPI
import EngineFleet
import Foundation
import Hummingbird
import Logging
import Store
import Synchronization
import Testing
import VPN
#if canImport(Glibc)
import Glibc
#endif

/// The VPN monitor against the Gluetun stand-in over real loopback HTTP, and the
/// control API staying quick while the control server is slow.
@Suite(.timeLimit(.minutes(2)))
struct GluetunMonitorTests {
    static let logger = FleetProvisioningTests.logger

    static func monitor(_ url: String, key: String? = nil, timeout: Duration = .seconds(2)) -> VPNMonitor {
        VPNMonitor(settings: VPNSettings(containerName: "gluetun", controlURL: url, apiKey: key, requestTimeout: timeout),
                   containerHealth: { nil }, logger: logger)
    }

    @Test func aWorkingTunnelIsUpWithItsForwardedPortAndTheKeyIsSent() async throws {
        let gluetun = try await GluetunStandIn.start { $0.apiKey = "k-123"; $0.forwardedPort = 41_234 }
        defer { gluetun.stop() }
        let monitor = Self.monitor(gluetun.url, key: "k-123")
        #expect(await monitor.checkOnce() == [.cameUp(publicIP: "203.0.113.7", afterOutage: false),
                                              .forwardedPortChanged(from: nil, to: 41_234)])
        #expect(monitor.status.isUp)
        #expect(monitor.status.forwardedPort == 41_234)
        // Without the key Gluetun's private routes answer 401: down, and the reason names the setting.
        let keyless = Self.monitor(gluetun.url)
        await keyless.checkOnce()
        #expect(!keyless.status.isUp)
        #expect(keyless.status.downReason?.contains("GLUETUN_API_KEY") == true)
    }

    @Test func olderReleasesWithoutPortForwardAreReadFromTheOpenVPNRoute() async throws {
        let gluetun = try await GluetunStandIn.start { $0.hasPortForwardRoute = false; $0.forwardedPort = 40_001 }
        defer { gluetun.stop() }
        let monitor = Self.monitor(gluetun.url)
        await monitor.checkOnce()
        #expect(monitor.status.forwardedPort == 40_001)
        #expect(gluetun.hits("/v1/portforward") == 1)
        #expect(gluetun.hits("/v1/openvpn/portforwarded") == 1)
        gluetun.set { $0.forwardedPort = 0 }
        #expect(await monitor.checkOnce() == [.forwardedPortChanged(from: 40_001, to: nil)], "0 means nothing is forwarded")
    }

    @Test func refusedUnavailableEmptyAndSlowAllCountAsDown() async throws {
        let gluetun = try await GluetunStandIn.start()
        defer { gluetun.stop() }
        // Time limits roomy enough for a loaded machine, far below the slow answer's delay.
        let monitor = Self.monitor(gluetun.url, timeout: .seconds(3))
        await monitor.checkOnce()
        #expect(monitor.status.isUp)

        gluetun.set { $0.failWith = 503 }
        #expect(await monitor.checkOnce() == [.wentDown(reason: "control server answered HTTP 503")])
        gluetun.set { $0.failWith = nil; $0.publicIP = "" }
        await monitor.checkOnce()
        #expect(monitor.status.downReason == "Gluetun reports no public IP (tunnel down)")
        gluetun.set { $0.publicIP = "203.0.113.9"; $0.delay = .seconds(20) }
        let began = ContinuousClock.now
        await monitor.checkOnce()
        #expect(ContinuousClock.now - began < .seconds(8), "each request is cut at its timeout, not held for the answer")
        #expect(monitor.status.downReason?.contains("timed out") == true)

        let refused = Self.monitor("http://127.0.0.1:\(try Self.closedPort())")
        await refused.checkOnce()
        #expect(refused.status.downReason?.contains("could not connect") == true)
        gluetun.set { $0.delay = .zero }
        #expect(await monitor.checkOnce() == [.cameUp(publicIP: "203.0.113.9", afterOutage: true)])
    }

    @Test func aSlowControlServerDoesNotSlowTheStatusOrTheLiveEvents() async throws {
        let gluetun = try await GluetunStandIn.start { $0.delay = .seconds(60) }
        defer { gluetun.stop() }
        // A check that waits 30 s on the control server; reads done in a fraction of that never waited for it.
        let monitor = Self.monitor(gluetun.url, timeout: .seconds(30))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-vpn-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(directory: directory)
        let fleet = EngineFleet(maxStreamsPerEngine: 3, startupTimeout: 5, failureThreshold: 2, logger: Self.logger)
        let live = LiveUpdates()
        let plane = ControlPlane(fleet: fleet, provisioner: nil, store: store, relay: nil, metrics: MetricsExporter(), apiKey: nil,
                                 version: "test", streamPort: { 0 }, live: live, vpn: monitor)
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let application = ControlServer.application(plane: plane, host: "127.0.0.1", port: 0, logger: Self.logger) { listening.yield($0) }
        let server = Task { try await application.runService() }
        defer { server.cancel() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let ticks = Task {
            while !Task.isCancelled {
                await live.tick(plane: plane)
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        defer { ticks.cancel() }
        // A check hangs on the control server for its whole timeout meanwhile.
        let check = Task { await monitor.checkOnce() }
        defer { check.cancel() }
        try await Task.sleep(for: .milliseconds(300))
        #expect(gluetun.hits("/v1/publicip/ip") == 1, "the check is waiting on the control server")
        for _ in 0..<5 {
            let began = ContinuousClock.now
            let status = LoopbackHTTP.get(port: port, path: "/orchestrator/status", timeoutSeconds: 5)
            #expect(ContinuousClock.now - began < .seconds(5))
            let body = try #require(status?.body)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            let vpn = try #require(json["vpn"] as? [String: Any])
            #expect(vpn["enabled"] as? Bool == true)
            #expect(vpn["connected"] as? Bool == false)
            #expect(vpn["health"] as? String == "unknown")
            let began2 = ContinuousClock.now
            #expect(LoopbackHTTP.get(port: port, path: "/vpn/status", timeoutSeconds: 5)?.status == 200)
            #expect(ContinuousClock.now - began2 < .seconds(5))
        }
        let began = ContinuousClock.now
        let events = await Self.read(port: port, path: "/api/v1/events/live", until: "event: snapshot", timeout: 5)
        #expect(events.contains("event: snapshot"))
        #expect(events.contains(#""vpn":{"#), "the snapshot carries the VPN for the panel")
        #expect(ContinuousClock.now - began < .seconds(5), "a snapshot arrives within a few ticks")
        #expect(monitor.status.lastCheck == nil, "the check was still waiting all along")
    }

    /// A port that nothing listens on (bound, then closed).
    static func closedPort() throws -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: 30_000...60_000)
            if FleetProvisioningTests.Rig.isFree(port) { return port }
        }
        throw PodmanServiceError("no free port found")
    }

    /// Reads a streaming response on a thread of its own until `marker` appears or `timeout` passes.
    static func read(port: Int, path: String, until marker: String, timeout: Double) async -> String {
        await withCheckedContinuation { continuation in
            Thread {
                var text = ""
                defer { continuation.resume(returning: text) }
                guard let fd = LoopbackHTTP.connected(port: port, timeoutSeconds: 1) else { return }
                defer { close(fd) }
                let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
                guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return }
                let deadline = Date().addingTimeInterval(timeout)
                var buffer = [UInt8](repeating: 0, count: 16_384)
                // Until the marked event is complete (its blank line), whatever the chunking.
                func complete() -> Bool { text.range(of: marker).map { text[$0.upperBound...].contains("\n\n") } ?? false }
                while Date() < deadline, !complete() {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n == 0 { break }
                    if n < 0 { if errno == EAGAIN || errno == EINTR { continue } else { break } }
                    text += String(decoding: buffer[0..<n], as: UTF8.self)
                }
            }.start()
        }
    }
}
