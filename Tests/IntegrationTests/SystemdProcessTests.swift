import Foundation
import Locking
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `acerelay serve` under a stand-in for systemd: a notify socket the test
/// owns, `WATCHDOG_USEC`, `JOURNAL_STREAM`, SIGTERM with and without a drain.
@Suite struct SystemdProcessTests {
    // MARK: Notify

    @Test(arguments: [false, true])
    func readyComesOnlyOnceBothPortsAcceptThenStatusWatchdogAndStopping(abstract: Bool) throws {
        let notify = try NotifyListener(abstract: abstract)
        let (streamPort, apiPort) = (try ProcessTests.freePort(), try ProcessTests.freePort())
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:\(apiPort)",
                                      "--provision", "off", "--workers", "2", "--data-dir", ProcessTests.temporaryDirectory(),
                                      "--log-level", "warning"],
                                     environment: ["NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "2000000"])
        defer { serve.kill() }
        let ready = try #require(notify.next(matching: "READY=1", timeout: 15), "no READY=1; got \(notify.all.map(\.text))")
        // Connect the moment READY arrives: both ports must already accept.
        #expect((try? TestPlayer(port: streamPort, request: "")) != nil, "stream port not accepting at READY=1")
        #expect((try? TestPlayer(port: apiPort, request: "")) != nil, "control port not accepting at READY=1")

        let firstStatus = try #require(notify.next(matching: "STATUS=", timeout: 7))
        #expect(firstStatus.text.contains("players") && firstStatus.text.contains("hubs"), "\(firstStatus.text)")
        // Half of WATCHDOG_USEC: a ping about every second.
        #expect(eventually(timeout: 6) { notify.all.filter { $0.text == "WATCHDOG=1" }.count >= 4 })
        let pings = notify.all.filter { $0.text == "WATCHDOG=1" }.map(\.at)
        #expect(pings.allSatisfy { $0 >= ready.at }, "a ping before READY=1")
        for (earlier, later) in zip(pings, pings.dropFirst()) {
            let gap = later.timeIntervalSince(earlier)
            #expect(gap > 0.5 && gap < 1.9, "ping gap \(gap) s, WATCHDOG_USEC 2 s")
        }

        kill(serve.process.processIdentifier, SIGTERM)
        #expect(notify.next(matching: "STOPPING=1", timeout: 5) != nil)
        try #require(serve.waitForExit(timeout: 15))
        #expect(serve.status == 0)
    }

