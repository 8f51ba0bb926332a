import EngineSimulator
import Foundation
import GRDB
import Store
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `acerelay serve` as a process, the way systemd runs it: what it prints and
/// how it exits when it cannot start, how it shares its engines, and how it stops.
@Suite struct ServeProcessTests {
    // MARK: Start-up failures

    @Test func anAPIPortInUseStopsStartUpWithOneLineNamingItAndExitsNonZero() throws {
        let holder = try PortHolder()
        let streamPort = try ProcessTests.freePort()
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(holder.port)",
                                      "--provision", "off", "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "warning"])
        defer { serve.kill() }
        try #require(serve.waitForExit(timeout: 15), "acerelay kept running without its control port")
        #expect(serve.status != 0)
        let lines = serve.errorLines
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.contains("127.0.0.1:\(holder.port)") == true, "\(lines)")
        // Nothing is left listening on the stream port it had opened.
        #expect((try? TestPlayer(port: streamPort, request: "")) == nil)
    }

    @Test func anAPIAddressEqualToTheStreamPortStopsStartUpWithOneLine() throws {
        let port = try ProcessTests.freePort()
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:\(port)",
                                      "--provision", "off", "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "warning"])
        defer { serve.kill() }
        try #require(serve.waitForExit(timeout: 15), "acerelay kept running without its control port")
        #expect(serve.status != 0)
        let lines = serve.errorLines
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.contains("127.0.0.1:\(port)") == true, "\(lines)")
    }

    @Test func aStreamPortInUseStopsStartUpWithOneLineNamingItAndExitsNonZero() throws {
        let holder = try PortHolder()
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(holder.port)", "--api-listen", "127.0.0.1:0",
                                      "--provision", "off", "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "warning"])
        defer { serve.kill() }
        try #require(serve.waitForExit(timeout: 15), "acerelay kept running without its stream port")
        #expect(serve.status != 0)
        let lines = serve.errorLines
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.contains("127.0.0.1:\(holder.port)") == true, "\(lines)")
    }

    // MARK: Engines

    /// With `DOCKER_HOST` set (here to a socket that does not exist), the
    /// managed engines' `MAX_STREAMS_PER_ENGINE` must not cap the user's own engine.
    @Test func aStaticEngineTakesEveryContentWhenDockerIsConfigured() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let port = try ProcessTests.freePort()
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:0",
                                      "--engine", "http://127.0.0.1:\(simulator.port)", "--workers", "2", "--start-timeout", "5",
                                      "--early-head-after", "10", "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "critical"],
                                     environment: ["DOCKER_HOST": "unix:///nonexistent/acerelay-test/docker.sock", "MIN_REPLICAS": "0",
                                                   "MIN_FREE_REPLICAS": "0"])
        defer { serve.kill() }
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: port, request: "")) != nil })
        var players: [TestPlayer] = []
        for n in 0..<5 {
            let player = try TestPlayer(port: port, path: RelayHarness.path(RelayHarness.contentID(70 + n)))
            #expect(try player.readHead(timeout: 15).status == 200, "content \(n + 1)")
            #expect(player.readBody(count: 188 * 100).count == 188 * 100, "content \(n + 1)")
            players.append(player)
        }
        #expect(simulator.totalCounters.activeSessions == 5)
    }

    @Test func aStaticEngineLimitIsKeptWhenTheUserSetsOne() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let port = try ProcessTests.freePort()
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:0",
                                      "--engine", "http://127.0.0.1:\(simulator.port)", "--max-streams-per-static-engine", "1",
                                      "--provision", "off", "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "critical"])
        defer { serve.kill() }
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: port, request: "")) != nil })
        let first = try TestPlayer(port: port, path: RelayHarness.path(RelayHarness.contentID(80)))
        #expect(try first.readHead(timeout: 15).status == 200)
        #expect(first.readBody(count: 188 * 100).count == 188 * 100)
        let second = try TestPlayer(port: port, path: RelayHarness.path(RelayHarness.contentID(81)))
        #expect(try second.readHead(timeout: 15).status == 503)
    }

    // MARK: Store

    /// A stream opened as the relay starts must not be caught by the
    /// clean-up of the previous run: the stream port opens only after it.
    @Test func theStreamPortOpensOnlyAfterThePreviousRunsStreamsAreEnded() async throws {
        let directory = ProcessTests.temporaryDirectory()
        let store = try Store(directory: directory)
        let old = RelayHarness.contentID(90)
        try await store.saveStream(StreamRecord(id: "\(old)|previous-run", keyType: "content_id", key: old,
                                                containerID: "engine-of-the-previous-run", playbackSessionID: "previous-run"))
        // Another writer holds the database: the clean-up waits for it (the store's busy timeout).
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true
        let writer = try DatabaseQueue(path: store.path, configuration: unsafe)
        try writer.inDatabase { try $0.execute(sql: "BEGIN IMMEDIATE TRANSACTION") }
        var locked = true
        defer { if locked { try? writer.inDatabase { try $0.execute(sql: "ROLLBACK") } } }

        let (streamPort, apiPort) = (try ProcessTests.freePort(), try ProcessTests.freePort())
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                      "--provision", "off", "--data-dir", directory, "--log-level", "warning"])
        defer { serve.kill() }
        #expect(eventually(timeout: 10) { serve.hasOpen(file: store.path) }, "acerelay never opened its store")
        // The store is open and the clean-up is waiting for the lock: the stream port must stay closed.
        #expect(!eventually(timeout: 1.5) { (try? TestPlayer(port: streamPort, request: "")) != nil },
                "the stream port opened before the previous run's streams were ended")
        try writer.inDatabase { try $0.execute(sql: "COMMIT") }
        locked = false
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: streamPort, request: "")) != nil })
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: apiPort, request: "")) != nil })
        let ended = try TestPlayer(port: apiPort, request: "GET /streams?status=ended HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(try ended.readHead().status == 200)
        #expect(ended.readShortBody().contains("\(old)|previous-run"))
    }

    // MARK: Shutdown

    /// Requests that never finish (a body that never comes) and a steady load
    /// on the control port must not hold SIGTERM up.
    @Test func sigtermExitsZeroWithinSecondsWhileTheControlAPIIsBusy() throws {
        let simulator = try Self.simulator()
        defer { simulator.shutdown() }
        let (streamPort, apiPort) = (try ProcessTests.freePort(), try ProcessTests.freePort())
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                      "--engine", "http://127.0.0.1:\(simulator.port)", "--provision", "off",
                                      "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "critical"])
        defer { serve.kill() }
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: apiPort, request: "")) != nil })
        let player = try TestPlayer(port: streamPort, path: RelayHarness.path(RelayHarness.contentID(95)))
        #expect(try player.readHead().status == 200)
        var unfinished: [TestPlayer] = []
        for _ in 0..<8 {
            unfinished.append(try TestPlayer(port: apiPort, request: "POST /events/stream_started HTTP/1.1\r\nHost: x\r\n"
                + "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"container_id\":"))
        }
        let load = ControlLoad(port: apiPort)
        load.start()
        defer { load.stop() }
        #expect(eventually(timeout: 10) { load.answered >= 20 }, "the control API answered no requests")

        let started = Date()
        Glibc.kill(serve.process.processIdentifier, SIGTERM)
        try #require(serve.waitForExit(timeout: 10), "SIGTERM did not stop acerelay")
        #expect(Date().timeIntervalSince(started) < 7)
        #expect(serve.status == 0)
        #expect(player.waitForClose(timeout: 2))
        #expect(simulator.totalCounters.stops == 1)
    }

    // MARK: Helpers

    static func simulator() throws -> EngineSimulator {
        var configuration = EngineSimulatorConfiguration()
        configuration.media = .synthetic(bitsPerSecond: 1_000_000)
        let simulator = try EngineSimulator(configuration: configuration, logger: RelayHarness.logger)
        try simulator.start()
        return simulator
    }
}

