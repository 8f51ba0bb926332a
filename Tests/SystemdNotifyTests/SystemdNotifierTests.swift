import Foundation
import Logging
import Synchronization
import XCTest
@testable import SystemdNotify

final class SystemdNotifierTests: XCTestCase {
    func testPathSocketReceivesEveryMessage() throws {
        let socket = try NotifySocket.path()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address])
        XCTAssertTrue(notifier.isEnabled)
        try assertAllMessages(notifier, arriveAt: socket)
    }

    func testAbstractSocketReceivesEveryMessage() throws {
        let socket = try NotifySocket.abstract()
        XCTAssertTrue(socket.address.hasPrefix("@"))
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address])
        try assertAllMessages(notifier, arriveAt: socket)
    }

    private func assertAllMessages(_ notifier: SystemdNotifier, arriveAt socket: NotifySocket) throws {
        XCTAssertTrue(notifier.ready())
        XCTAssertEqual(socket.receive(), "READY=1")
        XCTAssertTrue(notifier.status("12 players on 3 hubs\nsecond line"))
        XCTAssertEqual(socket.receive(), "STATUS=12 players on 3 hubs second line")
        XCTAssertTrue(notifier.watchdog())
        XCTAssertEqual(socket.receive(), "WATCHDOG=1")
        XCTAssertTrue(notifier.stopping())
        XCTAssertEqual(socket.receive(), "STOPPING=1")
        XCTAssertTrue(notifier.send(["READY=1", "STATUS=up"]))
        XCTAssertEqual(socket.receive(), "READY=1\nSTATUS=up")
        XCTAssertNil(socket.receive(timeout: 0.1), "one datagram per call")
    }

    func testWithoutNotifySocketEverythingIsANoOp() {
        let notifier = SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000"])
        XCTAssertFalse(notifier.isEnabled)
        XCTAssertFalse(notifier.ready())
        XCTAssertFalse(notifier.status("x"))
        XCTAssertFalse(notifier.watchdog())
        XCTAssertFalse(notifier.stopping())
        let pinger = WatchdogPinger(notifier: notifier, gate: WatchdogGate(), logger: Logger(label: "test"))
        XCTAssertNil(pinger, "no socket, no pinger")
    }

    func testASocketNobodyListensOnFailsQuietly() throws {
        let socket = try NotifySocket.path()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address + ".missing"])
        XCTAssertTrue(notifier.isEnabled)
        XCTAssertFalse(notifier.ready())
    }

    func testWatchdogIntervalFromEnvironment() {
        let socket = "/run/systemd/notify"
        XCTAssertEqual(SystemdNotifier(environment: ["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "30000000"]).watchdogInterval, .seconds(30))
        XCTAssertEqual(SystemdNotifier(environment: ["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"], pid: 4242).watchdogInterval,
                       .seconds(30))
        XCTAssertNil(SystemdNotifier(environment: ["NOTIFY_SOCKET": socket]).watchdogInterval)
        XCTAssertNil(SystemdNotifier(environment: ["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "0"]).watchdogInterval)
        XCTAssertNil(SystemdNotifier(environment: ["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "soon"]).watchdogInterval)
    }

    func testWatchdogPIDOfAnotherProcessMeansNoWatchdog() throws {
        let socket = try NotifySocket.path()
        let environment = ["NOTIFY_SOCKET": socket.address, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "\(getpid() + 1)"]
        let notifier = SystemdNotifier(environment: environment)
        XCTAssertNil(notifier.watchdogInterval)
        XCTAssertNil(WatchdogPinger(notifier: notifier, gate: WatchdogGate(), logger: Logger(label: "test")))
        // Our own pid: the watchdog is ours.
        XCTAssertEqual(SystemdNotifier(environment: environment.merging(["WATCHDOG_PID": "\(getpid())"]) { $1 }).watchdogInterval, .seconds(2))
    }

    func testAddressLengths() throws {
        let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        // Abstract: the NUL for '@' plus the name, no trailing NUL.
        XCTAssertEqual(try XCTUnwrap(SystemdNotifier.address("@abc")).length, socklen_t(offset + 4))
        XCTAssertEqual(try XCTUnwrap(SystemdNotifier.address("/run/x")).length, socklen_t(offset + 7))
        XCTAssertNil(SystemdNotifier.address("@"))
        XCTAssertNil(SystemdNotifier.address("/" + String(repeating: "a", count: 200)))
        XCTAssertFalse(SystemdNotifier(environment: ["NOTIFY_SOCKET": "vsock:2:1234"]).isEnabled)
    }
}

/// A clock tests move by hand, in nanoseconds.
final class ManualClock: Sendable {
    private let value = Atomic<Int64>(1_000_000_000_000)
    var now: Int64 { value.load(ordering: .relaxed) }
    func advance(seconds: Double) { value.add(Int64(seconds * 1e9), ordering: .relaxed) }
}

final class WatchdogGateTests: XCTestCase {
    func testPureDecision() {
        let second: Int64 = 1_000_000_000
        XCTAssertTrue(WatchdogGate.shouldPing(lastTurns: [], now: 100 * second, maxAge: 30 * second))
        XCTAssertTrue(WatchdogGate.shouldPing(lastTurns: [99 * second, 95 * second, 70 * second], now: 100 * second, maxAge: 30 * second))
        XCTAssertFalse(WatchdogGate.shouldPing(lastTurns: [99 * second, 69 * second], now: 100 * second, maxAge: 30 * second))
        XCTAssertTrue(WatchdogGate.shouldPing(lastTurns: [101 * second], now: 100 * second, maxAge: 30 * second))
    }

    func testAllLoopsFreshPingsOneStaleDoesNot() {
        let clock = ManualClock()
        let gate = WatchdogGate(clock: { clock.now })
        let relay0 = gate.register("relay-0"), relay1 = gate.register("relay-1")
        // Registration counts as a turn.
        XCTAssertTrue(gate.shouldPing(maxAge: .seconds(30)))
        for _ in 0..<20 {
            clock.advance(seconds: 1)
            relay0.turned()
            relay1.turned()
        }
        XCTAssertTrue(gate.shouldPing(maxAge: .seconds(30)))
        XCTAssertEqual(gate.staleLoops(maxAge: .seconds(30)), [])
        // relay-1 is stuck: relay-0 keeps turning.
        for _ in 0..<31 {
            clock.advance(seconds: 1)
            relay0.turned()
        }
        XCTAssertFalse(gate.shouldPing(maxAge: .seconds(30)))
        XCTAssertEqual(gate.staleLoops(maxAge: .seconds(30)), ["relay-1"])
        // It comes back.
        relay1.turned()
        XCTAssertTrue(gate.shouldPing(maxAge: .seconds(30)))
        // A loop that ends on purpose no longer counts.
        clock.advance(seconds: 40)
        relay0.turned()
        XCTAssertFalse(gate.shouldPing(maxAge: .seconds(30)))
        gate.unregister(relay1)
        XCTAssertTrue(gate.shouldPing(maxAge: .seconds(30)))
    }

    func testExplicitTimes() {
        let clock = ManualClock()
        let gate = WatchdogGate(clock: { clock.now })
        let loop = gate.register("relay-0")
        clock.advance(seconds: 10)
        loop.turned(at: clock.now - 5_000_000_000)
        XCTAssertTrue(gate.shouldPing(maxAge: .seconds(6)))
        XCTAssertFalse(gate.shouldPing(maxAge: .seconds(4)))
    }

    func testPingerSendsOnlyWhileLoopsTurn() throws {
        let socket = try NotifySocket.path()
        let clock = ManualClock()
        let gate = WatchdogGate(clock: { clock.now })
        let loop = gate.register("relay-0")
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address, "WATCHDOG_USEC": "30000000"])
        let pinger = try XCTUnwrap(WatchdogPinger(notifier: notifier, gate: gate, logger: Logger(label: "test")))
        XCTAssertEqual(pinger.interval, .seconds(30))
        XCTAssertTrue(pinger.check())
        XCTAssertEqual(socket.receive(), "WATCHDOG=1")
        clock.advance(seconds: 31)
        XCTAssertFalse(pinger.check())
        XCTAssertFalse(pinger.check())
        XCTAssertNil(socket.receive(timeout: 0.2), "a stale loop stops the pings")
        loop.turned()
        XCTAssertTrue(pinger.check())
        XCTAssertEqual(socket.receive(), "WATCHDOG=1")
    }

    func testPingerThreadPingsAtHalfTheInterval() throws {
        let socket = try NotifySocket.path()
        let gate = WatchdogGate()
        let loop = gate.register("relay-0")
        // 400 ms interval: pings every 200 ms while the loop turns.
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address, "WATCHDOG_USEC": "400000"])
        let pinger = try XCTUnwrap(WatchdogPinger(notifier: notifier, gate: gate, logger: Logger(label: "test")))
        let turning = Atomic<Bool>(true)
        let turner = Thread {
            while turning.load(ordering: .relaxed) {
                loop.turned()
                usleep(20_000)
            }
        }
        turner.start()
        pinger.start()
        defer { pinger.stop() }
        let start = Date()
        for _ in 0..<3 { XCTAssertEqual(socket.receive(), "WATCHDOG=1") }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(elapsed, 0.3, "three pings 200 ms apart take at least 0.4 s from the first one")
        // The loop stops turning: within one interval the pings stop.
        turning.store(false, ordering: .relaxed)
        var drained = 0
        while drained < 10, socket.receive(timeout: 0.6) != nil { drained += 1 }
        XCTAssertLessThanOrEqual(drained, 3, "pings already due when the loop stopped")
        XCTAssertNil(socket.receive(timeout: 0.6))
    }
}