    /// The one that matters: a relay loop that stops turning must stop the
    /// pings, so systemd kills and restarts the service.
    @Test func aStuckRelayLoopStopsTheWatchdogPings() throws {
        let notify = try NotifyListener(abstract: false)
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--provision", "off",
                                      "--workers", "2", "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "warning"],
                                     environment: ["NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "2000000",
                                                   "ACERELAY_TEST_STALL_LOOP_AFTER_S": "3"])
        defer { serve.kill() }
        _ = try #require(notify.next(matching: "READY=1", timeout: 15))
        #expect(notify.next(matching: "WATCHDOG=1", timeout: 3) != nil, "no ping while every loop turned")
        try #require(eventually(timeout: 10) { serve.errorLines.contains { $0.contains("stalling relay loop 0") } })
        let stalled = Date()
        // The gate allows a loop 2 s (WATCHDOG_USEC) since its last turn; the pinger checks every 1 s.
        Thread.sleep(forTimeInterval: 3.5)
        let quietFrom = Date()
        Thread.sleep(forTimeInterval: 4)
        let late = notify.all.filter { $0.text == "WATCHDOG=1" && $0.at > quietFrom }
        #expect(late.isEmpty, "\(late.count) pings more than 3.5 s after loop 0 stalled at \(stalled)")
        #expect(serve.errorLines.contains { $0.contains("withholding watchdog pings") && $0.contains("relay-0") }, "\(serve.errorLines)")
        #expect(serve.process.isRunning)
    }

    @Test func withoutANotifySocketNothingIsSentAndItServes() throws {
        let streamPort = try ProcessTests.freePort()
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:0", "--provision", "off",
                                      "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "warning"],
                                     environment: ["NOTIFY_SOCKET": "", "WATCHDOG_USEC": "2000000"])
        defer { serve.kill() }
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: streamPort, request: "")) != nil })
    }

    // MARK: Journal

    @Test func stderrToTheJournalGetsPriorityPrefixesAndNoTimestamps() throws {
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--provision", "off",
                                      "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "info"],
                                     stderrAsJournal: true)
        defer { serve.kill() }
        #expect(eventually(timeout: 10) { serve.errorLines.contains { $0.contains("control API listening") } })
        let lines = serve.errorLines
        #expect(lines.contains { $0.hasPrefix("<6>acerelay: relay listening") }, "\(lines)")
        for line in lines {
            #expect(line.range(of: #"^<[3-7]>"#, options: .regularExpression) != nil, "no priority prefix: \(line)")
            #expect(line.range(of: #"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"#, options: .regularExpression) == nil, "own timestamp: \(line)")
        }
    }

    @Test func stderrToAFileKeepsTimestampsAndNoPrefixes() throws {
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--provision", "off",
                                      "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "info"],
                                     environment: ["JOURNAL_STREAM": "1:1"])
        defer { serve.kill() }
        #expect(eventually(timeout: 10) { serve.errorLines.contains { $0.contains("control API listening") } })
        let listening = try #require(serve.errorLines.first { $0.contains("relay listening") })
        #expect(!listening.hasPrefix("<"))
        #expect(listening.range(of: #"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"#, options: .regularExpression) != nil, "\(listening)")
    }

    // MARK: Health and drain

    @Test func healthzAnswers200WhileServing() throws {
        let streamPort = try ProcessTests.freePort()
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:0", "--provision", "off",
                                      "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "warning"])
        defer { serve.kill() }
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: streamPort, request: "")) != nil })
        let get = try TestPlayer(port: streamPort, path: "/healthz")
        #expect(try get.readHead().status == 200)
        #expect(get.readShortBody() == #"{"status":"ok"}"#)
        let head = try TestPlayer(port: streamPort, path: "/healthz", method: "HEAD")
        #expect(try head.readHead().status == 200)
        #expect(head.readShortBody(timeout: 1).isEmpty)
    }

    @Test func sigtermWithADrainKeepsConnectedPlayersRefusesNewOnesThenExitsZero() throws {
        let simulator = try ServeProcessTests.simulator()
        defer { simulator.shutdown() }
        let notify = try NotifyListener(abstract: true)
        let streamPort = try ProcessTests.freePort()
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:0",
                                      "--engine", "http://127.0.0.1:\(simulator.port)", "--provision", "off", "--drain-seconds", "4",
                                      "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "warning"],
                                     environment: ["NOTIFY_SOCKET": notify.address])
        defer { serve.kill() }
        _ = try #require(notify.next(matching: "READY=1", timeout: 15))
        let player = try TestPlayer(port: streamPort, path: RelayHarness.path(RelayHarness.contentID(101)))
        #expect(try player.readHead().status == 200)
        #expect(player.readBody(count: 188 * 50).count == 188 * 50)

        let signalled = Date()
        kill(serve.process.processIdentifier, SIGTERM)
        let unhealthy = eventually(timeout: 1) {
            guard let check = try? TestPlayer(port: streamPort, path: "/healthz") else { return false }
            return (try? check.readHead(timeout: 1).status) == 503
        }
        #expect(unhealthy, "/healthz still 200 a second after SIGTERM")
        #expect(Date().timeIntervalSince(signalled) < 1.2)
        let stopping = try #require(notify.next(matching: "STOPPING=1", timeout: 2))
        #expect(stopping.at.timeIntervalSince(signalled) < 1)

        let newcomer = try TestPlayer(port: streamPort, path: RelayHarness.path(RelayHarness.contentID(102)))
        let refused = try newcomer.readHead()
        #expect(refused.status == 503)
        #expect(refused.headers["retry-after"] != nil)

        // The connected player keeps streaming through the drain.
        let during = player.drain(seconds: 2).bytes
        #expect(during > 100_000, "only \(during) bytes in 2 s of drain at 1 Mbit/s")
        try #require(serve.waitForExit(timeout: 12))
        let took = Date().timeIntervalSince(signalled)
        #expect(took > 3.5 && took < 9, "exited \(took) s after SIGTERM with --drain-seconds 4")
        #expect(serve.status == 0)
        #expect(simulator.totalCounters.getstreamRequests == 1, "the refused newcomer must not have opened an engine session")
    }

    @Test func aDrainEndsEarlyOnceEveryPlayerLeft() throws {
        let streamPort = try ProcessTests.freePort()
        let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:\(streamPort)", "--api-listen", "127.0.0.1:0", "--provision", "off",
                                      "--drain-seconds", "30", "--data-dir", ProcessTests.temporaryDirectory(), "--log-level", "warning"])
        defer { serve.kill() }
        #expect(eventually(timeout: 10) { (try? TestPlayer(port: streamPort, request: "")) != nil })
        let signalled = Date()
        kill(serve.process.processIdentifier, SIGTERM)
        try #require(serve.waitForExit(timeout: 10), "a drain without players waited for its full time")
        #expect(Date().timeIntervalSince(signalled) < 7)
        #expect(serve.status == 0)
    }
}

