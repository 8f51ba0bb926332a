import Clocks
import Foundation
import Logging
import Testing
import VPN

/// The tracker's rules and the monitor's transitions, driven with checks made by hand and a manual clock.
struct VPNTrackerTests {
    static func check(ip: String? = "203.0.113.7", port: Int?? = .some(nil), health: String? = nil) -> VPNCheck {
        VPNCheck(containerHealth: health,
                 publicIP: ip.map { .success($0) } ?? .failure(.unreachable("could not connect: connection refused")),
                 forwardedPort: port.map { .success($0) } ?? .failure(.status(503)))
    }

    @Test func theFirstGoodCheckIsUpAndNotAReconnect() {
        var tracker = VPNTracker(stableChecks: 3)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(tracker.connection == .unchecked)
        #expect(tracker.record(Self.check(port: 40_123), at: now)
            == [.cameUp(publicIP: "203.0.113.7", afterOutage: false), .forwardedPortChanged(from: nil, to: 40_123)])
        #expect(tracker.connection == .up(publicIP: "203.0.113.7", since: now))
        #expect(tracker.record(Self.check(port: 40_123), at: now.addingTimeInterval(5)).isEmpty)
    }

    @Test func refusedEmptyIPUnhealthyContainerAnd503AllCountAsDown() {
        let refused = Self.check(ip: nil)
        let empty = Self.check(ip: "")
        let unhealthy = Self.check(health: "unhealthy")
        let starting = Self.check(health: "starting")
        let unavailable = VPNCheck(containerHealth: nil, publicIP: .failure(.status(503)), forwardedPort: .success(nil))
        for check in [refused, empty, unhealthy, starting, unavailable] {
            var tracker = VPNTracker()
            let changes = tracker.record(check, at: Date())
            #expect(changes.count == 1)
            guard case .wentDown = changes.first else { Issue.record("\(check) not judged down"); continue }
            #expect(!tracker.isUp)
        }
        #expect(Self.check(health: "healthy").downReason == nil)
        #expect(unavailable.downReason?.contains("503") == true)
    }

    @Test func backUpIsStableOnlyAfterTheConfiguredChecksInARow() {
        var tracker = VPNTracker(stableChecks: 3)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        _ = tracker.record(Self.check(), at: start)
        #expect(tracker.record(Self.check(ip: ""), at: start.addingTimeInterval(5)) == [.wentDown(reason: "Gluetun reports no public IP (tunnel down)")])
        #expect(tracker.record(Self.check(ip: nil), at: start.addingTimeInterval(10)).isEmpty, "still down: no second transition")
        #expect(tracker.record(Self.check(), at: start.addingTimeInterval(15)) == [.cameUp(publicIP: "203.0.113.7", afterOutage: true)])
        #expect(tracker.record(Self.check(), at: start.addingTimeInterval(20)).isEmpty)
        // A flap before it is stable starts the count again.
        _ = tracker.record(Self.check(ip: ""), at: start.addingTimeInterval(25))
        _ = tracker.record(Self.check(), at: start.addingTimeInterval(30))
        #expect(tracker.record(Self.check(), at: start.addingTimeInterval(35)).isEmpty)
        #expect(tracker.record(Self.check(), at: start.addingTimeInterval(40)) == [.stableAfterOutage])
        #expect(tracker.record(Self.check(), at: start.addingTimeInterval(45)).isEmpty, "stable is said once")
        #expect(tracker.connection == .up(publicIP: "203.0.113.7", since: start.addingTimeInterval(30)))
    }

    @Test func aFailedPortLookupKeepsTheLastPortAndZeroMeansNone() {
        var tracker = VPNTracker()
        let now = Date()
        _ = tracker.record(Self.check(port: 40_000), at: now)
        #expect(tracker.record(Self.check(port: .none), at: now).isEmpty, "a 503 on the port route says nothing about the port")
        #expect(tracker.forwardedPort == 40_000)
        #expect(tracker.record(Self.check(port: 41_000), at: now) == [.forwardedPortChanged(from: 40_000, to: 41_000)])
        #expect(tracker.record(Self.check(port: .some(nil)), at: now) == [.forwardedPortChanged(from: 41_000, to: nil)])
    }

    @Test func theMonitorStampsChecksWithItsClockAndTellsListeners() async {
        let clock = ManualClock()
        let settings = VPNSettings(containerName: "gluetun", controlURL: "http://127.0.0.1:9", stableChecks: 2)
        let monitor = VPNMonitor(settings: settings, clock: clock, containerHealth: { nil }, logger: Logger(label: "vpn-test"))
        let heard = HeardTransitions()
        monitor.onTransition { change, status in await heard.add(change, up: status.isUp) }
        #expect(monitor.status.health == "unknown")
        #expect(monitor.status.downReason != nil, "unchecked is not up: provisioning waits for the first check")
        await monitor.apply(Self.check(ip: ""))
        clock.advance(5)
        await monitor.apply(Self.check())
        clock.advance(5)
        await monitor.apply(Self.check())
        #expect(await heard.all.map(\.0) == [.wentDown(reason: "Gluetun reports no public IP (tunnel down)"),
                                            .cameUp(publicIP: "203.0.113.7", afterOutage: true), .stableAfterOutage])
        #expect(await heard.all.map(\.1) == [false, true, true], "listeners see the status after the change")
        #expect(monitor.status.lastCheck == clock.now)
        #expect(monitor.status.publicIP == "203.0.113.7")
        #expect(monitor.status.health == "healthy")
    }
}

actor HeardTransitions {
    private(set) var all: [(VPNTransition, Bool)] = []
    func add(_ change: VPNTransition, up: Bool) { all.append((change, up)) }
}
