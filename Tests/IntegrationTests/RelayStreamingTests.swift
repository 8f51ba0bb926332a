import EngineSimulator
import Foundation
import Testing
@testable import RelayCore

@Suite(.serialized) struct RelayStreamingTests {
    @Test func fiftyPlayersShareOneSessionAndReceiveIdenticalBytes() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let id = RelayHarness.contentID(1)
        // One player starts the hub; the other 49 join the live hub together.
        let first = try harness.player(id)
        #expect(try first.readHead().status == 200)
        #expect(first.readBody(count: 188 * 100).count == 188 * 100)
        let received = concurrently(49) { _ -> [UInt8] in
            guard let player = try? harness.player(id), (try? player.readHead())?.status == 200 else { return [] }
            return player.readBody(count: 1 << 20, timeout: 15)
        }
        for data in received {
            #expect(data.count == 1 << 20)
            #expect(TSCheck.firstPID(data) == 0, "a player must start at a join point (PAT)")
            let check = TSCheck(data)
            #expect(check.misaligned == 0)
            #expect(check.continuityErrors == 0)
        }
        // Every player's bytes are one contiguous slice of the hub's single history,
        // starting at a join point: nobody got a copy of their own.
        let history = try #require(harness.relay.registry.all.first?.history)
        let stored = readHistory(history)
        for data in received where !data.isEmpty {
            let at = packetOffset(of: data.prefix(188 * 16), in: stored)
            #expect(at != nil, "a player's bytes are not in the history")
            if let at {
                #expect(stored[at...].prefix(data.count).elementsEqual(data))
            }
        }
        let counters = harness.simulator.counters(for: id)
        #expect(counters.sessionsStarted == 1)
        #expect(counters.getstreamRequests == 1)
        #expect(counters.playbackConnections == 1)
    }

    @Test func twoHundredSimultaneousFirstPlayersOpenOneSession() throws {
        let harness = try RelayHarness { relay in relay.workers = 2 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(2)
        let port = harness.port
        // Connect all first, then send every request at once.
        let players = try (0..<200).map { _ in try TestPlayer(port: port, request: "") }
        let request = "GET \(RelayHarness.path(id)) HTTP/1.1\r\nHost: x\r\n\r\n"
        let results = concurrently(200) { i -> Int in
            guard (try? players[i].send(request)) != nil, (try? players[i].readHead(timeout: 20))?.status == 200 else { return 0 }
            return players[i].readBody(count: 188 * 50, timeout: 20).count
        }
        #expect(results.allSatisfy { $0 == 188 * 50 })
        let counters = harness.simulator.counters(for: id)
        #expect(counters.sessionsStarted == 1)
        #expect(counters.getstreamRequests == 1)
    }

    @Test func headAnswersLikeAStreamWithoutOpeningASession() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let id = RelayHarness.contentID(3)
        let player = try TestPlayer(port: harness.port, path: RelayHarness.path(id), method: "HEAD")
        let head = try player.readHead()
        #expect(head.status == 200)
        #expect(head.headers["content-type"] == "video/mp2t")
        #expect(player.waitForClose(timeout: 3))
        #expect(player.readBody(count: 1, timeout: 0.2).isEmpty)
        #expect(harness.simulator.totalCounters.getstreamRequests == 0)
        #expect(harness.relay.status().hubs.isEmpty)
    }

    @Test func clientPidIsIgnoredAndTheRelayUsesItsOwn() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let id = RelayHarness.contentID(4)
        let a = try TestPlayer(port: harness.port, path: "/ace/getstream?id=\(id)&pid=111")
        #expect(try a.readHead().status == 200)
        _ = a.readBody(count: 188 * 100)
        let b = try TestPlayer(port: harness.port, path: "/ace/getstream?content_id=\(id.uppercased())&pid=222")
        #expect(try b.readHead().status == 200)
        _ = b.readBody(count: 188 * 100)
        // Were the client pids passed on, the engine would have ended the first session.
        let counters = harness.simulator.counters(for: id)
        #expect(counters.sessionsStarted == 1)
        #expect(counters.getstreamRequests == 1)
        #expect(a.readBody(count: 188 * 1000, timeout: 5).count == 188 * 1000)
    }

    @Test func twoContentsStayIndependent() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let (one, two) = (RelayHarness.contentID(5), RelayHarness.contentID(6))
        let a = try harness.player(one), b = try harness.player(two)
        #expect(try a.readHead().status == 200)
        #expect(try b.readHead().status == 200)
        #expect(a.readBody(count: 188 * 500).count == 188 * 500)
        #expect(b.readBody(count: 188 * 500).count == 188 * 500)
        #expect(harness.simulator.counters(for: one).sessionsStarted == 1)
        #expect(harness.simulator.counters(for: two).sessionsStarted == 1)
        // Leaving one content stops only its session.
        a.waitForCloseLocally()
        #expect(eventually(timeout: 6) { harness.simulator.counters(for: one).stops == 1 })
        #expect(harness.simulator.counters(for: two).stops == 0)
        let more = b.readBody(count: 188 * 2000, timeout: 5)
        #expect(more.count == 188 * 2000)
        #expect(TSCheck(more).continuityErrors == 0)
    }

    @Test func zappingBackWithinTheGracePeriodReusesTheSessionWhichStopsAfterIt() throws {
        let harness = try RelayHarness { $0.gracePeriod = 2 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(7)
        for _ in 0..<3 {
            let player = try harness.player(id)
            #expect(try player.readHead().status == 200)
            #expect(player.readBody(count: 188 * 200).count == 188 * 200)
            player.waitForCloseLocally()
            usleep(500_000)
        }
        let counters = harness.simulator.counters(for: id)
        #expect(counters.sessionsStarted == 1)
        #expect(counters.stops == 0)
        #expect(harness.hub(id)?.state == "draining")
        #expect(eventually(timeout: 5) { harness.simulator.counters(for: id).stops == 1 })
        #expect(harness.hub(id) == nil)
    }

    @Test func urlsTheEngineReturnsAreRewrittenToTheAddressItWasReachedAt() throws {
        // The engine believes it lives at an address the relay cannot reach (as a
        // container IP would be); loopback only, so a broken rewrite goes nowhere.
        let harness = try RelayHarness(simulator: {
            $0.advertisedHost = "127.0.0.2"
            $0.advertisedPort = 1
        })
        defer { harness.stop() }
        let id = RelayHarness.contentID(10)
        let player = try harness.player(id)
        #expect(try player.readHead().status == 200)
        #expect(player.readBody(count: 188 * 500, timeout: 10).count == 188 * 500)
        #expect(harness.simulator.counters(for: id).playbackConnections == 1)
    }

    @Test func observersHearAHubsLifeInOrder() throws {
        let harness = try RelayHarness { relay in relay.gracePeriod = 1 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(40)
        var player: TestPlayer? = try harness.player(id)
        #expect(try player?.readHead().status == 200)
        #expect(player?.readBody(count: 188 * 100).count == 188 * 100)
        #expect(harness.waitForEvent(timeout: 10) { event in
            if case .hubMeasured(let m) = event { return m.bytesIn > 0 && m.players == 1 && m.joinPoints > 0 }
            return false
        }, "a measurement of the live hub")
        player = nil
        #expect(harness.waitForEvent(timeout: 10) { event in
            if case .hubClosed(_, .idle) = event { return true }
            return false
        }, "the hub closes after its grace period")
        let names = harness.publishedEvents.filter { $0.hub?.content.value == id || $0.hub == nil }.compactMap { event -> String? in
            switch event {
            case .hubStarted: "hubStarted"
            case .playerJoined: "playerJoined"
            case .hubLive: "hubLive"
            case .streamStarted: "streamStarted"
            case .firstByte: "firstByte"
            case .playerLeft: "playerLeft"
            case .streamEnded: "streamEnded"
            case .hubClosed: "hubClosed"
            default: nil
            }
        }
        #expect(names == ["hubStarted", "playerJoined", "streamStarted", "hubLive", "firstByte", "playerLeft", "streamEnded", "hubClosed"])
        let serials = Set(harness.publishedEvents.compactMap { $0.hub?.serial })
        #expect(serials.count == 1, "one hub, one id")
    }

    @Test func anObserverStuckInItsHandlerNeverHoldsUpThePlayers() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let stuck = DispatchSemaphore(value: 0)
        let observer = harness.relay.events.subscribe("stuck") { _ in stuck.wait() }
        defer {
            // Cancelled first, so the released handler is not handed another event to sit on.
            observer.cancel()
            stuck.signal()
        }
        let id = RelayHarness.contentID(41)
        let players = try (0..<3).map { _ in try harness.player(id) }
        for player in players {
            #expect(try player.readHead().status == 200)
            #expect(player.readBody(count: 1 << 20, timeout: 15).count == 1 << 20)
        }
        // The harness's own observer kept up while this one sat on its first event.
        #expect(harness.waitForEvent(timeout: 5) { if case .hubMeasured = $0 { true } else { false } })
    }

    @Test func statusReportsHubsAndPlayers() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        let id = RelayHarness.contentID(8)
        let player = try harness.player(id)
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 2000)
        let status = try TestPlayer(port: harness.port, path: "/ace/status")
        #expect(try status.readHead().status == 200)
        let body = status.readShortBody()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let hubs = try #require(json["hubs"] as? [[String: Any]])
        #expect(hubs.count == 1)
        #expect(hubs.first?["content_id"] as? String == id)
        #expect(hubs.first?["state"] as? String == "live")
        #expect((hubs.first?["bytes_in"] as? Int ?? 0) > 0)
        #expect(hubs.first?["time_to_first_byte_ms_avg"] is Double, "time to first byte is measured per hub")
        #expect(hubs.first?["continuity_errors"] as? Int == 0)
        let clients = try #require(json["clients"] as? [[String: Any]])
        #expect(clients.count == 1)
        #expect(clients.first?["user_agent"] as? String == "TestPlayer/1.0")
        #expect((clients.first?["bytes_sent"] as? Int ?? 0) >= 188 * 2000)
    }

    @Test func aHotChannelIsServedFromEveryWorker() throws {
        let harness = try RelayHarness { $0.workers = 2 }
        defer { harness.stop() }
        let id = RelayHarness.contentID(9)
        let players = try (0..<24).map { _ in try harness.player(id) }
        for player in players { #expect(try player.readHead().status == 200) }
        let counts = concurrently(players.count) { players[$0].readBody(count: 188 * 500).count }
        #expect(counts.allSatisfy { $0 == 188 * 500 })
        let workers = Set(harness.relay.status().clients.map(\.worker))
        #expect(workers == [0, 1], "SO_REUSEPORT should spread 24 connections over both loops")
        #expect(harness.simulator.counters(for: id).sessionsStarted == 1)
    }
}

/// The readable part of a history, read back from its memfd.
func readHistory(_ history: StreamHistory) -> [UInt8] {
    let from = (Int(history.oldestReadable) + 187) / 188 * 188
    let count = Int(history.end) - from
    var bytes = [UInt8](repeating: 0, count: count)
    let n = bytes.withUnsafeMutableBytes { pread(history.fd, $0.baseAddress, count, off_t(from)) }
    return Array(bytes.prefix(max(n, 0)))
}

extension TestPlayer {
    /// Closes our side, as a player that goes away.
    func waitForCloseLocally() { shutdown(fd, Int32(SHUT_RDWR)) }
}
