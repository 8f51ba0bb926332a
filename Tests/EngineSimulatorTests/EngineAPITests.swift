import EngineSimulator
import Foundation
import Testing

@Suite("Engine API")
struct EngineAPITests {
    @Test func getstreamAnswersLikeTheEngineWithItsAdvertisedHost() throws {
        let harness = try SimulatorHarness { $0.advertisedHost = "172.17.0.2" }
        let id = SimulatorHarness.contentID()
        let raw = try harness.get("/ace/getstream?format=json&id=\(id)&pid=p1")
        #expect(raw.status == 200)
        #expect(raw.headers["content-type"] == "application/json")
        #expect(raw.json["error"] is NSNull)
        let response = try #require(raw.json["response"] as? [String: Any])

        let infohash = try #require(response["infohash"] as? String)
        let sessionID = try #require(response["playback_session_id"] as? String)
        #expect(infohash.count == 40 && infohash.allSatisfy(\.isHexDigit))
        #expect(infohash != id)
        #expect(infohash == EngineSimulator.infohash(forContentID: id))
        #expect(!sessionID.isEmpty && sessionID.allSatisfy(\.isHexDigit))
        let base = "http://172.17.0.2:\(harness.port)"
        #expect(response["playback_url"] as? String == "\(base)/ace/r/\(infohash)/\(sessionID)")
        #expect(response["stat_url"] as? String == "\(base)/ace/stat/\(infohash)/\(sessionID)")
        #expect(response["command_url"] as? String == "\(base)/ace/cmd/\(infohash)/\(sessionID)")
        #expect(response["is_live"] as? Int == 1)
        #expect(response["is_encrypted"] as? Int == 0)
        #expect(response["client_session_id"] as? Int == -1)
    }

    @Test func advertisedPortReplacesTheBoundPortInURLs() throws {
        let harness = try SimulatorHarness {
            $0.advertisedHost = "10.0.0.9"
            $0.advertisedPort = 6878
        }
        let session = try harness.getstream(SimulatorHarness.contentID())
        #expect((session["stat_url"] as? String)?.hasPrefix("http://10.0.0.9:6878/ace/stat/") == true)
    }

