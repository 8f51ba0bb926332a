import DockerEngine
import EngineFleet
import Foundation
import Testing
import VPN

/// The fleet behind a VPN, end to end: the Gluetun stand-in, real podman,
/// engine containers of the simulator, the relay in front.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct VPNFleetTests {
    typealias Rig = FleetProvisioningTests.Rig

    static func link(_ gluetun: GluetunStandIn, _ rig: Rig, restartOnReconnect: Bool = false) -> VPNFleetLink {
        let settings = VPNSettings(containerName: "gluetun", controlURL: gluetun.url, restartEnginesOnReconnect: restartOnReconnect,
                                   stableChecks: 2, requestTimeout: .seconds(1))
        let monitor = VPNMonitor(settings: settings, containerHealth: { nil }, logger: FleetProvisioningTests.logger)
        return VPNFleetLink(monitor: monitor, provisioner: rig.provisioner)
    }

    /// The P2P port in a container's command (`--port N`), nil for the engine's default.
    static func p2pPort(_ details: ContainerDetails) -> Int? {
        guard let flag = details.command.firstIndex(of: "--port"), flag + 1 < details.command.count else { return nil }
        return Int(details.command[flag + 1])
    }

    @Test func aDownTunnelRefusesProvisioningWhileAPlayerKeepsItsRate() async throws {
        try await PodmanService.with { podman in
            let gluetun = try await GluetunStandIn.start()
            defer { gluetun.stop() }
            let rig = try Rig(podman: podman, image: try await FleetProvisioningTests.engineImage(podman)) { configuration in
                configuration.maxReplicas = 3
                configuration.maxStreamsPerEngine = 1
                configuration.unhealthyGracePeriod = 0
            }
            rig.startBackground()
            defer { rig.stop() }
            let link = Self.link(gluetun, rig)
            #expect(rig.provisioner.status().blocked?.code == "vpn_disconnected", "nothing starts before the first check")
            await link.checkOnce()
            #expect(rig.provisioner.status().canProvision)
            let relay = try FleetProvisioningTests.relay(rig.fleet)
            defer { relay.shutdown(timeout: 2) }

            _ = try await rig.provisioner.provision()
            _ = try await rig.provisioner.provision()
            #expect(try await rig.waitUntil(20) { rig.fleet.engines.filter { $0.health.status == .healthy }.count == 2 })

            // 2 Mbit/s of synthetic media for 10 s, the tunnel going down meanwhile.
            async let longPlay = FleetProvisioningTests.play(relay.port, 7, bytes: 188 * 100_000, timeout: 10)
            #expect(try await rig.waitUntil(10) { rig.fleet.engines.contains { $0.load == 1 } })
            let idle = try #require(rig.fleet.engines.first { $0.load == 0 })
            gluetun.set { $0.publicIP = "" }
            await link.checkOnce()
            let blocked = try #require(rig.provisioner.status().blocked)
            #expect(blocked.code == "vpn_disconnected")
            #expect(blocked.shouldWait && blocked.canRetry)
            await #expect(throws: ProvisioningError.self) { _ = try await rig.provisioner.provision() }

            // The other engine fails its probes while the tunnel is down: not replaced, not removed.
            #expect(LoopbackHTTP.get(port: idle.port, path: "/sim/fault?kind=hang")?.status == 200)
            #expect(try await rig.waitUntil(10) { rig.fleet.engine(id: idle.id)?.health.status == .unhealthy })
            let changes = try await rig.provisioner.reconcile()
            #expect(changes.provisioned == 0 && changes.removed == 0)
            #expect(try await rig.containers().count == 2)
            // A second content finds no engine and none may be started: refused at once.
            let began = ContinuousClock.now
            let refused = await FleetProvisioningTests.play(relay.port, 8, bytes: 188 * 100, timeout: 10)
            #expect(refused.status == 503)
            #expect(ContinuousClock.now - began < .seconds(3), "refused with the VPN's reason, not after the start timeout")

            let played = await longPlay
            print("VPN outage: the player received \(played.bytes) bytes in 10 s")
            #expect(played.status == 200)
            // 250 kB/s for 10 s, less the start; a player cut or stalled by the outage would fall far short.
            #expect(played.bytes >= 2_000_000, "the player kept its rate: \(played.bytes) bytes in 10 s")

            gluetun.set { $0.publicIP = "203.0.113.8" }
            await link.checkOnce()
            #expect(rig.provisioner.status().canProvision)
            let again = await FleetProvisioningTests.play(relay.port, 8, bytes: 188 * 500, timeout: 20)
            #expect(again.status == 200)
            #expect(again.bytes == 188 * 500)
        }
    }

    @Test func aNewForwardedPortStartsANewForwardedEngineAndDrainsTheOld() async throws {
        try await PodmanService.with { podman in
            let gluetun = try await GluetunStandIn.start { $0.forwardedPort = 40_001 }
            defer { gluetun.stop() }
            let rig = try Rig(podman: podman, image: try await FleetProvisioningTests.engineImage(podman)) { $0.maxReplicas = 4 }
            rig.startBackground()
            defer { rig.stop() }
            let link = Self.link(gluetun, rig)
            guard case .started(let first) = await link.checkOnce() else {
                Issue.record("no forwarded engine was started")
                return
            }
            #expect(await link.checkOnce() == .unchanged, "one forwarded engine, not one per check")
            let ordinary = try await rig.provisioner.provision().containerID
            let details = try await podman.client.inspectContainer(id: first)
            #expect(Self.p2pPort(details) == 40_001)
            #expect(details.labels["acestream.forwarded"] == "true")
            #expect(Self.p2pPort(try await podman.client.inspectContainer(id: ordinary)) == nil)
            #expect(try await rig.waitUntil(20) { rig.fleet.engines.filter { $0.health.status == .healthy }.count == 2 })

            let relay = try FleetProvisioningTests.relay(rig.fleet)
            defer { relay.shutdown(timeout: 2) }
            // The forwarded engine is preferred: the first stream goes to it, though both are free.
            async let longPlay = FleetProvisioningTests.play(relay.port, 31, bytes: 188 * 12_000, timeout: 25)
            #expect(try await rig.waitUntil(10) { rig.fleet.engine(id: first)?.load == 1 })
            #expect(rig.fleet.engine(id: ordinary)?.load == 0)

            gluetun.set { $0.forwardedPort = 40_002 }
            guard case .started(let second) = await link.checkOnce() else {
                Issue.record("the new port started no engine")
                return
            }
            #expect(rig.fleet.engine(id: first)?.draining == false, "the old one serves until the new one answers")
            // Once the new one is healthy, a check switches over and the old forwarded engine drains.
            var outcome = ForwardedEngineKeeper.Outcome.unchanged
            #expect(try await rig.waitUntil(20) {
                outcome = await link.checkOnce()
                return outcome != .unchanged
            })
            #expect(outcome == .switched(containerID: second, draining: [first]), "the ordinary engine is left alone")
            let running = try await rig.containers().filter(\.isRunning)
            #expect(Set(running.map(\.id)) == [first, ordinary, second], "make before break: the old one still serves its player")
            var ports: [Int] = []
            for container in running {
                if let port = Self.p2pPort(try await podman.client.inspectContainer(id: container.id)) { ports.append(port) }
            }
            #expect(ports.sorted() == [40_001, 40_002], "no two engines on one P2P port")
            #expect(Self.p2pPort(try await podman.client.inspectContainer(id: second)) == 40_002)
            #expect(rig.fleet.engine(id: first)?.draining == true)
            #expect(rig.fleet.engines.filter(\.forwarded).map(\.id) == [second])
            #expect(rig.fleet.engine(id: second)?.health.status == .healthy)
            // New streams go to the new forwarded engine, none to the draining one.
            let next = await FleetProvisioningTests.play(relay.port, 32, bytes: 188 * 500, timeout: 20)
            #expect(next.status == 200)
            #expect(rig.fleet.engine(id: first)?.load == 1)

            let played = await longPlay
            #expect(played.status == 200)
            #expect(played.bytes == 188 * 12_000, "the player on the drained engine finished undisturbed")
            // Once its stream ended (after the relay's grace period), the drained engine goes.
            #expect(try await rig.waitUntil(15) {
                await link.checkOnce()
                return try await rig.containers().allSatisfy { $0.id != first }
            })
            #expect(rig.fleet.engine(id: first) == nil)
        }
    }

    @Test func withRestartOnReconnectEnginesAreReplacedOnceTheTunnelIsStable() async throws {
        try await PodmanService.with { podman in
            let gluetun = try await GluetunStandIn.start()
            defer { gluetun.stop() }
            let rig = try Rig(podman: podman, image: try await FleetProvisioningTests.engineImage(podman)) { $0.maxReplicas = 3 }
            rig.startBackground()
            defer { rig.stop() }
            let link = Self.link(gluetun, rig, restartOnReconnect: true)
            await link.checkOnce()
            let old = try await rig.provisioner.provision().containerID
            gluetun.set { $0.publicIP = "" }
            await link.checkOnce()
            gluetun.set { $0.publicIP = "203.0.113.9" }
            await link.checkOnce()
            #expect(try await rig.containers().map(\.id) == [old], "one up check after an outage is not stable yet")
            await link.checkOnce()
            // Stable: a replacement starts first, then the old engine (idle) drains and goes.
            #expect(try await rig.waitUntil(20) {
                await rig.provisioner.removeDrainedIdle()
                let ids = try await rig.containers().map(\.id)
                return ids.count == 1 && ids != [old]
            })
            #expect(rig.fleet.engines.count == 1)
            #expect(rig.fleet.engine(id: old) == nil)
        }
    }
}
