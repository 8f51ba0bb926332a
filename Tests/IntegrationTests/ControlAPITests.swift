import EngineSimulator
import Foundation
import Testing
@testable import RelayCore

/// The control port of the real `acerelay serve`, as orchestrator clients use it.
@Suite(.serialized) struct ControlAPITests {
    /// A running `acerelay serve` with one simulated static engine.
    final class Server: @unchecked Sendable {
        let simulator: EngineSimulator
        let process = Process()
        let streamPort: UInt16
        let apiPort: UInt16
        let dataDirectory: String

        init(apiKey: String? = nil, dataDirectory: String = ProcessTests.temporaryDirectory(), simulator existing: EngineSimulator? = nil,
             camelCaseStats: Bool = false, environment extra: [String: String] = [:]) throws {
            if let existing {
                simulator = existing
            } else {
                var configuration = EngineSimulatorConfiguration()
                configuration.camelCaseStats = camelCaseStats
                configuration.media = .synthetic(bitsPerSecond: 1_000_000)
                simulator = try EngineSimulator(configuration: configuration, logger: RelayHarness.logger)
                try simulator.start()
            }
            streamPort = try ProcessTests.freePort()
            apiPort = try ProcessTests.freePort()
            self.dataDirectory = dataDirectory
            process.executableURL = ProcessTests.executable
            process.arguments = ["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                 "--engine", "http://127.0.0.1:\(simulator.port)", "--data-dir", dataDirectory,
                                 "--provision", "off", "--grace-period", "1", "--log-level", "warning"]
            var environment = ProcessInfo.processInfo.environment
            environment["API_KEY"] = apiKey
            environment["HEALTH_CHECK_INTERVAL_S"] = "1"
            environment["COLLECT_INTERVAL_S"] = "1"
            environment.merge(extra) { _, new in new }
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let port = apiPort
            guard eventually(timeout: 15, { (try? TestPlayer(port: port, request: "")) != nil }) else { throw TestError("control port never opened") }
        }

        func stop() {
            if process.isRunning {
                kill(process.processIdentifier, SIGTERM)
                process.waitUntilExit()
            }
        }

        /// One request on the control port: status, headers and the parsed JSON body.
        func call(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) throws -> (status: Int, headers: [String: String], json: Any?) {
            let response = try TestHTTP.request(method, port: apiPort, path: path, headers: headers.map { "\($0): \($1)" },
                                                body: body.map { Array($0.utf8) })
            return (response.status, response.headers, try? JSONSerialization.jsonObject(with: Data(response.body)))
        }
    }

    static let hex = "0123456789abcdef0123456789abcdef01234567"

    static func startedBody(session: String) -> String {
        """
        {"container_id":"other-proxy","engine":{"host":"127.0.0.1","port":6878},
         "stream":{"key_type":"content_id","key":"\(hex)","file_indexes":"0","seekback":0},
         "session":{"playback_session_id":"\(session)","stat_url":"http://127.0.0.1:6878/ace/stat/x/\(session)","command_url":"http://127.0.0.1:6878/ace/cmd/x/\(session)","is_live":1},
         "labels":{"stream_id":"\(hex)|\(session)"}}
        """
    }