    @Test func samePlayerIDGetsTheSameSessionByAnySelector() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let first = try harness.getstream(id, pid: "a")
        let again = try harness.getstream(id, pid: "a")
        let byContentID = try harness.getstream(id, pid: "a", selector: "content_id")
        let byInfohash = try harness.getstream(EngineSimulator.infohash(forContentID: id), pid: "a",
                                               selector: "infohash")
        let sessionID = try #require(first["playback_session_id"] as? String)
        #expect(again["playback_session_id"] as? String == sessionID)
        #expect(byContentID["playback_session_id"] as? String == sessionID)
        #expect(byInfohash["playback_session_id"] as? String == sessionID)
        #expect(harness.simulator.counters(for: id) == SimulatorCounters(
            getstreamRequests: 4, sessionsStarted: 1, activeSessions: 1))
        #expect(harness.simulator.counters(for: EngineSimulator.infohash(forContentID: id).uppercased())
            == harness.simulator.counters(for: id.uppercased()))
    }

    @Test func anotherPlayerIDEndsTheFirstSession() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let first = try harness.getstream(id, pid: "player-1")
        let stream = try harness.openPlayback(first)
        #expect(stream.read(atLeast: 188 * 10, within: 2))

        let second = try harness.getstream(id, pid: "player-2")
        #expect(second["playback_session_id"] as? String != first["playback_session_id"] as? String)
        // The first session's playback closes (not a clean end: the engine dropped it) ...
        #expect(stream.readUntilEnd(within: 2) == .closed)
        // ... and its stat URL no longer knows it.
        let stat = try harness.follow(first, "stat_url").json
        #expect(stat["response"] is NSNull)
        #expect(stat["error"] as? String == "unknown playback session id")
        #expect(try harness.follow(second, "stat_url").json["error"] is NSNull)

        let counters = harness.simulator.counters(for: id)
        #expect(counters.sessionsStarted == 2)
        #expect(counters.activeSessions == 1)
        #expect(counters.stops == 0)
    }

    @Test func statReportsLiveposAsStringsAndPrebufThenDl() throws {
        let harness = try SimulatorHarness { $0.prebufferSeconds = 0.3 }
        let id = SimulatorHarness.contentID()
        let session = try harness.getstream(id)
        let early = try #require(try harness.follow(session, "stat_url").json["response"] as? [String: Any])
        #expect(early["status"] as? String == "prebuf")

        let stream = try harness.openPlayback(session)
        #expect(stream.read(atLeast: 50_000, within: 2))
        Thread.sleep(forTimeInterval: 0.35)
        let raw = try harness.follow(session, "stat_url")
        #expect(raw.json["error"] is NSNull)
        let stat = try #require(raw.json["response"] as? [String: Any])
        #expect(stat["status"] as? String == "dl")
        #expect(stat["infohash"] as? String == session["infohash"] as? String)
        #expect(stat["playback_session_id"] as? String == session["playback_session_id"] as? String)
        #expect(stat["is_live"] as? Int == 1)
        #expect(stat["total_progress"] as? Int == 0)
        #expect((stat["peers"] as? Int ?? 0) > 0)
        #expect((stat["downloaded"] as? Int ?? 0) >= 50_000)
        #expect(stat["uploaded"] is Int)
        // 2 Mbit/s is about 244 KB/s.
        #expect((200...300).contains(stat["speed_down"] as? Int ?? 0))
        #expect(stat["speed_up"] is Int)
        #expect(stat["speedDown"] == nil)

        let livepos = try #require(stat["livepos"] as? [String: Any])
        for key in ["last", "live_first", "pos", "first_ts", "last_ts", "is_live", "live_last", "buffer_pieces"] {
            #expect(livepos[key] is String, "livepos.\(key) must be a string")
        }
        let liveLast = try #require(Int(livepos["live_last"] as? String ?? ""))
        let now = Int(Date().timeIntervalSince1970)
        #expect(abs(liveLast - now) <= 2)
        #expect(Int(livepos["live_first"] as? String ?? "") == liveLast - 1800)
        #expect(Int(livepos["last_ts"] as? String ?? "") == liveLast)
        #expect(livepos["is_live"] as? String == "1")
        #expect(harness.simulator.counters(for: id).statRequests == 2)
    }

    @Test func camelCaseQuirkRenamesTheSpeedKeys() throws {
        let harness = try SimulatorHarness { $0.camelCaseStats = true }
        let session = try harness.getstream(SimulatorHarness.contentID())
        let stat = try #require(try harness.follow(session, "stat_url").json["response"] as? [String: Any])
        #expect(stat["speedDown"] is Int)
        #expect(stat["speedUp"] is Int)
        #expect(stat["speed_down"] == nil)
        #expect(stat["speed_up"] == nil)
    }

    @Test func stopThroughCommandURLEndsTheSession() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        let session = try harness.getstream(id)
        let stream = try harness.openPlayback(session)
        #expect(stream.read(atLeast: 188, within: 2))

        let stop = try harness.follow(session, "command_url", query: "?method=stop")
        #expect(stop.status == 200)
        #expect(stop.text == #"{"response":"ok","error":null}"#)
        #expect(stream.readUntilEnd(within: 2) != nil)
        #expect(try harness.follow(session, "stat_url").json["error"] as? String == "unknown playback session id")
        let playback = try harness.get(TestHTTP.path(of: session["playback_url"] as? String ?? ""))
        #expect(playback.status == 404)

        // Stopping again stops nothing.
        let again = try harness.follow(session, "command_url", query: "?method=stop").json
        #expect(again["error"] as? String == "unknown playback session id")
        let counters = harness.simulator.counters(for: id)
        #expect(counters.stops == 1)
        #expect(counters.activeSessions == 0)
        #expect(counters.playbackConnections == 2)
        #expect(harness.simulator.totalCounters == counters)
    }

    @Test func statusAndVersionEndpointsAnswerLikeTheEngine() throws {
        let harness = try SimulatorHarness()
        let version = #"{"code":3017000,"platform":"linux","version":"3.1.70"}"#
        #expect(try harness.get("/server/api?api_version=3&method=get_status").text
            == #"{"result":{"playlist_loaded":true,"version":"# + version + #"},"error":null}"#)
        #expect(try harness.get("/server/api?api_version=3&method=get_network_connection_status").text
            == #"{"result":{"connected":true},"error":null}"#)
        #expect(try harness.get("/webui/api/service?method=get_version").text
            == #"{"result":"# + version + #","error":null}"#)
    }

    @Test func malformedAndUnknownRequestsGetHTTPErrors() throws {
        let harness = try SimulatorHarness()
        #expect(try harness.get("/no/such/path").status == 404)
        #expect(try harness.get("/ace/r/\(SimulatorHarness.contentID())/abcdef").status == 404)

        let garbage = try TestHTTPConnection(port: harness.port)
        garbage.send(raw: "THIS IS NOT HTTP\r\n\r\n")
        #expect(try TestHTTP.readResponse(on: garbage).status == 400)

        let post = try TestHTTPConnection(port: harness.port)
        post.sendRequest("/server/api?method=get_status", method: "POST")
        #expect(try TestHTTP.readResponse(on: post).status == 405)

        let invalid = try harness.get("/ace/getstream?format=json&id=not-an-id&pid=1").json
        #expect(invalid["response"] is NSNull)
        #expect(invalid["error"] as? String == "invalid content id")
        #expect(try harness.get("/ace/getstream?format=json&pid=1").json["error"] as? String == "missing content id")
        #expect(try harness.get("/ace/getstream?id=zz").status == 400)
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        let harness = try SimulatorHarness()
        let connection = try TestHTTPConnection(port: harness.port)
        for _ in 0..<3 {
            connection.sendRequest("/server/api?api_version=3&method=get_status", keepAlive: true)
            let response = try TestHTTP.readResponse(on: connection)
            #expect(response.status == 200)
            #expect(response.headers["connection"] == "keep-alive")
        }
    }

    @Test func controlSurfaceReportsCountersAndSetsFaults() throws {
        let harness = try SimulatorHarness()
        let id = SimulatorHarness.contentID()
        #expect(try harness.get("/sim/fault?id=\(id)&kind=loaderror").status == 200)
        #expect(try harness.getstream(id).isEmpty)
        #expect(try harness.get("/sim/fault?id=\(id)&kind=clear").status == 200)
        #expect(!(try harness.getstream(id).isEmpty))
        #expect(try harness.get("/sim/fault?kind=bogus").status == 400)
        #expect(try harness.get("/sim/fault?kind=stall").status == 400)

        let body = try harness.get("/sim/counters").body
        let report = try JSONDecoder().decode(SimulatorCountersReport.self, from: Data(body))
        #expect(report.contents[id] == SimulatorCounters(getstreamRequests: 2, sessionsStarted: 1, activeSessions: 1))
        #expect(report.total == harness.simulator.totalCounters)
    }
}