/// One `acerelay` process. Its stderr goes to a file: a pipe nobody reads
/// fills up and blocks the process once it logs enough.
final class ServeProcess {
    private let child: ChildProcess
    var process: Process { child.process }
    var errorsPath: String { child.errorsPath ?? "" }

    /// - Parameter stderrAsJournal: sets `JOURNAL_STREAM` to the stderr file's
    ///   `device:inode`, as systemd does when stderr is the journal.
    /// - Parameter executable: runs this instead of acerelay (e.g. `prlimit`, which then execs acerelay).
    init(_ arguments: [String], environment: [String: String] = [:], stderrAsJournal: Bool = false, executable: URL? = nil) throws {
        let errorsPath = TestDirectory.path("serve-stderr") + "/stderr"
        _ = FileManager.default.createFile(atPath: errorsPath, contents: nil)
        var environment = environment
        if stderrAsJournal {
            var info = stat()
            guard stat(errorsPath, &info) == 0 else { throw TestError("cannot stat \(errorsPath)") }
            environment["JOURNAL_STREAM"] = "\(info.st_dev):\(info.st_ino)"
        }
        child = try ChildProcess(executable ?? ProcessTests.executable, arguments, environment: environment, errorsPath: errorsPath)
    }

    /// True once the process exited, waiting up to `timeout`.
    func waitForExit(timeout: Double) -> Bool { child.waitForExit(timeout: timeout) }

    var status: Int32 { child.status }

    /// The relay's process id (a wrapper such as `prlimit` execs it in place).
    var relayPID: Int32 { process.processIdentifier }

    /// What it wrote to stderr, line by line.
    var errorLines: [String] { child.errorLines }

    /// Whether the process has `path` open (from /proc, as `ls -l /proc/PID/fd` shows).
    func hasOpen(file path: String) -> Bool {
        let fds = "/proc/\(process.processIdentifier)/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? []
        return entries.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fds)/\($0)")) == path }
    }

    /// Ends a process a test left running.
    func kill() {
        child.kill()
        try? FileManager.default.removeItem(atPath: errorsPath)
    }
}

/// A listening socket on 127.0.0.1 with neither SO_REUSEADDR nor SO_REUSEPORT,
/// as another program holding a port has it.
final class PortHolder {
    let fd: Int32
    let port: UInt16

    init() throws {
        let listening = try Loopback.listen(backlog: 16)
        fd = listening.fd
        port = listening.port
    }

    deinit { Glibc.close(fd) }
}

/// Requests sent one after another to the control port from a background thread, until stopped.
final class ControlLoad: @unchecked Sendable {
    private let port: UInt16
    private let lock = NSLock()
    private var count = 0
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(port: UInt16) { self.port = port }

    var answered: Int { lock.lock(); defer { lock.unlock() }; return count }
    private var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }

    func start() {
        Thread { [self] in
            let paths = ["/streams", "/engines", "/metrics", "/orchestrator/status", "/streams?status=ended"]
            var i = 0
            while isRunning {
                defer { i += 1 }
                let request = "GET \(paths[i % paths.count]) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                guard let client = try? TestPlayer(port: port, request: request), (try? client.readHead(timeout: 2)) != nil else {
                    usleep(10_000)
                    continue
                }
                _ = client.readShortBody(timeout: 2)
                lock.lock(); count += 1; lock.unlock()
            }
            finished.signal()
        }.start()
    }

    func stop() {
        lock.lock(); running = false; lock.unlock()
        finished.wait()
    }
}
