import EngineSimulator
import Foundation
import GRDB
import Store
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `acerelay serve` under faults, as an operator meets them: its store locked by another
/// process or on a full filesystem, a corrupt database at start, `kill -9` under load, engines
/// answering with URLs pointing elsewhere, and secrets that must not show.
@Suite(.serialized) struct FaultProcessTests {
    // MARK: A running relay, its API and a reference player

    /// One `acerelay serve` with a simulator engine, its ports, and a way to read its API.
    final class Node {
        let serve: ServeProcess
        let streamPort: UInt16
        let apiPort: UInt16

        init(engine: UInt16, dataDirectory: String, extra: [String] = [], environment: [String: String] = [:]) throws {
            streamPort = try ProcessTests.freePort()
            apiPort = try ProcessTests.freePort()
            serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                      "--engine", "http://127.0.0.1:\(engine)", "--provision", "off", "--grace-period", "1",
                                      "--data-dir", dataDirectory, "--log-level", "info"] + extra,
                                     environment: environment)
            guard eventually(timeout: 15, { (try? TestPlayer(port: apiPort, request: "")) != nil }) else {
                throw TestError("acerelay serve never opened its control port: \(serve.errorLines.suffix(5))")
            }
        }

        /// GET on the control port: status and body.
        /// GET on the control port: status and body (de-chunked: `/streams` comes in pieces).
        func get(_ path: String, headers: String = "") -> (status: Int, body: String) {
            let fields = headers.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            guard let response = try? TestHTTP.request("GET", port: apiPort, path: path, headers: fields, timeout: 10) else { return (0, "") }
            return (response.status, response.text)
        }

        /// GET on the stream port (not a stream): status and body.
        func getStreamPort(_ path: String, headers: String = "") -> (status: Int, body: String) {
            guard let client = try? TestPlayer(port: streamPort, request: "GET \(path) HTTP/1.1\r\nHost: x\r\n\(headers)Connection: close\r\n\r\n"),
                  let head = try? client.readHead(timeout: 10) else { return (0, "") }
            return (head.status, client.readShortBody(timeout: 10))
        }

        func json(_ path: String) -> [String: Any]? {
            let (status, body) = get(path)
            guard status == 200 else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }

        func list(_ path: String) -> [[String: Any]] {
            let (status, body) = get(path)
            guard status == 200 else { return [] }
            return ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [[String: Any]]) ?? []
        }

        func post(_ path: String, json: String, key: String) -> (status: Int, body: String) {
            let request = "POST \(path) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)"
            guard let client = try? TestPlayer(port: apiPort, request: request), let head = try? client.readHead(timeout: 10) else { return (0, "") }
            return (head.status, client.readShortBody(timeout: 10))
        }

        func player(_ n: Int, userAgent: String = "TestPlayer/1.0") throws -> TestPlayer {
            try TestPlayer(port: streamPort, request: "GET \(RelayHarness.path(RelayHarness.contentID(n))) HTTP/1.1\r\nHost: x\r\nUser-Agent: \(userAgent)\r\n\r\n")
        }

        var log: String { serve.errorLines.joined(separator: "\n") }
    }

    static func simulator(_ configure: (inout EngineSimulatorConfiguration) -> Void = { _ in }) throws -> EngineSimulator {
        var configuration = EngineSimulatorConfiguration()
        configuration.media = .synthetic(bitsPerSecond: 1_000_000)
        configure(&configuration)
        let simulator = try EngineSimulator(configuration: configuration, logger: RelayHarness.logger)
        try simulator.start()
        return simulator
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: String...) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// A playing player and the bytes it should get a second at 1 Mbit/s of media.
    static func assertKeepsItsRate(_ player: TestPlayer, seconds: Double = 3, _ comment: String) {
        let got = player.drain(seconds: seconds).bytes
        // 1 Mbit/s is 125,000 B/s; allow for start-up bursts being over and scheduling on 2 cores.
        #expect(Double(got) >= 0.7 * 125_000 * seconds, "reference player got \(got) bytes in \(seconds) s \(comment)")
        #expect(!player.peerClosed, "reference player was disconnected \(comment)")
    }

    /// A player of content `n` streaming, its stream recorded, the status healthy: how a store test begins.
    static func referencePlayer(_ node: Node, _ n: Int) throws -> TestPlayer {
        let reference = try node.player(n)
        #expect(try reference.readHead(timeout: 15).status == 200)
        #expect(reference.readBody(count: 188 * 500).count == 188 * 500)
        #expect(eventually(timeout: 10) { node.list("/streams?status=started").count == 1 })
        #expect(node.json("/orchestrator/status")?["status"] as? String == "healthy")
        return reference
    }

    /// Whether content `n`'s stream is in `/streams?status=started`: a write of the store landed.
    static func isRecorded(_ node: Node, _ n: Int) -> Bool {
        let key = RelayHarness.contentID(n).lowercased()
        return node.list("/streams?status=started").contains { ($0["key"] as? String)?.lowercased() == key }
    }

    /// SIGTERM, and an exit with status 0 within the stop's time limit.
    static func assertStopsCleanly(_ node: Node, _ comment: String) {
        Glibc.kill(node.serve.relayPID, SIGTERM)
        #expect(node.serve.waitForExit(timeout: 15), "acerelay did not exit on SIGTERM \(comment)")
        #expect(node.serve.status == 0, "\(comment)")
    }

    /// `PRAGMA integrity_check` of a database no process has open, opened here with GRDB.
    static func integrityCheck(_ path: String) throws -> [String] {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }

    /// The store's section of `/orchestrator/status`, empty when there is none.
    static func storeStatus(_ node: Node) -> [String: Any] {
        (node.json("/orchestrator/status")?["store"] as? [String: Any]) ?? [:]
    }

    /// Waits for the status to say the store's writes fail, then checks that it keeps saying so
    /// for a while (not only between writes that prove nothing), that failures are counted in the
    /// status and the metrics, and that reads keep answering.
    static func assertStoreDegraded(_ node: Node, within timeout: Double, lastError: String, _ comment: String) {
        guard eventually(timeout: timeout, { storeStatus(node)["writable"] as? Bool == false }) else {
            Issue.record("the status never said the store is not writable \(comment): \(storeStatus(node))")
            return
        }
        let deadline = Date().addingTimeInterval(2.5)
        var seen: [String] = []
        while Date() < deadline { seen.append(node.json("/orchestrator/status")?["status"] as? String ?? "no answer") }
        #expect(Set(seen) == ["degraded"], "the status \(comment): \(seen)")
        let store = storeStatus(node)
        #expect(store["status"] as? String == "degraded")
        #expect((store["errors_total"] as? Int ?? 0) >= 1)
        #expect((store["retries"] as? Int ?? 0) >= 2)
        #expect((store["last_error"] as? String)?.contains(lastError) == true, "\(store)")
        let metrics = node.get("/metrics").body
        #expect(metrics.contains("acerelay_store_errors_total{operation="), "\(metrics.prefix(300))")
        #expect(metrics.contains("acerelay_store_writable 0"))
        for path in ["/streams", "/engines", "/orchestrator/status"] {
            #expect(node.get(path).status == 200, "\(path) \(comment)")
        }
        // WAL readers need neither a write lock nor a byte of space.
        #expect(!node.list("/streams?status=started").isEmpty, "reads answer from what the store holds")
    }

    // MARK: Store faults

    @Test func aCorruptDatabaseAtStartIsMovedAsideWithOneLineAndTheRelayServes() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let directory = ProcessTests.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(repeating: 0x5A, count: 64 * 1024).write(to: URL(fileURLWithPath: directory + "/acerelay.sqlite"))

        let node = try Node(engine: simulator.port, dataDirectory: directory)
        defer { node.serve.kill() }
        let player = try node.player(300)
        #expect(try player.readHead(timeout: 15).status == 200)
        #expect(player.readBody(count: 188 * 200).count == 188 * 200)
        let aside = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("acerelay.sqlite.corrupt-") }
        #expect(aside.count == 1, "\(aside)")
        let lines = node.serve.errorLines.filter { $0.contains("corrupt") }
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.contains("moved it to") == true)
        let store = node.json("/orchestrator/status")?["store"] as? [String: Any]
        #expect((store?["moved_aside"] as? String)?.contains("acerelay.sqlite.corrupt-") == true)
        #expect(store?["writable"] as? Bool == true)
    }

    @Test func aDatabaseLockedByAnotherProcessDegradesTheStatusCountsErrorsAndPlayersKeepStreaming() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let directory = ProcessTests.temporaryDirectory()
        let node = try Node(engine: simulator.port, dataDirectory: directory, environment: ["COLLECT_INTERVAL_S": "0.5"])
        defer { node.serve.kill() }
        let reference = try Self.referencePlayer(node, 310)

        let lock = try SQLiteLock(path: directory + "/acerelay.sqlite")
        defer { lock.release() }
        // A new content while the store cannot be written: it plays; its record waits in the queue.
        let newcomer = try node.player(311)
        #expect(try newcomer.readHead(timeout: 15).status == 200)
        #expect(newcomer.readBody(count: 188 * 200).count == 188 * 200, "a new content still plays")
        // Each write waits out the busy timeout (5 s) three times before it counts as failed.
        Self.assertStoreDegraded(node, within: 40, lastError: "database is locked", "while the store was locked")
        Self.assertKeepsItsRate(reference, "while the store was locked")

        lock.release()
        // The next write (the stat collector writes twice a second) clears it.
        #expect(eventually(timeout: 30) { (node.json("/orchestrator/status")?["store"] as? [String: Any])?["writable"] as? Bool == true },
                "the store never became writable again")
        #expect(node.json("/orchestrator/status")?["status"] as? String == "healthy")
        #expect(eventually(timeout: 10) { Self.isRecorded(node, 311) }, "the stream that met the lock was not recorded after it")
        // Logged when it began and when it ended (once writes have worked for 2 s), not once per failed write.
        func lines(_ word: String) -> [String] {
            node.serve.errorLines.filter { $0.contains("database writes failing") && $0.contains(word) }
        }
        #expect(eventually(timeout: 15) { lines("ended after").count == 1 }, "\(lines("ended after"))")
        #expect(lines("began").count == 1, "\(lines("began"))")
        Self.assertKeepsItsRate(reference, "after the lock was released")
    }

    @Test(.enabled(if: Tmpfs.canMount, "mounting a tmpfs is refused here (needs root or CAP_SYS_ADMIN): the full data directory was not tried"))
    func aFullDataDirectoryDegradesTheStatusCountsErrorsAndTheStoreRecoversWhenSpaceIsFreed() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        // Torn down in reverse: the binary stops before its filesystem goes.
        let disk = try Tmpfs(size: "2m")
        defer { disk.unmount() }
        let node = try Node(engine: simulator.port, dataDirectory: disk.path, environment: ["COLLECT_INTERVAL_S": "0.2"])
        defer { node.serve.kill() }
        let reference = try Self.referencePlayer(node, 370)

        let filler = try disk.fill()
        // Every write appends at least one page to the WAL, which on a full filesystem has no block to
        // grow into: stat samples (five a second per stream) and the records of new contents.
        var newcomers: [TestPlayer] = []
        for n in 371...373 {
            let newcomer = try node.player(n)
            #expect(try newcomer.readHead(timeout: 15).status == 200, "a new content plays on a full disk")
            #expect(newcomer.readBody(count: 188 * 200).count == 188 * 200)
            newcomers.append(newcomer)
        }
        Self.assertStoreDegraded(node, within: 30, lastError: "database or disk is full", "while the data directory was full")
        Self.assertKeepsItsRate(reference, "while the data directory was full")

        try FileManager.default.removeItem(atPath: filler)
        // The next stat sample finds room again.
        #expect(eventually(timeout: 30) { Self.storeStatus(node)["writable"] as? Bool == true },
                "the store never became writable again: \(Self.storeStatus(node))")
        #expect(node.json("/orchestrator/status")?["status"] as? String == "healthy")
        #expect(node.get("/metrics").body.contains("acerelay_store_writable 1"))
        // The records that met the full disk waited and are written now.
        #expect(eventually(timeout: 10) { (371...373).allSatisfy { Self.isRecorded(node, $0) } },
                "streams started while the disk was full were not recorded once it had room")
        // A write after the recovery lands: a new content's stream is recorded.
        let after = try node.player(374)
        #expect(try after.readHead(timeout: 15).status == 200)
        #expect(eventually(timeout: 10) { Self.isRecorded(node, 374) }, "a stream started after the recovery was not recorded")
        Self.assertKeepsItsRate(reference, "after space was freed")

        // The database the binary leaves behind is intact.
        Self.assertStopsCleanly(node, "after the disk was full")
        #expect(try Self.integrityCheck(disk.path + "/acerelay.sqlite") == ["ok"])
    }

    @Test(.enabled(if: Ext4Image.refusal == nil,
                   "no ext4 image on a loop device here (needs root, losetup, mkfs.ext4, trigger_fs_error): the read-only data directory was not tried"))
    func aDataDirectoryTurnedReadOnlyUnderTheRunningBinaryDegradesTheStatusAndPlayersKeepStreaming() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let disk = try Ext4Image()
        defer { disk.close() }
        let node = try Node(engine: simulator.port, dataDirectory: disk.path, environment: ["COLLECT_INTERVAL_S": "0.2"])
        defer { node.serve.kill() }
        let reference = try Self.referencePlayer(node, 375)

        // As ext4 does after an I/O error: read-only at once, under the open database.
        try disk.failReadOnly()
        let newcomer = try node.player(376)
        #expect(try newcomer.readHead(timeout: 15).status == 200, "a new content plays on a read-only disk")
        #expect(newcomer.readBody(count: 188 * 200).count == 188 * 200)
        Self.assertStoreDegraded(node, within: 30, lastError: "disk I/O error", "while the data directory was read-only")
        Self.assertKeepsItsRate(reference, "while the data directory was read-only")

        // The kernel lets it be written again only after an unmount and a check: the relay
        // stops though every write fails, and starts again on the repaired filesystem.
        Self.assertStopsCleanly(node, "on a read-only data directory")
        try disk.repair()
        #expect(try Self.integrityCheck(disk.path + "/acerelay.sqlite") == ["ok"])
        let again = try Node(engine: simulator.port, dataDirectory: disk.path, environment: ["COLLECT_INTERVAL_S": "0.2"])
        defer { again.serve.kill() }
        let player = try again.player(377)
        #expect(try player.readHead(timeout: 15).status == 200)
        #expect(eventually(timeout: 10) { Self.isRecorded(again, 377) }, "a stream started after the repair was not recorded")
        #expect(Self.storeStatus(again)["writable"] as? Bool == true)
        #expect(again.json("/orchestrator/status")?["status"] as? String == "healthy")
    }

    // MARK: kill -9

    @Test func killNineUnderLoadThenRestartLeavesAnIntactStoreWithEveryLiveStreamEndedOnce() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let directory = ProcessTests.temporaryDirectory()
        var seen: Set<String> = []
        // Killed: as players arrive, while they stream, and just after one left.
        for round in 0..<3 {
            let node = try Node(engine: simulator.port, dataDirectory: directory, extra: ["--workers", "2"],
                                environment: ["COLLECT_INTERVAL_S": "0.2"])
            defer { node.serve.kill() }
            // What the previous run left live is ended now, and only once.
            let started = node.list("/streams?status=started")
            #expect(started.isEmpty, "round \(round): \(started.compactMap { $0["id"] as? String })")
            var players: [TestPlayer] = []
            for n in 0..<4 { players.append(try node.player(320 + round * 10 + n)) }
            switch round {
            case 0:
                // As the players arrive: heads may not even be sent yet.
                _ = eventually(timeout: 5) { simulator.totalCounters.activeSessions >= 4 }
            case 1:
                for player in players {
                    #expect(try player.readHead(timeout: 15).status == 200)
                    #expect(player.readBody(count: 188 * 300).count == 188 * 300)
                }
                #expect(eventually(timeout: 10) { node.list("/streams?status=started").count == 4 })
                // Stat samples are being written every 0.2 s: kill in the middle of that.
                #expect(eventually(timeout: 10) { node.list("/streams?status=started").allSatisfy { ($0["peers"] as? Int) != nil } })
            default:
                for player in players { _ = try player.readHead(timeout: 15) }
                #expect(eventually(timeout: 10) { node.list("/streams?status=started").count == 4 })
                players.removeFirst()
                #expect(eventually(timeout: 10) { node.list("/streams?status=started").count == 3 }, "the grace period ended a stream")
            }
            for stream in node.list("/streams") { if let id = stream["id"] as? String { seen.insert(id) } }
            Glibc.kill(node.serve.process.processIdentifier, SIGKILL)
            node.serve.process.waitUntilExit()
        }
        #expect(seen.count >= 8, "the killed runs recorded too few streams to test anything: \(seen.count)")
        // The last run's database, as it was left by the kill.
        #expect(try Self.integrityCheck(directory + "/acerelay.sqlite") == ["ok"])

        let node = try Node(engine: simulator.port, dataDirectory: directory)
        defer { node.serve.kill() }
        let streams = node.list("/streams")
        let ids = streams.compactMap { $0["id"] as? String }
        #expect(Set(ids).count == ids.count, "a stream is listed twice")
        #expect(seen.isSubset(of: Set(ids)), "a stream of an earlier run is lost: \(seen.subtracting(ids))")
        #expect(streams.allSatisfy { $0["status"] as? String == "ended" }, "a stream of a killed run is still live")
        // One session per content and run: no content appears twice in one run's streams.
        let keys = streams.compactMap { $0["key"] as? String }
        #expect(Set(keys).count == keys.count, "\(keys)")
        #expect(node.list("/engines").count == 1, "the static engine is registered once")
        // And the relay works on the same data directory afterwards.
        let player = try node.player(399)
        #expect(try player.readHead(timeout: 15).status == 200)
        #expect(player.readBody(count: 188 * 200).count == 188 * 200)
    }

    // MARK: Logs under a condition that persists

    @Test func descriptorsRunningOutOnAcceptAreLoggedOnceWhenItBeginsAndOnceWhenItEnds() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let node = try Node(engine: simulator.port, dataDirectory: ProcessTests.temporaryDirectory(), extra: ["--workers", "2"])
        defer { node.serve.kill() }
        let reference = try node.player(360)
        #expect(try reference.readHead(timeout: 15).status == 200)
        #expect(reference.readBody(count: 188 * 300).count == 188 * 300)

        // Leave the process a few descriptors more than it holds, then connect far more players than that.
        let pid = node.serve.process.processIdentifier
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
        // Only the soft limit: raising a hard limit again would need CAP_SYS_RESOURCE.
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        let soft = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }?
            .split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.map(String.init))
        try #require(Self.run("/usr/bin/prlimit", "--pid", "\(pid)", "--nofile=\(open + 4):") == 0)
        var flood: [TestPlayer] = []
        for _ in 0..<40 { if let client = try? TestPlayer(port: node.streamPort, request: "") { flood.append(client) } }
        #expect(eventually(timeout: 10) { node.log.contains("accepting players failed") && node.log.contains(": began") },
                "accept failures were never logged")
        // Two loops retry every 100 ms: give them a couple of seconds of failing, measured by the reference player.
        Self.assertKeepsItsRate(reference, seconds: 2, "while accepts failed")

        flood.removeAll()
        try #require(Self.run("/usr/bin/prlimit", "--pid", "\(pid)", "--nofile=\(soft):") == 0)
        // The end is written by an accept once accepts have worked for 2 s: keep connecting until it is.
        // Wait for this condition's own end line: other conditions the exhaustion caused
        // (an engine's status probe failing) log "ended after" too.
        #expect(eventually(timeout: 30) {
            _ = try? TestPlayer(port: node.streamPort, path: "/healthz").readHead(timeout: 2)
            return node.serve.errorLines.contains { $0.contains("accepting players failed") && $0.contains("ended after") }
        }, "the end of the condition was never logged")
        let lines = node.serve.errorLines.filter { $0.contains("accepting players failed") }
        #expect(lines.filter { $0.contains(": began") }.count == 1, "\(lines)")
        #expect(lines.filter { $0.contains("ended after") }.count == 1, "\(lines)")
        #expect(lines.count == 2, "one line when it began, one when it ended: \(lines)")
        let metric = node.get("/metrics").body.split(separator: "\n").first { $0.hasPrefix("acerelay_relay_accept_failures_total ") }
        let failures = metric.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(failures >= 10, "\(metric ?? "no acerelay_relay_accept_failures_total")")
        let newcomer = try node.player(361)
        #expect(try newcomer.readHead(timeout: 15).status == 200, "players are accepted again")
    }

    @Test func engineProbesAndStatPollsThatFailAreCountedInTheMetrics() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let node = try Node(engine: simulator.port, dataDirectory: ProcessTests.temporaryDirectory(),
                            environment: ["COLLECT_INTERVAL_S": "0.2", "HEALTH_CHECK_INTERVAL_S": "1"])
        defer { node.serve.kill() }
        func value(_ metric: String) -> Double? {
            let line = node.get("/metrics").body.split(separator: "\n").first { $0.hasPrefix(metric + " ") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        let player = try node.player(365)
        #expect(try player.readHead(timeout: 15).status == 200)
        #expect(player.readBody(count: 188 * 300).count == 188 * 300)
        #expect(eventually(timeout: 10) { simulator.totalCounters.statRequests >= 2 }, "stats were never polled")
        let (probes, polls) = ("acerelay_fleet_engine_probe_failures_total", "acerelay_streams_stat_poll_failures_total")
        #expect(value(probes) == 0, "exported, and zero while the engine answers")
        #expect(value(polls) == 0)

        // The engine stops answering anything: probes time out (5 s) and stat polls (3 s).
        simulator.setFault(.hang)
        #expect(eventually(timeout: 30) { (value(probes) ?? 0) >= 1 && (value(polls) ?? 0) >= 1 },
                "probes \(value(probes) ?? -1), polls \(value(polls) ?? -1)")
        #expect(node.log.contains("not answering its status probe: began"))
        #expect(node.serve.errorLines.contains { $0.contains("stat polls of stream") && $0.contains("failing: began") })
        simulator.setFault(nil)
        let counted = try #require(value(probes))
        #expect(eventually(timeout: 15) { node.log.contains("not answering its status probe: ended after") })
        #expect((value(probes) ?? 0) >= counted, "a counter never goes down")

        let text = node.get("/metrics").body
        let lint = try ChildProcess.run("/usr/bin/promtool", ["check", "metrics"], input: Array(text.utf8))
        #expect(lint.status == 0, "promtool: \(lint.output)")
    }

    // MARK: URLs engines and proxies give

    /// A listener on 127.0.0.2 that counts every connection: where nothing must ever go.
    final class Trap: @unchecked Sendable {
        let fd: Int32
        let port: UInt16
        /// A class around the atomic, so the accept thread can hold it.
        final class Count: Sendable { let value = Atomic<Int>(0) }
        private let count = Count()
        var connections: Int { count.value.load(ordering: .relaxed) }

        init() throws {
            let listening = try Loopback.listen(address: "127.0.0.2")
            fd = listening.fd
            port = listening.port
            let listener = fd
            Thread { [count] in
                while true {
                    let client = accept(listener, nil, nil)
                    if client < 0 { return }
                    count.value.add(1, ordering: .relaxed)
                    Glibc.close(client)
                }
            }.start()
        }

        func close() { shutdown(fd, Int32(SHUT_RDWR)); Glibc.close(fd) }
    }

    @Test func anEngineAnsweringWithSchemeLessURLsToAnotherHostIsStillPlayedAndStoppedOnItself() throws {
        let trap = try Trap()
        defer { trap.close() }
        let simulator = try Self.simulator { configuration in
            configuration.advertisedURLStyle = .schemeLess
            configuration.advertisedHost = "127.0.0.2"
            configuration.advertisedPort = trap.port
        }
        defer { simulator.shutdown() }
        let node = try Node(engine: simulator.port, dataDirectory: ProcessTests.temporaryDirectory(),
                            environment: ["COLLECT_INTERVAL_S": "0.2"])
        defer { node.serve.kill() }
        let player = try node.player(330)
        #expect(try player.readHead(timeout: 15).status == 200)
        #expect(player.readBody(count: 188 * 500).count == 188 * 500)
        // Stats were polled (on the engine), then the player leaves and the grace period ends: stop goes to the engine.
        #expect(eventually(timeout: 10) { simulator.totalCounters.statRequests >= 2 })
        _ = consume player
        #expect(eventually(timeout: 10) { simulator.totalCounters.stops == 1 }, "stop never reached the engine")
        #expect(trap.connections == 0, "the relay called the address the engine named")
    }

    @Test func statAndCommandURLsReportedForAnotherHostAreStoredButNeverCalled() throws {
        let trap = try Trap()
        defer { trap.close() }
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let key = "reporting-proxy-key"
        let node = try Node(engine: simulator.port, dataDirectory: ProcessTests.temporaryDirectory(),
                            environment: ["COLLECT_INTERVAL_S": "0.2", "API_KEY": key])
        defer { node.serve.kill() }
        let reference = try node.player(340)
        #expect(try reference.readHead(timeout: 15).status == 200)
        #expect(reference.readBody(count: 188 * 300).count == 188 * 300)

        let foreign = "http://127.0.0.2:\(trap.port)"
        let body = #"{"container_id":"http://127.0.0.1:\#(simulator.port)","engine":{"host":"127.0.0.1","port":\#(simulator.port)},"#
            + #""stream":{"key_type":"content_id","key":"\#(RelayHarness.contentID(341))"},"#
            + #""session":{"playback_session_id":"foreign","stat_url":"\#(foreign)/ace/stat/x/foreign","command_url":"\#(foreign)/ace/cmd/x/foreign","is_live":1}}"#
        let posted = node.post("/events/stream_started", json: body, key: key)
        #expect(posted.status == 200, "\(posted.body)")
        #expect(posted.body.contains("url_refusal"), "\(posted.body)")
        // The collector met it and said why it does not poll it: once.
        #expect(eventually(timeout: 10) { node.log.contains("a reported stream's stat_url is not polled") })
        let stream = node.list("/streams?status=started").first { ($0["id"] as? String)?.hasSuffix("foreign") == true }
        #expect((stream?["url_refusal"] as? String)?.contains("ALLOW_FOREIGN_ENGINE_URLS") == true, "\(stream ?? [:])")
        #expect(stream?["stat_url"] as? String == "\(foreign)/ace/stat/x/foreign", "stored as reported")
        // Stopping it through the API does not call its command_url either.
        let id = try #require(stream?["id"] as? String)
        let request = "DELETE /streams/\(id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "|"))) ?? id) HTTP/1.1\r\n"
            + "Host: x\r\nX-API-Key: \(key)\r\nConnection: close\r\n\r\n"
        let stop = try TestPlayer(port: node.apiPort, request: request)
        #expect(try stop.readHead().status == 502)
        // Polls of the relay's own stream went on meanwhile, and its player kept its rate.
        let polled = simulator.totalCounters.statRequests
        Self.assertKeepsItsRate(reference, "while a foreign stream was reported")
        #expect(simulator.totalCounters.statRequests > polled)
        #expect(trap.connections == 0, "a reported foreign URL was called")
        #expect(node.log.components(separatedBy: "a reported stream's stat_url is not polled").count == 2, "logged once")
    }

    // MARK: Secrets and personal data

    @Test func openRoutesShowNoSecretAndAceStatusShowsPlayersOnlyWithTheKey() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let secrets = ["api-key-7f3c9e1b5d", "dispatcharr-pass-4a8e2c", "dispatcharr-token-9d1f7b"]
        let node = try Node(engine: simulator.port, dataDirectory: ProcessTests.temporaryDirectory(),
                            environment: ["API_KEY": secrets[0], "DISPATCHARR_BASE_URL": "http://127.0.0.1:\(try ProcessTests.freePort())",
                                          "DISPATCHARR_USER": "acerelay", "DISPATCHARR_PASS": secrets[1], "DISPATCHARR_TOKEN": secrets[2],
                                          "DISPATCHARR_SYNC_INTERVAL_S": "1"])
        defer { node.serve.kill() }
        let player = try node.player(350, userAgent: "SecretAgentPlayer/2.0")
        #expect(try player.readHead(timeout: 15).status == 200)
        #expect(player.readBody(count: 188 * 300).count == 188 * 300)
        // Dispatcharr was tried (and failed): its error is in the status.
        #expect(eventually(timeout: 15) {
            ((node.json("/orchestrator/status")?["dispatcharr"] as? [String: Any])?["last_error"] as? String)?.isEmpty == false
        })

        let open = ["/orchestrator/status", "/metrics", "/panel", "/panel/panel.js", "/panel/snapshot", "/engines", "/streams",
                    "/health/status", "/version", "/looping-streams", "/stream-loop-detection/config", "/channels",
                    "/channels.m3u", "/metrics/dashboard", "/api/v1/orchestrator/status"]
        for path in open {
            let (status, body) = node.get(path)
            #expect(status == 200, "\(path)")
            for secret in secrets { #expect(!body.contains(secret), "\(path) shows a secret") }
        }
        // The stream port: counts for everyone, addresses and user agents only with the key.
        let anonymous = node.getStreamPort("/ace/status")
        #expect(anonymous.status == 200)
        #expect(anonymous.body.contains("\"player_count\":1"), "\(anonymous.body.prefix(400))")
        #expect(!anonymous.body.contains("SecretAgentPlayer"))
        #expect(!anonymous.body.contains("\"address\""))
        #expect(anonymous.body.contains("clients_hidden"))
        let wrong = node.getStreamPort("/ace/status?api_key=not-the-key")
        #expect(!wrong.body.contains("SecretAgentPlayer"))
        for headers in ["X-API-Key: \(secrets[0])\r\n", "Authorization: Bearer \(secrets[0])\r\n"] {
            let keyed = node.getStreamPort("/ace/status", headers: headers)
            #expect(keyed.body.contains("SecretAgentPlayer"), "\(headers)")
            #expect(keyed.body.contains("\"address\":\"127.0.0.1"))
        }
        #expect(node.getStreamPort("/ace/status?api_key=\(secrets[0])").body.contains("SecretAgentPlayer"))
        for secret in secrets { #expect(!node.log.contains(secret), "the log shows a secret") }
    }
}