/// Several contents on one simulator, each with its own swarm and media.
@Suite struct PerContentSimulatorTests {
    @Test func statReportsEachContentsOwnSwarmAndTheDefaultForOthers() throws {
        let busy = SimulatorHarness.contentID()
        let quiet = SimulatorHarness.contentID()
        let other = SimulatorHarness.contentID()
        let harness = try SimulatorHarness { configuration in
            configuration.statsByContent = [busy: SimulatorSwarm(peers: 40, speedDownKBps: 1_200, speedUpKBps: 300),
                                            quiet: SimulatorSwarm(peers: 1, speedDownKBps: 20)]
        }
        func stat(_ id: String) throws -> [String: Any] {
            let session = try harness.getstream(id)
            // Stat answers for a session whose playback opened.
            let playback = try harness.openPlayback(session)
            defer { withExtendedLifetime(playback) {} }
            return try #require(try harness.follow(session, "stat_url").json["response"] as? [String: Any])
        }
        let a = try stat(busy), b = try stat(quiet), c = try stat(other)
        #expect(a["peers"] as? Int == 40)
        #expect(a["speed_down"] as? Int == 1_200)
        #expect(a["speed_up"] as? Int == 300)
        #expect(b["peers"] as? Int == 1)
        #expect(b["speed_down"] as? Int == 20)
        #expect(b["speed_up"] as? Int == 20 / 8)
        #expect(c["peers"] as? Int == 6, "contents without their own swarm keep the default")
    }
}
