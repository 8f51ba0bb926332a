import EngineSimulator
import Foundation
import Testing
@testable import RelayCore

/// Runs the real `acerelay` executable, as systemd or a user would.
@Suite struct ProcessTests {
    /// The executable SwiftPM built beside this test bundle.
    static var executable: URL { ChildProcess.built("acerelay") }

    static func freePort() throws -> UInt16 { try Loopback.freePort() }

    /// A new data directory, removed when the test process exits.
    static func temporaryDirectory() -> String { TestDirectory.path("serve") }

    private func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, errors)
    }

    @Test func sigtermStopsEveryEngineSessionAndExitsZero() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build acerelay first: \(Self.executable.path)")
        var configuration = EngineSimulatorConfiguration()
        configuration.media = .synthetic(bitsPerSecond: 2_000_000)
        let simulator = try EngineSimulator(configuration: configuration, logger: RelayHarness.logger)
        try simulator.start()
        defer { simulator.shutdown() }
        let port = try Self.freePort()
        let (process, _) = try run(["serve", "--listen", "127.0.0.1:\(port)", "--engine", "http://127.0.0.1:\(simulator.port)", "--workers", "2",
                                    "--log-level", "warning", "--api-listen", "127.0.0.1:0", "--data-dir", Self.temporaryDirectory(), "--provision", "off"])
        defer { if process.isRunning { process.terminate() } }
        var players: [TestPlayer] = []
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: port, request: "")) != nil })
        for n in [40, 41] {
            let player = try TestPlayer(port: port, path: RelayHarness.path(RelayHarness.contentID(n)))
            #expect(try player.readHead().status == 200)
            #expect(player.readBody(count: 188 * 100).count == 188 * 100)
            players.append(player)
        }
        #expect(simulator.totalCounters.activeSessions == 2)
        let started = Date()
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(process.terminationStatus == 0)
        #expect(simulator.totalCounters.stops == 2)
        for player in players { #expect(player.waitForClose(timeout: 2)) }
    }

    @Test func demoPlaysAndShowsItsNumbersThenStopsAfterItsDuration() throws {
        let media = try #require(RealPlayerTests.media, "ffmpeg must be installed to make the test media")
        let (streamPort, apiPort) = (try Self.freePort(), try Self.freePort())
        let (process, _) = try run(["demo", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                    "--media", media, "--duration", "14", "--log-level", "warning"])
        defer { if process.isRunning { process.terminate() } }
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: apiPort, request: "")) != nil })
        let player = try TestPlayer(port: streamPort, path: "/ace/getstream?id=0123456789abcdef0123456789abcdef01234567")
        #expect(try player.readHead().status == 200)
        #expect(TSCheck(player.readBody(count: 188 * 2000)).continuityErrors == 0)
        let streams = try TestPlayer(port: apiPort, request: "GET /streams?status=started HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(try streams.readHead().status == 200)
        #expect(streams.readShortBody().contains("0123456789abcdef0123456789abcdef01234567"))
        let metrics = try TestPlayer(port: apiPort, request: "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(try metrics.readHead().status == 200)
        #expect(metrics.readShortBody().contains("acerelay_relay_players 1"))
        let channels = try TestPlayer(port: apiPort, request: "GET /channels HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(try channels.readHead().status == 200, "the channel service is wired")
        // The demo channel's sources get measured by the prober: the playing one
        // scored first, the one the engine refuses last with its reason.
        var sources: [[String: Any]] = []
        let measured = eventually(timeout: 12) {
            guard let demo = try? TestPlayer(port: apiPort, request: "GET /channels/demo-channel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                  (try? demo.readHead().status) == 200,
                  let object = try? JSONSerialization.jsonObject(with: Data(demo.readShortBody().utf8)) as? [String: Any],
                  let list = object["sources"] as? [[String: Any]] else { return false }
            sources = list
            return list.count == 2 && list.allSatisfy { $0["score"] is Int }
        }
        #expect(measured, "\(sources)")
        if measured {
            #expect(sources[0]["content_id"] as? String == "0123456789abcdef0123456789abcdef01234567")
            #expect((sources[0]["score"] as? Int ?? 0) > 0)
            #expect((sources[0]["facts"] as? [String: Any])?["width"] as? Int == 640)
            #expect(sources[1]["score"] as? Int == 0)
            #expect(sources[1]["reason"] as? String == "refused")
        }
        let started = Date()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(Date().timeIntervalSince(started) < 16)
    }

    /// The demo has no API key, so with no address given it listens on loopback
    /// only: both default ports appear in /proc/net/tcp as 127.0.0.1, never 0.0.0.0.
    @Test func theDemoListensOnLoopbackUnlessToldOtherwise() throws {
        func listeners() -> [String] {
            let table = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? ""
            // Field 1 is local_address (hex IP:port), field 3 the state (0A = LISTEN).
            return table.split(separator: "\n").dropFirst().compactMap { line in
                let fields = line.split(separator: " ")
                return fields.count > 3 && fields[3] == "0A" ? String(fields[1]) : nil
            }
        }
        let (stream, control) = ("1F90", "1F40")  // 8080, 8000
        let taken = listeners().filter { $0.hasSuffix(":" + stream) || $0.hasSuffix(":" + control) }
        try #require(taken.isEmpty, "ports 8080 and 8000 must be free for this test: \(taken)")
        var environment = ProcessInfo.processInfo.environment
        environment["ACERELAY_LISTEN"] = nil
        environment["ACERELAY_API_LISTEN"] = nil
        let (process, _) = try run(["demo", "--duration", "5", "--log-level", "warning"], environment: environment)
        defer { if process.isRunning { process.terminate() } }
        #expect(eventually(timeout: 15) { listeners().contains("0100007F:" + stream) && listeners().contains("0100007F:" + control) })
        #expect(!listeners().contains("00000000:" + stream))
        #expect(!listeners().contains("00000000:" + control))
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test func anInvalidOptionStopsStartUpWithOneLineNamingIt() throws {
        for (arguments, environment, option) in [
            (["serve", "--workers", "many"], [String: String](), "--workers"),
            (["serve", "--listen", "nowhere"], [:], "--listen"),
            (["serve"], ["ACERELAY_GRACE_PERIOD_S": "-4"], "ACERELAY_GRACE_PERIOD_S"),
            (["serve", "--engine", "http://a b"], [:], "--engine"),
            (["serve"], ["CHANNEL_REORDER_MARGIN": "-1"], "CHANNEL_REORDER_MARGIN"),
            (["serve"], ["M3U_TIMEOUT": "0"], "M3U_TIMEOUT"),
            (["serve"], ["ACERELAY_PUBLIC_URL": "ftp://tv.example"], "ACERELAY_PUBLIC_URL"),
            (["serve"], ["CHANNEL_PROBE_SECONDS": "0"], "CHANNEL_PROBE_SECONDS"),
            (["serve"], ["CHANNEL_PROBE_INTERVAL_S": "soon"], "CHANNEL_PROBE_INTERVAL_S"),
            (["serve"], ["CHANNEL_PROBE_CONCURRENCY": "-1"], "CHANNEL_PROBE_CONCURRENCY"),
            (["serve"], ["HLS_WINDOW": "2"], "HLS_WINDOW"),
            (["serve"], ["HLS_SEGMENT_S": "often"], "HLS_SEGMENT_S"),
            (["serve"], ["GLUETUN_CONTAINER_NAME": "gluetun", "GLUETUN_API_PORT": "0"], "GLUETUN_API_PORT"),
            (["serve"], ["GLUETUN_CONTAINER_NAME": "gluetun", "GLUETUN_API_URL": "gluetun:8001"], "GLUETUN_API_URL"),
            (["serve"], ["GLUETUN_CONTAINER_NAME": "gluetun", "GLUETUN_HEALTH_CHECK_INTERVAL_S": "0"], "GLUETUN_HEALTH_CHECK_INTERVAL_S"),
            (["serve"], ["GLUETUN_CONTAINER_NAME": "gluetun", "VPN_RESTART_ENGINES_ON_RECONNECT": "maybe"], "VPN_RESTART_ENGINES_ON_RECONNECT"),
        ] {
            let (process, errors) = try run(arguments, environment: environment)
            process.waitUntilExit()
            let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let lines = output.split(separator: "\n")
            #expect(process.terminationStatus == 2, "\(arguments)")
            #expect(lines.count == 1, "\(output)")
            #expect(output.contains(option), "\(output)")
        }
    }

    /// `--grace-period -5` (a value with a leading dash, after a space) is a bad value
    /// like any other, not a missing one: one line naming the option.
    @Test func aNegativeNumberAfterASpaceIsABadValueOnOneLine() throws {
        let options = ["--workers", "--grace-period", "--history-seconds", "--history-max-mb", "--start-timeout",
                       "--early-head-after", "--silence-timeout", "--reconnect-timeout", "--engine-timeout", "--request-timeout",
                       "--client-max-lag", "--max-streams-per-engine", "--max-streams-per-static-engine", "--drain-seconds"]
        var cases = options.map { (["serve", $0, "-5"], $0) }
        cases.append((["demo", "--duration", "-5"], "--duration"))
        cases.append((["serve", "--listen", "-5"], "--listen"))
        cases.append((["serve", "--api-listen", "-5"], "--api-listen"))
        for (arguments, option) in cases {
            let (process, errors) = try run(arguments)
            process.waitUntilExit()
            let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let lines = output.split(separator: "\n")
            #expect(process.terminationStatus == 2, "\(arguments)")
            #expect(lines.count == 1, "\(arguments): \(output)")
            #expect(output.contains(option) && output.contains("-5"), "\(output)")
        }
    }
}