/// A datagram socket standing in for systemd's notify socket, read on a
/// thread of its own so every datagram gets its arrival time.
final class NotifyListener: @unchecked Sendable {
    struct Message: Sendable { let text: String; let at: Date }

    /// What the reading thread shares with the test; the thread holds only this.
    private final class Inbox: Sendable {
        let messages = Locked<[Message]>([])
        let running = Atomic<Bool>(true)
    }

    /// What `$NOTIFY_SOCKET` should hold to reach it.
    let address: String
    private let directory: TestDirectory?
    private let inbox = Inbox()

    init(abstract: Bool) throws {
        let name: String
        if abstract {
            name = "acerelay-notify-\(getpid())-\(UUID().uuidString.prefix(8))"
            directory = nil
        } else {
            let dir = try TestDirectory("notify")
            directory = dir
            name = dir.file("notify")
        }
        let (fd, address) = try UnixDatagram.bind(name, abstract: abstract)
        self.address = address
        let inbox = inbox
        Thread { Self.receive(fd: fd, into: inbox) }.start()
    }

    deinit {
        inbox.running.store(false, ordering: .relaxed)
    }

    private static func receive(fd: Int32, into inbox: Inbox) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while inbox.running.load(ordering: .relaxed) {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) == 1 else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            let message = Message(text: String(decoding: buffer.prefix(count), as: UTF8.self), at: Date())
            inbox.messages.withLock { $0.append(message) }
        }
        Glibc.close(fd)
    }

    /// Every datagram so far.
    var all: [Message] { inbox.messages.withLock { $0 } }

    /// The first datagram starting with `prefix` (from the start), waiting up to `timeout`.
    func next(matching prefix: String, timeout: Double) -> Message? {
        var found: Message?
        _ = eventually(timeout: timeout) {
            found = all.first { $0.text.hasPrefix(prefix) }
            return found != nil
        }
        return found
    }
}

extension SystemdProcessTests {
    @Test func aBadProxyProtocolOrDrainSettingStopsStartUpWithOneLine() throws {
        for (environment, name) in [(["ACERELAY_PROXY_PROTOCOL": "maybe"], "ACERELAY_PROXY_PROTOCOL"), (["ACERELAY_DRAIN_S": "-1"], "ACERELAY_DRAIN_S")] {
            let serve = try ServeProcess(["serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--provision", "off",
                                          "--data-dir", ProcessTests.temporaryDirectory()], environment: environment)
            defer { serve.kill() }
            try #require(serve.waitForExit(timeout: 10))
            #expect(serve.status == 2)
            #expect(serve.errorLines.count == 1 && serve.errorLines[0].contains(name), "\(serve.errorLines)")
        }
    }
}
