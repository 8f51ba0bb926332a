import EngineSimulator
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every bound of `acerelay serve` triggered from outside, against the real
/// binary and the engine simulator: the clear refusal, and a reference player
/// on another content that keeps its rate meanwhile.
@Suite(.serialized) struct BoundedResourcesTests {
    // MARK: Players

    @Test func thirtyConnectionsAtTwentyPlayersTurnTenAwayWith503AndTheFirstTwentyKeepTheirRate() throws {
        let rig = try BoundsRig(["--max-players", "20"])
        defer { rig.stop() }
        let reference = try rig.player(RelayHarness.contentID(300))
        var players = [reference]
        for _ in 1..<20 { players.append(try rig.player(RelayHarness.contentID(301))) }
        for player in players { #expect(try player.readHead(timeout: 15).status == 200) }

        let extra = try (0..<10).map { _ in try rig.player(RelayHarness.contentID(302)) }
        for player in extra {
            let head = try player.readHead(timeout: 5)
            #expect(head.status == 503)
            #expect(head.headers["retry-after"] != nil)
            #expect(player.readShortBody().contains("relay_full"))
        }
        // Nobody opened a hub for the refused content.
        #expect(rig.simulator.counters(for: RelayHarness.contentID(302)).getstreamRequests == 0)

        do {
            let admitted = players
            let received = concurrently(admitted.count) { admitted[$0].drain(seconds: 3).bytes }
            for (n, bytes) in received.enumerated() {
                #expect(bytes >= BoundsRig.bytesPerSecond * 3 * 8 / 10, "player \(n) got \(bytes) bytes in 3 s")
            }
        }
        // A slot given back is a slot for the next player.
        players.removeLast()
        #expect(eventually(timeout: 5) {
            guard let next = try? rig.player(RelayHarness.contentID(301)) else { return false }
            return (try? next.readHead(timeout: 5).status) == 200
        })
        #expect(rig.metric("acerelay_relay_players_refused_total").map { $0 >= 10 } == true)
    }

    /// A head that never completes holds its slot until `--request-timeout`, then
    /// gets 408 and the slot goes to the next player.
    @Test func slowHeadsHoldTheirSlotsOnlyUntilTheRequestTimeout() throws {
        let rig = try BoundsRig(["--max-players", "4", "--request-timeout", "1"])
        defer { rig.stop() }
        let slow = try (0..<4).map { _ in try TestPlayer(port: rig.streamPort, request: "GET /ace/getstream?id=") }
        usleep(100_000)
        let refused = try rig.player(RelayHarness.contentID(310))
        #expect(try refused.readHead(timeout: 5).status == 503)
        let started = Date()
        for connection in slow { #expect(try connection.readHead(timeout: 5).status == 408) }
        #expect(Date().timeIntervalSince(started) < 3)
        let player = try rig.player(RelayHarness.contentID(310))
        #expect(try player.readHead(timeout: 15).status == 200)
        #expect(player.readBody(count: 188 * 100).count == 188 * 100)
    }

    /// With 512 descriptors and 700 connections, the relay keeps descriptors for
    /// the engine's health probes: the engine stays healthy, a reference player
    /// keeps its rate, and once the flood is gone a new content plays.
    @Test func fiveHundredTwelveDescriptorsAndSevenHundredConnectionsLeaveTheEngineHealthy() throws {
        let rig = try BoundsRig([], descriptors: 512, environment: ["HEALTH_CHECK_INTERVAL_S": "1"])
        defer { rig.stop() }
        let reference = try rig.player(RelayHarness.contentID(320))
        #expect(try reference.readHead(timeout: 15).status == 200)
        #expect(eventually(timeout: 10) { rig.engineHealth() == "healthy" })

        var flood: [TestPlayer] = []
        var refused = 0
        for n in 0..<700 {
            guard let player = try? TestPlayer(port: rig.streamPort, path: RelayHarness.path(RelayHarness.contentID(321 + n % 3))) else { continue }
            flood.append(player)
        }
        for player in flood {
            if let head = try? player.readHead(timeout: 10), head.status == 503 {
                #expect(head.headers["retry-after"] != nil)
                refused += 1
            }
        }
        #expect(refused > 0, "700 connections on 512 descriptors and none was refused")
        #expect(refused < 700)
        // Several probe intervals with every player slot taken.
        let bytes = reference.drain(seconds: 4).bytes
        #expect(bytes >= BoundsRig.bytesPerSecond * 4 * 8 / 10, "the reference player got \(bytes) bytes in 4 s")
        #expect(rig.engineHealth() == "healthy")
        #expect(!rig.serve.errorLines.contains { $0.contains("marking unhealthy") || $0.contains("Too many open files") && $0.contains("probe") },
                "\(rig.serve.errorLines.suffix(5))")

        flood.removeAll()
        #expect(eventually(timeout: 10) {
            guard let fresh = try? rig.player(RelayHarness.contentID(330)), (try? fresh.readHead(timeout: 10).status) == 200 else { return false }
            return fresh.readBody(count: 188 * 100).count == 188 * 100
        }, "a new content did not play after the flood")
        #expect(rig.engineHealth() == "healthy")
    }

    // MARK: Contents per address

    @Test func oneAddressGets429AfterSixteenNewContentsWhileJoiningAnOpenStreamStillWorks() throws {
        let rig = try BoundsRig([])
        defer { rig.stop() }
        let reference = try rig.player(RelayHarness.contentID(400), source: "127.0.0.7")
        #expect(try reference.readHead(timeout: 15).status == 200)
        var held: [TestPlayer] = []
        for n in 0..<16 {
            let player = try rig.player(RelayHarness.contentID(401 + n), source: "127.0.0.5")
            #expect(try player.readHead(timeout: 15).status == 200, "content \(n + 1)")
            held.append(player)
        }
        let seventeenth = try rig.player(RelayHarness.contentID(450), source: "127.0.0.5")
        let head = try seventeenth.readHead(timeout: 5)
        #expect(head.status == 429)
        #expect(head.headers["retry-after"] != nil)
        #expect(seventeenth.readShortBody().contains("too_many_contents"))
        #expect(rig.simulator.counters(for: RelayHarness.contentID(450)).getstreamRequests == 0)

        // Joining a stream that is open is always allowed, from that address too.
        let joining = try rig.player(RelayHarness.contentID(401), source: "127.0.0.5")
        #expect(try joining.readHead(timeout: 5).status == 200)
        // Another address opens new contents as before.
        let neighbour = try rig.player(RelayHarness.contentID(450), source: "127.0.0.6")
        #expect(try neighbour.readHead(timeout: 15).status == 200)

        let bytes = reference.drain(seconds: 3).bytes
        #expect(bytes >= BoundsRig.bytesPerSecond * 3 * 8 / 10, "the reference player got \(bytes) bytes in 3 s")
    }

    // MARK: History budget

    /// Four hubs at 8 Mbit/s would keep 45 s each (180 MB); with 48 MiB for all
    /// of them the memfd bytes stay within it, and a new player still starts at a join point.
    @Test func aSmallHistoryBudgetHoldsEveryHubWithinItAndANewPlayerStillJoinsAtAJoinPoint() throws {
        let budget = 48 << 20
        let rig = try BoundsRig(["--history-budget", "48M", "--max-contents-per-address", "0"], bitsPerSecond: 8_000_000)
        defer { rig.stop() }
        var players: [TestPlayer] = []
        for n in 0..<4 {
            let player = try rig.player(RelayHarness.contentID(500 + n))
            #expect(try player.readHead(timeout: 15).status == 200)
            players.append(player)
        }
        let readers = players.map { player in Thread { _ = player.drain(seconds: 30) } }
        for reader in readers { reader.start() }

        var highest = 0
        let filled = eventually(timeout: 30) {
            guard let status = rig.status(), let held = status["history_bytes"] as? Int else { return false }
            highest = max(highest, held)
            #expect(held <= budget, "history holds \(held) bytes, over the \(budget)-byte budget")
            return held >= budget / 2
        }
        #expect(filled, "the histories never reached half the budget (at most \(highest) bytes)")
        // Keep watching a while once full: the windows stay shrunk.
        for _ in 0..<20 {
            let held = rig.status()?["history_bytes"] as? Int ?? 0
            #expect(held <= budget, "history holds \(held) bytes, over the \(budget)-byte budget")
            usleep(250_000)
        }
        #expect(rig.status()?["history_budget_bytes"] as? Int == budget)
        #expect(rig.metric("acerelay_history_budget_bytes") == Double(budget))
        #expect(rig.metric("acerelay_history_bytes").map { $0 > 0 && $0 <= Double(budget) } == true)

        let late = try rig.player(RelayHarness.contentID(501))
        #expect(try late.readHead(timeout: 5).status == 200)
        let data = late.readBody(count: 188 * 1000)
        #expect(data.count == 188 * 1000)
        #expect(TSCheck.firstPID(data) == 0, "a player must start at a join point (PAT) under the budget too")
        #expect(TSCheck(data).continuityErrors == 0)
    }

    // MARK: Engine connections

    /// Twenty hubs, each with its own engine session; once their players left and
    /// the grace period passed, no connection to the engine stays open.
    @Test func connectionsToTheEngineCloseWhenTheirHubsClose() throws {
        let rig = try BoundsRig(["--grace-period", "1", "--max-contents-per-address", "0"], environment: ["HEALTH_CHECK_INTERVAL_S": "1"])
        defer { rig.stop() }
        var players: [TestPlayer] = []
        for n in 0..<20 {
            let player = try rig.player(RelayHarness.contentID(600 + n))
            #expect(try player.readHead(timeout: 15).status == 200)
            #expect(player.readBody(count: 188 * 50).count == 188 * 50)
            players.append(player)
        }
        let during = rig.establishedConnectionsToEngine()
        #expect(during >= 20, "20 playbacks should hold 20 connections, saw \(during)")
        players.removeAll()
        #expect(eventually(timeout: 15) { (rig.status()?["streams"] as? Int) == 0 }, "the hubs did not close")
        // Stat polls may keep theirs until curl's idle limit (5 s) lets them go.
        #expect(eventually(timeout: 10) { rig.establishedConnectionsToEngine() == 0 },
                "\(rig.establishedConnectionsToEngine()) connections to the engine stayed open after their hubs closed")
        #expect(rig.simulator.totalCounters.stops == 20)
    }

    // MARK: Control API

    @Test func aJSONBodyNestedDeeperThanSixtyFourLevelsIs400BeforeDecoding() throws {
        let rig = try BoundsRig([])
        defer { rig.stop() }
        let body = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let client = try TestPlayer(port: rig.apiPort, request: "POST /events/stream_started HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        #expect(try client.readHead().status == 400)
        #expect(client.readShortBody().contains("nested deeper than 64 levels"))
        // A body within the bound still gets the decoder's own answer.
        let shallow = "{\"a\":" + String(repeating: "[", count: 10) + String(repeating: "]", count: 10) + "}"
        let other = try TestPlayer(port: rig.apiPort, request: "POST /events/stream_started HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(shallow.utf8.count)\r\n\r\n" + shallow)
        #expect(try other.readHead().status == 400)
        #expect(!other.readShortBody().contains("nested"))
    }

    /// Requests stuck on bodies that never come hold every slot: the next one is a
    /// 503 with `Retry-After` at once, and answers resume when they go.
    @Test func requestsBeyondTheControlAPIBoundAre503WithRetryAfter() throws {
        let rig = try BoundsRig([], environment: ["ACERELAY_API_MAX_REQUESTS": "4"])
        defer { rig.stop() }
        // Four requests holding a slot each: a request that got an answer at once
        // holds none (seen: one refused while the process had just started) and is replaced.
        var stuck: [TestPlayer] = []
        for _ in 0..<12 where stuck.count < 4 {
            let request = try TestPlayer(port: rig.apiPort, request: "POST /events/stream_started HTTP/1.1\r\nHost: x\r\n"
                + "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"container_id\":")
            if (try? request.readHead(timeout: 0.3)) == nil { stuck.append(request) }
        }
        try #require(stuck.count == 4)
        var seen: [Int] = []
        #expect(eventually(timeout: 5) {
            guard let client = try? TestPlayer(port: rig.apiPort, request: "GET /engines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                  let head = try? client.readHead(timeout: 2) else { return false }
            seen.append(head.status)
            return head.status == 503 && head.headers["retry-after"] == "1"
        }, "answers: \(seen)")
        stuck.removeAll()
        #expect(eventually(timeout: 5) {
            guard let client = try? TestPlayer(port: rig.apiPort, request: "GET /engines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") else { return false }
            return (try? client.readHead(timeout: 2).status) == 200
        })
    }

    /// Sixteen threads hammering the control API (each answered or refused at
    /// once) while a player keeps its rate: the relay loops do not feel it.
    @Test func aFloodOfAPIRequestsLeavesAPlayersRateAlone() throws {
        let rig = try BoundsRig([], environment: ["ACERELAY_API_MAX_REQUESTS": "8"])
        defer { rig.stop() }
        let player = try rig.player(RelayHarness.contentID(700))
        #expect(try player.readHead(timeout: 15).status == 200)
        _ = player.drain(seconds: 1)
        let loads = (0..<16).map { _ in ControlLoad(port: rig.apiPort) }
        for load in loads { load.start() }
        let bytes = player.drain(seconds: 5).bytes
        for load in loads { load.stop() }
        let answered = loads.reduce(0) { $0 + $1.answered }
        #expect(answered >= 100, "the API answered only \(answered) requests")
        #expect(bytes >= BoundsRig.bytesPerSecond * 5 * 9 / 10, "the player got \(bytes) bytes in 5 s under API load")
    }
}