    @Test func enginesStreamsAndStatusFollowTheRelay() throws {
        let server = try Server()
        defer { server.stop(); server.simulator.shutdown() }
        let id = RelayHarness.contentID(60)
        #expect(eventually(timeout: 5) { ((try? server.call("GET", "/engines"))?.json as? [[String: Any]])?.first?["health_status"] as? String == "healthy" })
        let player = try TestPlayer(port: server.streamPort, path: RelayHarness.path(id))
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 200)
        #expect(eventually(timeout: 3) { ((try? server.call("GET", "/streams?status=started"))?.json as? [[String: Any]])?.count == 1 })
        for prefix in ["", "/api/v1"] {
            let streams = try #require(try server.call("GET", "\(prefix)/streams?status=started").json as? [[String: Any]])
            #expect(streams.first?["key"] as? String == id)
            #expect(streams.first?["status"] as? String == "started")
            #expect((streams.first?["id"] as? String)?.hasPrefix("\(id)|") == true)
            #expect((streams.first?["started_at"] as? String)?.hasSuffix("Z") == true, "ISO 8601 with a time zone")
            let engines = try #require(try server.call("GET", "\(prefix)/engines").json as? [[String: Any]])
            #expect(engines.count == 1)
            #expect((engines.first?["streams"] as? [String])?.count == 1)
            #expect(engines.first?["version"] as? String == "3.1.70")
        }
        let status = try #require(try server.call("GET", "/orchestrator/status").json as? [String: Any])
        #expect(status["status"] as? String == "healthy")
        #expect((status["streams"] as? [String: Any])?["active"] as? Int == 1)
        #expect((status["vpn"] as? [String: Any])?["enabled"] as? Bool == false)
        #expect((status["provisioning"] as? [String: Any])?["blocked_reason_details"] != nil)
        let redirect = try server.call("GET", RelayHarness.path(id))
        #expect(redirect.status == 307)
        #expect(redirect.headers["location"] == "http://127.0.0.1:\(server.streamPort)\(RelayHarness.path(id))")
        #expect(try server.call("GET", "/engines/nope").status == 404)
        // The player leaves; after the grace period the stream is recorded as ended.
        player.waitForCloseLocally()
        #expect(eventually(timeout: 6) { ((try? server.call("GET", "/streams?status=ended"))?.json as? [[String: Any]])?.count == 1 })
    }

    @Test func theAPIKeyProtectsMutatingRoutes() throws {
        let server = try Server(apiKey: "s3cret")
        defer { server.stop(); server.simulator.shutdown() }
        let body = Self.startedBody(session: "aa11")
        let missing = try server.call("POST", "/events/stream_started", body: body)
        #expect(missing.status == 401)
        #expect((missing.json as? [String: Any])?["detail"] as? String == "missing bearer token")
        let wrong = try server.call("POST", "/events/stream_started", body: body, headers: ["Authorization": "Bearer nope"])
        #expect(wrong.status == 403)
        #expect((wrong.json as? [String: Any])?["detail"] as? String == "invalid token")
        let bad = try server.call("POST", "/events/stream_started", body: "{not json", headers: ["Authorization": "Bearer s3cret"])
        #expect(bad.status == 400)
        let incomplete = try server.call("POST", "/events/stream_started", body: "{\"container_id\":\"x\"}", headers: ["X-API-Key": "s3cret"])
        #expect(incomplete.status == 400)
        #expect(((incomplete.json as? [String: Any])?["detail"] as? String)?.contains("missing field") == true)
        let started = try server.call("POST", "/api/v1/events/stream_started", body: body, headers: ["Authorization": "Bearer s3cret"])
        #expect(started.status == 200)
        #expect((started.json as? [String: Any])?["id"] as? String == "\(Self.hex)|aa11")
        // Reads stay open.
        #expect(try server.call("GET", "/streams?container_id=other-proxy").status == 200)
        let ended = try server.call("POST", "/events/stream_ended", body: "{\"container_id\":\"other-proxy\",\"stream_id\":\"\(Self.hex)|aa11\",\"reason\":\"done\"}", headers: ["X-API-Key": "s3cret"])
        #expect(ended.status == 200)
        #expect((ended.json as? [String: Any])?["updated"] as? Bool == true)
        #expect(((ended.json as? [String: Any])?["stream"] as? [String: Any])?["status"] as? String == "ended")
        let unknown = try server.call("POST", "/events/stream_ended", body: "{\"stream_id\":\"nope\"}", headers: ["X-API-Key": "s3cret"])
        #expect(unknown.status == 404)
        let provision = try server.call("POST", "/provision/acestream", body: "{}", headers: ["X-API-Key": "s3cret"])
        #expect(provision.status == 503, "no Docker configured: a structured refusal")
        #expect(((provision.json as? [String: Any])?["detail"] as? [String: Any])?["code"] as? String == "general_error")
        #expect(try server.call("GET", "/streams?status=bogus").status == 400)
    }

    @Test func aRestartKeepsReportedStreamsAndEndsTheRelaysOwn() throws {
        let directory = ProcessTests.temporaryDirectory()
        let first = try Server(dataDirectory: directory)
        let simulator = first.simulator
        defer { simulator.shutdown() }
        #expect(try first.call("POST", "/events/stream_started", body: Self.startedBody(session: "bb22")).status == 200)
        let player = try TestPlayer(port: first.streamPort, path: RelayHarness.path(RelayHarness.contentID(61)))
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 100)
        #expect(eventually(timeout: 3) { ((try? first.call("GET", "/streams?status=started"))?.json as? [[String: Any]])?.count == 2 })
        // A crash: no clean shutdown, the relay's stream stays "started" in the store.
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        let second = try Server(dataDirectory: directory, simulator: simulator)
        defer { second.stop() }
        #expect(eventually(timeout: 5) {
            let started = (try? second.call("GET", "/streams?status=started"))?.json as? [[String: Any]]
            return started?.count == 1 && started?.first?["container_id"] as? String == "other-proxy"
        })
        let ended = try #require(try second.call("GET", "/streams?status=ended").json as? [[String: Any]])
        #expect(ended.count == 1)
    }

    @Test(arguments: [false, true])
    func streamStatsFollowTheEngineAndEndedSessionsAreMarkedEnded(camelCase: Bool) throws {
        let server = try Server(camelCaseStats: camelCase)
        defer { server.stop(); server.simulator.shutdown() }
        let id = RelayHarness.contentID(camelCase ? 71 : 70)
        #expect(eventually(timeout: 5) { ((try? server.call("GET", "/engines"))?.json as? [[String: Any]])?.first?["health_status"] as? String == "healthy" })
        let player = try TestPlayer(port: server.streamPort, path: RelayHarness.path(id))
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 100)
        // Within two collection intervals (plus start-up), the stream carries the engine's numbers.
        #expect(eventually(timeout: 4) {
            let streams = (try? server.call("GET", "/streams?status=started"))?.json as? [[String: Any]]
            return streams?.first?["peers"] is Int && streams?.first?["speed_down"] is Int
        })
        let stream = try #require((try server.call("GET", "/streams?status=started").json as? [[String: Any]])?.first)
        let streamID = try #require(stream["id"] as? String)
        let statURL = try #require(stream["stat_url"] as? String)
        let engineStat = try #require(try JSONSerialization.jsonObject(with: Data(try fetch(statURL).utf8)) as? [String: Any])
        let response = try #require(engineStat["response"] as? [String: Any])
        #expect(stream["peers"] as? Int == response["peers"] as? Int)
        let livepos = try #require(stream["livepos"] as? [String: Any])
        #expect((livepos["live_last"] as? Int ?? 0) > 1_600_000_000, "livepos strings read as numbers")
        let engines = try #require(try server.call("GET", "/engines").json as? [[String: Any]])
        #expect(engines.first?["total_peers"] as? Int == response["peers"] as? Int)
        // What the relay itself measures of the stream rides along.
        let relayNumbers = try #require(stream["relay"] as? [String: Any])
        #expect(relayNumbers["players"] as? Int == 1)
        #expect((relayNumbers["bytes_in"] as? Int ?? 0) > 0)
        #expect(relayNumbers["continuity_errors"] as? Int == 0)
        // The history, all of it and since a time.
        let encoded = streamID.replacingOccurrences(of: "|", with: "%7C")
        #expect(eventually(timeout: 4) { ((try? server.call("GET", "/streams/\(encoded)/stats"))?.json as? [Any])?.count ?? 0 >= 2 })
        let future = try server.call("GET", "/streams/\(encoded)/stats?since=2099-01-01T00:00:00Z")
        #expect((future.json as? [Any])?.isEmpty == true)
        #expect(try server.call("GET", "/streams/\(encoded)/stats?since=yesterday").status == 400)
        #expect(try server.call("GET", "/streams/nope/stats").status == 404)
        if !camelCase {
            // DELETE /streams/{id}: the engine session stops and the player is disconnected cleanly.
            #expect(try server.call("DELETE", "/streams/\(encoded)").status == 200)
            #expect(player.waitForClose(timeout: 5))
            #expect(eventually(timeout: 3) { server.simulator.counters(for: id).stops == 1 })
            #expect(try server.call("DELETE", "/streams/\(encoded)").status == 400, "already ended")
            #expect(try server.call("DELETE", "/streams/nope").status == 404)
            return
        }
        // The engine forgets the session: the collector marks the stream ended.
        let commandURL = try #require(stream["command_url"] as? String)
        _ = try fetch(commandURL + "?method=stop")
        #expect(eventually(timeout: 5) {
            let ended = (try? server.call("GET", "/streams?status=ended"))?.json as? [[String: Any]]
            return ended?.contains { $0["id"] as? String == streamID } == true
        })
    }

    @Test func aLoopingBroadcastIsStoppedRefusedAndReleasedThroughTheAPI() throws {
        let loopEnvironment = ["STREAM_LOOP_DETECTION_ENABLED": "true", "STREAM_LOOP_DETECTION_THRESHOLD_S": "2",
                               "STREAM_LOOP_CHECK_INTERVAL_S": "1"]
        let directory = ProcessTests.temporaryDirectory()
        let server = try Server(dataDirectory: directory, environment: loopEnvironment)
        let simulator = server.simulator
        defer { simulator.shutdown() }
        let id = RelayHarness.contentID(80)
        #expect(eventually(timeout: 5) { ((try? server.call("GET", "/engines"))?.json as? [[String: Any]])?.first?["health_status"] as? String == "healthy" })
        let player = try TestPlayer(port: server.streamPort, path: RelayHarness.path(id))
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 100)
        // The broadcaster stops: the engine's live edge freezes while bytes keep flowing.
        simulator.setFault(.frozenLiveLast, for: id)
        #expect(player.waitForClose(timeout: 12), "a looping stream's players are closed")
        #expect(eventually(timeout: 3) { simulator.counters(for: id).stops == 1 }, "and its engine session stopped")
        let listed = try #require(try server.call("GET", "/looping-streams").json as? [String: Any])
        #expect((listed["stream_ids"] as? [String]) == [id])
        #expect(((listed["streams"] as? [String: String])?[id])?.hasSuffix("Z") == true)
        // New players are refused without an engine session.
        let sessions = simulator.counters(for: id).getstreamRequests
        let refused = try TestPlayer(port: server.streamPort, path: RelayHarness.path(id))
        #expect(try refused.readHead().status == 422)
        #expect(refused.readShortBody().contains("\"code\":\"stream_looping\""))
        #expect(simulator.counters(for: id).getstreamRequests == sessions)
        // Cleared through the API, the content plays again.
        simulator.setFault(nil, for: id)
        #expect(try server.call("DELETE", "/looping-streams/\(id)").status == 200)
        #expect(try server.call("DELETE", "/looping-streams/\(id)").status == 404)
        let again = try TestPlayer(port: server.streamPort, path: RelayHarness.path(id))
        #expect(try again.readHead().status == 200)
        // Settings: validated, applied, and kept across a restart.
        #expect(try server.call("POST", "/stream-loop-detection/config?threshold_seconds=10").status == 400)
        let updated = try server.call("POST", "/stream-loop-detection/config?threshold_seconds=120&retention_minutes=5")
        #expect(updated.status == 200)
        #expect((updated.json as? [String: Any])?["threshold_seconds"] as? Int == 120)
        #expect((try server.call("POST", "/looping-streams/clear").json as? [String: Any])?["message"] as? String == "All looping streams cleared")
        again.waitForCloseLocally()
        server.stop()
        let restarted = try Server(dataDirectory: directory, simulator: simulator, environment: loopEnvironment)
        defer { restarted.stop() }
        let config = try #require(try restarted.call("GET", "/stream-loop-detection/config").json as? [String: Any])
        #expect(config["threshold_seconds"] as? Int == 120, "the API's change outlives the environment's value")
        #expect(config["retention_minutes"] as? Int == 5)
        #expect(config["enabled"] as? Bool == true)
    }

    /// The open routes a dashboard or a probe hits, each a path that answers 200.
    static func openRoutes(streamID: String, engineID: String) -> [String] {
        let stream = streamID.replacingOccurrences(of: "|", with: "%7C")
        let engine = engineID.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? engineID
        let paths = ["/engines", "/engines/\(engine)", "/streams", "/streams?status=started", "/streams/\(stream)/stats",
                     "/orchestrator/status", "/health/status", "/version", "/metrics", "/looping-streams",
                     "/stream-loop-detection/config"]
        return paths + paths.map { "/api/v1" + $0 }
    }

    /// Waits for a process to exit, at most `timeout` seconds; false if it is still running.
    static func waitForExit(_ process: Process, timeout: Double) -> Bool {
        eventually(timeout: timeout) { !process.isRunning }
    }

    @Test func fiveHundredSimultaneousReadsAreAllAnsweredAndSIGTERMStillStops() throws {
        let server = try Server()
        defer { if server.process.isRunning { kill(server.process.processIdentifier, SIGKILL) }; server.simulator.shutdown() }
        #expect(eventually(timeout: 5) { ((try? server.call("GET", "/engines"))?.json as? [[String: Any]])?.first?["health_status"] as? String == "healthy" })
        // Started streams with samples: every read then goes to the database for their latest stats.
        let player = try TestPlayer(port: server.streamPort, path: RelayHarness.path(RelayHarness.contentID(95)))
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 100)
        for n in 0..<5 {
            #expect(try server.call("POST", "/events/stream_started", body: Self.startedBody(session: "load\(n)")).status == 200)
        }
        #expect(eventually(timeout: 5) {
            ((try? server.call("GET", "/streams?status=started"))?.json as? [[String: Any]])?.contains { $0["peers"] is Int } == true
        })
        let streams = try #require(try server.call("GET", "/streams?status=started").json as? [[String: Any]])
        let streamID = try #require(streams.first { $0["peers"] is Int }?["id"] as? String)
        let engineID = try #require((try server.call("GET", "/engines").json as? [[String: Any]])?.first?["container_id"] as? String)
        let routes = Self.openRoutes(streamID: streamID, engineID: engineID)
        // All 500 requests are sent before any answer is read: 500 at once on the control port.
        var clients: [(path: String, client: TestPlayer)] = []
        var unanswered: [String] = []
        for n in 0..<500 {
            let path = routes[n % routes.count]
            // A server that stopped accepting fails here, after the kernel's connect timeout: once is enough.
            guard let client = try? TestPlayer(port: server.apiPort, request: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n") else {
                unanswered.append("request \(n) (\(path)): could not connect")
                break
            }
            clients.append((path, client))
        }
        // Every request is answered: 200, or (beyond ACERELAY_API_MAX_REQUESTS in progress)
        // 503 with Retry-After at once — never a hang.
        let deadline = Date().addingTimeInterval(60)
        var answeredOK = 0
        for (path, client) in clients {
            let head = try? client.readHead(timeout: max(deadline.timeIntervalSinceNow, 0.1))
            switch head?.status {
            case 200: answeredOK += 1
            case 503 where head?.headers["retry-after"] != nil: break
            default: unanswered.append("\(path): \(head.map { String($0.status) } ?? "no answer")")
            }
        }
        #expect(unanswered.isEmpty, "\(unanswered.count) of 500 not answered 200 or 503 with Retry-After, e.g. \(unanswered.prefix(5))")
        #expect(answeredOK >= 64, "only \(answeredOK) of 500 answered 200")
        clients.removeAll()
        // Still serving afterwards, then SIGTERM ends it cleanly.
        #expect(try server.call("GET", "/health/status").status == 200)
        let stopping = Date()
        kill(server.process.processIdentifier, SIGTERM)
        #expect(Self.waitForExit(server.process, timeout: 10), "SIGTERM ignored after the burst")
        if !server.process.isRunning {
            #expect(server.process.terminationStatus == 0)
            #expect(Date().timeIntervalSince(stopping) < 6)
        }
    }

    @Test func aLoopingStreamOfAnotherProxyIsStoppedOnItsEngine() throws {
        let server = try Server(environment: ["STREAM_LOOP_DETECTION_ENABLED": "true", "STREAM_LOOP_DETECTION_THRESHOLD_S": "2",
                                              "STREAM_LOOP_CHECK_INTERVAL_S": "1"])
        defer { server.stop(); server.simulator.shutdown() }
        let id = RelayHarness.contentID(85)
        // The other proxy opens the session on the engine itself, then reports it without a container_id.
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(try fetch("http://127.0.0.1:\(server.simulator.port)/ace/getstream?format=json&id=\(id)").utf8)) as? [String: Any])
        let session = try #require(answer["response"] as? [String: Any])
        let sessionID = try #require(session["playback_session_id"] as? String)
        let body = """
        {"engine":{"host":"127.0.0.1","port":\(server.simulator.port)},
         "stream":{"key_type":"content_id","key":"\(id)"},
         "session":{"playback_session_id":"\(sessionID)","stat_url":"\(try #require(session["stat_url"] as? String))",
                    "command_url":"\(try #require(session["command_url"] as? String))","is_live":1}}
        """
        let started = try server.call("POST", "/events/stream_started", body: body)
        #expect(started.status == 200)
        #expect((started.json as? [String: Any])?["container_id"] as? String == "http://127.0.0.1:\(server.simulator.port)")
        server.simulator.setFault(.frozenLiveLast, for: id)
        // Found looping: the engine hears stop, as the orchestrator sends it, and the stream is ended.
        #expect(eventually(timeout: 12) { server.simulator.counters(for: id).stops == 1 }, "the engine was never told to stop")
        #expect(eventually(timeout: 3) {
            ((try? server.call("GET", "/streams?status=ended"))?.json as? [[String: Any]])?.contains { $0["key"] as? String == id } == true
        })
    }

    @Test func metricsPassPromtoolAndARealPrometheusScrapesThem() throws {
        let server = try Server()
        defer { server.stop(); server.simulator.shutdown() }
        let player = try TestPlayer(port: server.streamPort, path: RelayHarness.path(RelayHarness.contentID(90)))
        #expect(try player.readHead().status == 200)
        _ = player.readBody(count: 188 * 500)
        // The exposition as a scraper gets it, linted by promtool.
        let exposition = try TestPlayer(port: server.apiPort, request: "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        let head = try exposition.readHead()
        #expect(head.status == 200)
        #expect(head.headers["content-type"]?.hasPrefix("text/plain") == true)
        let text = exposition.readShortBody()
        #expect(text.contains("acerelay_relay_players 1"))
        #expect(text.contains("acerelay_relay_sent_bytes_total"))
        #expect(!text.contains("127.0.0.1"), "no label from an unbounded set (addresses, URLs)")
        // Live memory beside RSS: malloc's bytes in use are real (more than the 1 MiB any
        // Swift process has) and below the process's whole RSS; SQLite holds some after writes.
        func gauge(_ name: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }
        let status = (try? String(contentsOfFile: "/proc/\(server.process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let rssKiB = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Double($0.split { $0 == " " || $0 == "\t" }[1]) } ?? 0
        let heap = try #require(gauge("acerelay_process_heap_in_use_bytes"))
        if !SanitizedRun.active {
            #expect(heap > 1_048_576 && heap < rssKiB * 1024, "heap in use \(heap) against RSS \(rssKiB) KiB")
        }
        #expect(try #require(gauge("acerelay_store_sqlite_memory_bytes")) > 0)
        let lint = try ChildProcess.run("/usr/bin/promtool", ["check", "metrics"], input: Array(text.utf8))
        #expect(lint.status == 0, "promtool: \(lint.output)")
        // A real Prometheus scrapes the control port and answers a query for the player count.
        let scratch = try TestDirectory("prometheus")
        let directory = scratch.path
        let config = """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: acerelay
            static_configs:
              - targets: ['127.0.0.1:\(server.apiPort)']
        """
        try config.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheusPort = try ProcessTests.freePort()
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = ["--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                                "--web.listen-address=127.0.0.1:\(prometheusPort)"]
        prometheus.standardOutput = FileHandle.nullDevice
        prometheus.standardError = FileHandle.nullDevice
        try prometheus.run()
        defer { prometheus.terminate(); prometheus.waitUntilExit() }
        #expect(eventually(timeout: 25) {
            guard let client = try? TestPlayer(port: prometheusPort, request: "GET /api/v1/query?query=acerelay_relay_players HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
                  (try? client.readHead())?.status == 200 else { return false }
            let answer = client.readShortBody()
            return answer.contains("\"acerelay_relay_players\"") && answer.contains("\"1\"]")
        }, "Prometheus never reported one player")
    }

    /// A GET to the engine itself (its stat or command URL), as a plain socket request.
    private func fetch(_ url: String) throws -> String {
        let parts = try #require(URLComponents(string: url))
        let query = parts.percentEncodedQuery.map { "?\($0)" } ?? ""
        let client = try TestPlayer(port: UInt16(try #require(parts.port)), request: "GET \(parts.percentEncodedPath)\(query) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        _ = try client.readHead()
        return client.readShortBody()
    }

    @Test func controlPlaneThreadsRunBelowTheRelayLoops() throws {
        let server = try Server()
        defer { server.stop(); server.simulator.shutdown() }
        _ = try server.call("GET", "/engines")
        // The sweep runs every 5 s; threads appear over time.
        #expect(eventually(timeout: 12) {
            let threads = Self.threadNiceValues(pid: server.process.processIdentifier)
            let relay = threads.filter { $0.name.hasPrefix("relay-") }
            let others = threads.filter { !$0.name.hasPrefix("relay-") }
            return relay.count == 2 && !others.isEmpty && others.allSatisfy { other in relay.allSatisfy { $0.nice < other.nice } }
        })
    }

    static func threadNiceValues(pid: Int32) -> [(name: String, nice: Int)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { task in
            guard let name = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // Fields after "comm)": state is field 3, nice is field 19.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 16, let nice = Int(fields[16]) else { return nil }
            return (name.trimmingCharacters(in: .whitespacesAndNewlines), nice)
        }
    }
}
