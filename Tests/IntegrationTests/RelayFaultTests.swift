import EngineSimulator
import Foundation
import Testing
@testable import RelayCore

@Suite struct RelayFaultTests {
    @Test func engineEOFIsSurvivedWithoutDisconnectingPlayers() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let id = RelayHarness.contentID(20)
        let player = try harness.player(id)
        #expect(try player.readHead().status == 200)
        #expect(player.readBody(count: 188 * 1000).count == 188 * 1000)
        harness.simulator.setFault(.cleanEOF, for: id)
        // The stream goes on through the reconnect to the same playback URL.
        let after = player.readBody(count: 188 * 5000, timeout: 20)
        #expect(after.count == 188 * 5000)
        #expect(!player.peerClosed)
        #expect(TSCheck(after).misaligned == 0)
        #expect(eventually(timeout: 5) { (harness.hub(id)?.reconnects ?? 0) >= 1 })
        #expect(harness.simulator.counters(for: id).playbackConnections >= 2)
        #expect(harness.simulator.counters(for: id).sessionsStarted == 1)
    }

    @Test func aTenSecondStallIsSurvivedWithKeepalives() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let id = RelayHarness.contentID(21)
        let player = try harness.player(id)
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 1000)
        // Drain what is buffered, then stall the engine for 10 s.
        _ = player.drain(seconds: 1)
        harness.simulator.setFault(.stall(seconds: 10), for: id)
        let during = player.drain(seconds: 8, keep: true)
        #expect(!player.peerClosed)
        let check = TSCheck(during.data)
        #expect(check.misaligned == 0)
        #expect(check.nullPackets >= 4, "null keepalives while the engine is silent")
        // Data flows again afterwards, on the same connection.
        let after = player.drain(seconds: 6, keep: true)
        #expect(!player.peerClosed)
        #expect(TSCheck(after.data).packets - TSCheck(after.data).nullPackets > 1000)
        #expect((harness.hub(id)?.stalls ?? 0) >= 1)
    }

    @Test func garbageFromTheEngineIsResynchronised() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let id = RelayHarness.contentID(22)
        let player = try harness.player(id)
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 500)
        let errorsBefore = harness.hub(id)?.continuityErrors ?? 0
        harness.simulator.setFault(.garbage(bytes: 1_000), for: id)
        let after = player.readBody(count: 188 * 4000, timeout: 15)
        #expect(after.count == 188 * 4000)
        #expect(TSCheck(after).misaligned == 0, "players only ever get whole aligned packets")
        #expect(eventually(timeout: 3) { (harness.hub(id)?.discardedBytes ?? 0) >= 1_000 })
        // The packet the garbage landed in keeps its place (its sync byte and header are intact):
        // no packet is lost, so the burst costs no continuity error.
        #expect((harness.hub(id)?.continuityErrors ?? 0) == errorsBefore)
    }

    @Test func anEngineThatHangsAtStartGives503WithinTheStartTimeout() throws {
        let harness = try RelayHarness { relay in
            relay.startTimeout = 2
            relay.earlyHeadAfter = 30
        }
        defer { harness.stop() }
        let id = RelayHarness.contentID(23)
        harness.simulator.setFault(.hang, for: id)
        let started = Date()
        let player = try harness.player(id)
        let head = try player.readHead(timeout: 10)
        let elapsed = Date().timeIntervalSince(started)
        #expect(head.status == 503)
        #expect(elapsed < 4)
        #expect(head.headers["retry-after"] != nil)
        let body = player.readShortBody()
        #expect(body.contains("\"code\":\"engine_timeout\""))
    }

    @Test func noEngineGives503WithRetryAfter() throws {
        let harness = try RelayHarness(noEngines: true)
        defer { harness.stop() }
        let player = try harness.player(RelayHarness.contentID(24))
        let head = try player.readHead()
        #expect(head.status == 503)
        #expect(Int(head.headers["retry-after"] ?? "") != nil)
        #expect(head.headers["content-type"] == "application/json")
        #expect(player.readShortBody().contains("\"message\""))
    }

    @Test func anEngineThatRefusesTheContentMovesToAnotherEngine() throws {
        let harness = try RelayHarness(engineCount: 2)
        defer { harness.stop() }
        let id = RelayHarness.contentID(25)
        for engine in harness.engines { engine.setFault(.loadError, for: id) }
        let refused = try harness.player(id)
        #expect(try refused.readHead().status == 503)
        #expect(refused.readShortBody().contains("failed to load content"))
        // One engine recovers: the next player is served by whichever can.
        harness.engines[1].setFault(nil, for: id)
        let player = try harness.player(id)
        #expect(try player.readHead().status == 200)
        #expect(player.readBody(count: 188 * 500).count == 188 * 500)
    }

    @Test func aDeadEngineIsReplacedByAnotherWithoutDisconnectingPlayers() throws {
        let harness = try RelayHarness(engineCount: 2) { relay in
            relay.silenceTimeout = 2
        }
        defer { harness.stop() }
        let id = RelayHarness.contentID(26)
        let player = try harness.player(id)
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 500)
        let serving = harness.engines.first { $0.counters(for: id).sessionsStarted == 1 }!
        let other = harness.engines.first { $0 !== serving }!
        serving.setFault(.die)
        // Bytes alone prove nothing: the relay's history serves them for a while
        // before it notices the engine is dead. Wait for the switch itself.
        #expect(harness.waitForEvent(timeout: 20) { event in
            if case .engineSwitched(_, let from, let to) = event {
                return from.baseURL.hasSuffix(":\(serving.port)") && to.baseURL.hasSuffix(":\(other.port)")
            }
            return false
        }, "the hub moved to the other engine")
        let after = player.readBody(count: 188 * 3000, timeout: 20)
        #expect(after.count == 188 * 3000)
        #expect(!player.peerClosed)
        #expect(TSCheck(after).misaligned == 0)
        #expect(other.counters(for: id).sessionsStarted == 1)
    }

    @Test func playersOfAHubThatCannotReconnectAreClosed() throws {
        let harness = try RelayHarness { relay in
            relay.silenceTimeout = 1
            relay.reconnectTimeout = 3
        }
        defer { harness.stop() }
        let id = RelayHarness.contentID(27)
        let player = try harness.player(id)
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 500)
        harness.simulator.setFault(.die)
        #expect(player.waitForClose(timeout: 10), "a hub that lost its engine for good closes its players")
    }
}