/// `acerelay serve` in front of one engine simulator, with the options of a test.
final class BoundsRig {
    /// The simulator's rate unless a test asks for another.
    static let bytesPerSecond = 1_000_000 / 8
    let simulator: EngineSimulator
    let serve: ServeProcess
    let streamPort: UInt16
    let apiPort: UInt16

    /// - Parameter descriptors: runs the relay under `prlimit --nofile=N:N`.
    init(_ options: [String], bitsPerSecond: Int = 1_000_000, descriptors: Int? = nil, environment: [String: String] = [:]) throws {
        var configuration = EngineSimulatorConfiguration()
        configuration.media = .synthetic(bitsPerSecond: bitsPerSecond)
        simulator = try EngineSimulator(configuration: configuration, logger: RelayHarness.logger)
        try simulator.start()
        streamPort = try ProcessTests.freePort()
        apiPort = try ProcessTests.freePort()
        var arguments = ["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                         "--engine", "http://127.0.0.1:\(simulator.port)", "--provision", "off", "--workers", "2",
                         "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "warning"] + options
        var executable: URL?
        if let descriptors {
            arguments = ["--nofile=\(descriptors):\(descriptors)", ProcessTests.executable.path] + arguments
            executable = URL(fileURLWithPath: "/usr/bin/prlimit")
        }
        serve = try ServeProcess(arguments, environment: environment, executable: executable)
        guard eventually(timeout: 15, { (try? TestPlayer(port: streamPort, request: "")) != nil })
                && eventually(timeout: 15, { (try? TestPlayer(port: apiPort, request: "")) != nil }) else {
            serve.kill()
            simulator.shutdown()
            throw TestError("acerelay did not open its ports: \(serve.errorLines.suffix(5))")
        }
    }

    func stop() {
        serve.kill()
        simulator.shutdown()
    }

    func player(_ id: String, source: String? = nil) throws -> TestPlayer {
        try TestPlayer(port: streamPort, path: RelayHarness.path(id), source: source)
    }

    /// `/ace/status` as a JSON object.
    func status() -> [String: Any]? {
        guard let client = try? TestPlayer(port: streamPort, request: "GET /ace/status HTTP/1.1\r\nHost: x\r\n\r\n"),
              (try? client.readHead(timeout: 5).status) == 200 else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(client.readShortBody().utf8)) as? [String: Any]
    }

