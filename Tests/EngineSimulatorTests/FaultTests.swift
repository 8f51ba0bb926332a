import EngineSimulator
import Foundation
import Glibc
import Testing

@Suite("Faults")
struct FaultTests {
    @Test func hangHoldsRequestsUntilCleared() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let session = try harness.getstream(id)
        harness.simulator.setFault(.hang)
        #expect(throws: TestHTTPError.timedOut) {
            try harness.get("/server/api?api_version=3&method=get_status", timeout: 0.5)
        }
        #expect(throws: TestHTTPError.timedOut) {
            try harness.get(TestHTTP.path(of: session["stat_url"] as? String ?? ""), timeout: 0.5)
        }
        #expect(throws: TestHTTPError.timedOut) {
            try harness.get("/ace/getstream?format=json&id=\(id)&pid=relay-1", timeout: 0.5)
        }
        // The control surface still answers.
        #expect(try harness.get("/sim/counters", timeout: 1).status == 200)

        harness.simulator.setFault(nil)
        #expect(try harness.get("/server/api?api_version=3&method=get_status", timeout: 1).status == 200)
    }

    @Test func hangForOneContentLeavesTheRestAnswering() throws {
        let harness = try SimulatorHarness()
        let hung = SimulatorHarness.contentID()
        harness.simulator.setFault(.hang, for: hung)
        #expect(throws: TestHTTPError.timedOut) {
            try harness.get("/ace/getstream?format=json&id=\(hung)&pid=1", timeout: 0.5)
        }
        #expect(!(try harness.getstream(SimulatorHarness.contentID()).isEmpty))
        #expect(try harness.get("/server/api?api_version=3&method=get_status", timeout: 1).status == 200)
    }

    @Test func stallSilencesPlaybackThenResumesWithoutLoss() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let stream = try harness.openPlayback(try harness.getstream(id))
        stream.read(for: 0.3)
        harness.simulator.setFault(.stall(seconds: 1), for: id)
        stream.read(for: 0.1)
        let before = stream.body.count
        stream.read(for: 0.6)
        #expect(stream.body.count == before, "bytes arrived during the stall")
        stream.read(for: 1)
        #expect(stream.body.count > before + 100_000, "the stream did not resume")

        var checker = TransportStreamChecker()
        checker.feed(stream.body)
        #expect(checker.continuityErrors == 0)
        #expect(checker.syncErrors == 0)
    }

    @Test func cleanEOFEndsTheResponseAndAReconnectContinues() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let session = try harness.getstream(id)
        let first = try harness.openPlayback(session)
        #expect(first.read(atLeast: 10_000, within: 2))
        harness.simulator.setFault(.cleanEOF, for: id)
        #expect(first.readUntilEnd(within: 2) == .terminator)
        #expect(try harness.follow(session, "stat_url").json["error"] is NSNull)

        let second = try harness.openPlayback(session)
        #expect(second.read(atLeast: 10_000, within: 2))
        // Byte for byte, the second response starts where the first stopped.
        var checker = TransportStreamChecker()
        checker.feed(first.body + second.body)
        #expect(checker.syncErrors == 0)
        #expect(checker.continuityErrors == 0)
        #expect(harness.simulator.counters(for: id).sessionsStarted == 1)
    }

    @Test func cleanEOFLeavesTheConnectionOpenForTheNextRequest() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let stream = try harness.openPlayback(try harness.getstream(id))
        #expect(stream.read(atLeast: 10_000, within: 2))
        harness.simulator.setFault(.cleanEOF, for: id)
        #expect(stream.readUntilEnd(within: 2) == .terminator)
        let first = stream.body.count

        try stream.requestAgain()
        #expect(stream.status == 200)
        #expect(stream.read(atLeast: first + 10_000, within: 2))
        var checker = TransportStreamChecker()
        checker.feed(stream.body)
        #expect(checker.syncErrors == 0)
        #expect(checker.continuityErrors == 0)
        #expect(harness.simulator.counters(for: id).playbackConnections == 2)
    }

    @Test func cleanEOFSetBeforeTheSessionHitsItsFirstResponse() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        harness.simulator.setFault(.cleanEOF, for: id)
        let stream = try harness.openPlayback(try harness.getstream(id))
        #expect(stream.readUntilEnd(within: 2) == .terminator)
    }

    @Test func garbageLandsInsideAPacketOnce() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let stream = try harness.openPlayback(try harness.getstream(id))
        #expect(stream.read(atLeast: 20_000, within: 2))
        let garbageBytes = 100
        harness.simulator.setFault(.garbage(bytes: garbageBytes), for: id)
        stream.read(for: 0.5)

        let body = stream.body
        let firstBadPacket = try #require(stride(from: 0, to: body.count - 188, by: 188).first { body[$0] != 0x47 })
        // Found one packet late: the garbage started in the middle of the packet before.
        let start = firstBadPacket - 188 + 94
        #expect(!body[start..<(start + garbageBytes)].contains(0x47))
        var checker = TransportStreamChecker()
        checker.feed(Array(body[..<start] + body[(start + garbageBytes)...]))
        #expect(checker.syncErrors == 0)
        #expect(checker.continuityErrors == 0)
    }

    @Test func frozenLiveLastStopsAdvancing() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let session = try harness.getstream(id)
        harness.simulator.setFault(.frozenLiveLast, for: id)
        func livepos() throws -> [String: Any] {
            let stat = try harness.follow(session, "stat_url").json["response"] as? [String: Any]
            return stat?["livepos"] as? [String: Any] ?? [:]
        }
        let before = try livepos()
        Thread.sleep(forTimeInterval: 1.2)
        let after = try livepos()
        for key in ["live_last", "last_ts", "last", "pos"] {
            #expect(after[key] as? String == before[key] as? String, "\(key) moved")
        }
        harness.simulator.setFault(nil, for: id)
        let thawed = Int(try livepos()["live_last"] as? String ?? "") ?? 0
        #expect(thawed > Int(before["live_last"] as? String ?? "") ?? .max)
    }

    @Test func loadErrorFailsGetstreamLikeTheEngine() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        harness.simulator.setFault(.loadError)
        let failed = try harness.get("/ace/getstream?format=json&id=\(id)&pid=1")
        #expect(failed.status == 200)
        #expect(failed.text == #"{"response":null,"error":"failed to load content"}"#)
        #expect(harness.simulator.counters(for: id) == SimulatorCounters(getstreamRequests: 1))
        harness.simulator.setFault(nil)
        #expect(!(try harness.getstream(id).isEmpty))
    }

    @Test func dieRefusesConnectionsUntilClearedThenListensOnTheSamePort() throws {
        let harness = try SimulatorHarness()
        let port = harness.port
        let session = try harness.getstream(SimulatorHarness.contentID())
        let stream = try harness.openPlayback(session)
        #expect(stream.read(atLeast: 188, within: 2))

        harness.simulator.setFault(.die)
        #expect(stream.readUntilEnd(within: 2) == .closed)
        #expect(throws: TestHTTPError.connectFailed(errno: ECONNREFUSED)) { try TestHTTPConnection(port: port) }

        harness.simulator.setFault(nil)
        #expect(harness.port == port)
        #expect(try harness.get("/server/api?api_version=3&method=get_status").status == 200)
        // The engine restarted: its old sessions are gone.
        #expect(try harness.follow(session, "stat_url").json["error"] as? String == "unknown playback session id")
    }

    @Test func dieOverHTTPRevivesItselfAfterTheGivenTime() throws {
        let harness = try SimulatorHarness()
        #expect(try harness.get("/sim/fault?kind=die&seconds=0.5").status == 200)
        Thread.sleep(forTimeInterval: 0.1)
        #expect(throws: TestHTTPError.connectFailed(errno: ECONNREFUSED)) {
            try TestHTTPConnection(port: harness.port)
        }
        Thread.sleep(forTimeInterval: 0.8)
        #expect(try harness.get("/server/api?api_version=3&method=get_status").status == 200)
    }
}