    /// One unlabelled sample of `/metrics`.
    func metric(_ name: String) -> Double? {
        guard let client = try? TestPlayer(port: apiPort, request: "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              (try? client.readHead(timeout: 5).status) == 200 else { return nil }
        for line in client.readShortBody().split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ")[1])
        }
        return nil
    }

    /// The simulator's health in `/engines`.
    func engineHealth() -> String? {
        guard let client = try? TestPlayer(port: apiPort, request: "GET /engines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              (try? client.readHead(timeout: 5).status) == 200,
              let engines = try? JSONSerialization.jsonObject(with: Data(client.readShortBody().utf8)) as? [[String: Any]] else { return nil }
        return engines.first?["health_status"] as? String
    }

    /// TCP connections of the relay process (not the simulator's ends) to the
    /// simulator's port in state ESTABLISHED, from /proc/net/tcp and the process's descriptors.
    func establishedConnectionsToEngine() -> Int {
        let pid = serve.relayPID
        let fds = "/proc/\(pid)/fd"
        var inodes: Set<String> = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? [] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fds)/\(entry)"), target.hasPrefix("socket:[") {
                inodes.insert(String(target.dropFirst(8).dropLast()))
            }
        }
        let remote = String(format: ":%04X", simulator.port)
        let table = procFile("/proc/\(pid)/net/tcp")
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            guard fields.count > 9 else { return false }
            return fields[2].hasSuffix(remote) && fields[3] == "01" && inodes.contains(String(fields[9]))
        }.count
    }
}

/// A /proc file's text, read to its end (they report a size of 0, so size-based reads see nothing).
func procFile(_ path: String) -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
    defer { try? handle.close() }
    return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
}
