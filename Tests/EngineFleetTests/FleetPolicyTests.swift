import Clocks
import Foundation
import Testing
@testable import EngineFleet
import Logging
import RelayCore
import Locking

@Suite struct CircuitBreakerTests {
    @Test func opensAfterTheThresholdAndLetsOneTrialThroughAfterTheCooldown() {
        let clock = ManualClock()
        var breaker = CircuitBreaker(failureThreshold: 3, cooldown: 60)
        for _ in 0..<2 {
            do {
                let outcome = breaker.allowAttempt(at: clock.now)
                #expect(outcome)
            }
            breaker.recordFailure(at: clock.now)
        }
        #expect(breaker.state(at: clock.now) == .closed)
        breaker.recordFailure(at: clock.now)
        #expect(breaker.state(at: clock.now) == .open)
        do {
            let outcome = breaker.allowAttempt(at: clock.now)
            #expect(!outcome)
        }
        clock.advance(30)
        #expect(breaker.secondsUntilRetry(at: clock.now) == 30)
        clock.advance(30)
        #expect(breaker.state(at: clock.now) == .halfOpen)
        do {
            let outcome = breaker.allowAttempt(at: clock.now)
            #expect(outcome)
        }
        do {
            let outcome = breaker.allowAttempt(at: clock.now)
            #expect(!outcome, "one trial at a time")
        }
        breaker.recordFailure(at: clock.now)
        #expect(breaker.state(at: clock.now) == .open, "a failed trial opens it again")
        clock.advance(60)
        do {
            let outcome = breaker.allowAttempt(at: clock.now)
            #expect(outcome)
        }
        breaker.recordSuccess()
        #expect(breaker.state(at: clock.now) == .closed)
        #expect(breaker.consecutiveFailures == 0)
    }
}

@Suite struct HealthTrackerTests {
    @Test func unhealthyOnlyAfterConsecutiveFailuresAndHealthyAgainAtOnce() {
        let clock = ManualClock()
        var tracker = HealthTracker(failureThreshold: 3)
        #expect(tracker.status == .unknown)
        do {
            let outcome = tracker.record(success: true, at: clock.now)
            #expect(outcome)
        }
        #expect(tracker.status == .healthy)
        tracker.record(success: false, at: clock.now)
        tracker.record(success: false, at: clock.now)
        #expect(tracker.status == .healthy)
        tracker.record(success: true, at: clock.now)
        tracker.record(success: false, at: clock.now)
        tracker.record(success: false, at: clock.now)
        #expect(tracker.status == .healthy, "the success in between reset the count")
        clock.advance(20)
        do {
            let outcome = tracker.record(success: false, at: clock.now)
            #expect(outcome)
        }
        #expect(tracker.status == .unhealthy)
        #expect(tracker.unhealthySince == clock.now)
        do {
            let outcome = tracker.record(success: true, at: clock.now)
            #expect(outcome)
        }
        #expect(tracker.status == .healthy)
        #expect(tracker.unhealthySince == nil)
    }
}

@Suite struct PortAllocatorTests {
    @Test func allocatesWithoutCollisionsAndRespectsClaimedPorts() {
        var ports = PortAllocator(range: 19000...19004, inUse: [19000, 19002])
        do {
            let outcome = ports.allocate()
            #expect(outcome == 19001)
        }
        do {
            let outcome = ports.claim(19001)
            #expect(!outcome)
        }
        do {
            let outcome = ports.claim(19003)
            #expect(outcome)
        }
        do {
            let outcome = ports.allocate()
            #expect(outcome == 19004)
        }
        do {
            let outcome = ports.allocate()
            #expect(outcome == nil)
        }
        ports.release(19002)
        do {
            let outcome = ports.allocate()
            #expect(outcome == 19002)
        }
    }

    @Test func parsesTheOrchestratorsRangeFormat() {
        #expect(PortAllocator.parseRange("19000-19999") == 19000...19999)
        #expect(PortAllocator.parseRange(" 100 - 200 ") == 100...200)
        #expect(PortAllocator.parseRange("200-100") == nil)
        #expect(PortAllocator.parseRange("0-10") == nil)
        #expect(PortAllocator.parseRange("abc") == nil)
    }
}

@Suite struct ScalingPolicyTests {
    let policy = ScalingPolicy(minReplicas: 2, minFreeReplicas: 1, maxReplicas: 4, maxStreamsPerEngine: 3, idleGracePeriod: 30)

    @Test func startsMinReplicasFromNothing() {
        #expect(policy.decide(engines: [], pending: 0, now: Date()).provision == 2)
        #expect(policy.decide(engines: [], pending: 2, now: Date()).provision == 0, "engines being created count")
    }

    @Test func keepsOneFreeEngineAheadOfDemandUpToTheCap() {
        let now = Date()
        let busy = (0..<2).map { EngineLoad(id: "e\($0)", healthy: true, streams: 1, idleSince: nil) }
        #expect(policy.decide(engines: busy, pending: 0, now: now).provision == 1)
        let full = (0..<4).map { EngineLoad(id: "e\($0)", healthy: true, streams: 3, idleSince: nil) }
        #expect(policy.decide(engines: full, pending: 0, now: now).provision == 0, "MAX_REPLICAS is a hard cap")
        let unhealthyFree = busy + [EngineLoad(id: "sick", healthy: false, streams: 0, idleSince: now)]
        #expect(policy.decide(engines: unhealthyFree, pending: 0, now: now).provision == 1, "an unhealthy engine is no free capacity")
    }

    @Test func removesIdleEnginesAfterTheGracePeriodButKeepsTheMinimums() {
        let start = Date()
        let engines = [
            EngineLoad(id: "busy", healthy: true, streams: 2, idleSince: nil),
            EngineLoad(id: "idle-old", healthy: true, streams: 0, idleSince: start),
            EngineLoad(id: "idle-new", healthy: true, streams: 0, idleSince: start.addingTimeInterval(20)),
            EngineLoad(id: "idle-older", healthy: true, streams: 0, idleSince: start.addingTimeInterval(-10)),
        ]
        #expect(policy.decide(engines: engines, pending: 0, now: start.addingTimeInterval(10)).remove == [])
        // At 35 s two are past the grace period; one free engine must stay.
        #expect(policy.decide(engines: engines, pending: 0, now: start.addingTimeInterval(35)).remove == ["idle-older", "idle-old"])
        var noDelete = policy
        noDelete.autoDelete = false
        #expect(noDelete.decide(engines: engines, pending: 0, now: start.addingTimeInterval(100)).remove == [])
    }
}

@Suite struct EngineFleetSelectionTests {
    private func content(_ n: Int) -> ContentKey { ContentKey(kind: .contentID, value: String(format: "%040x", n))! }

    private func makeFleet(_ clock: ManualClock, limit: Int = 3) -> EngineFleet {
        EngineFleet(clock: clock, maxStreamsPerEngine: limit, startupTimeout: 25, failureThreshold: 3, logger: Logger(label: "test"))
    }

    private func engine(_ id: String, _ clock: ManualClock, forwarded: Bool = false) -> FleetEngine {
        FleetEngine(endpoint: EngineEndpoint(id: id, baseURL: "http://127.0.0.1:1"), name: id, host: "127.0.0.1", port: 1,
                    managed: true, forwarded: forwarded, failureThreshold: 3, now: clock.now)
    }

    private func reserve(_ fleet: EngineFleet, _ content: ContentKey, excluding: Set<EngineEndpoint> = []) -> Result<EngineEndpoint, EngineUnavailable>? {
        let box = Locked<Result<EngineEndpoint, EngineUnavailable>?>(nil)
        fleet.reserveEngine(for: content, excluding: excluding) { result in box.withLock { $0 = result } }
        return box.withLock { $0 }
    }

    @Test func prefersHealthyThenForwardedThenLeastLoadedThenLongestIdle() throws {
        let clock = ManualClock()
        let fleet = makeFleet(clock)
        fleet.register(engine("a", clock))
        clock.advance(1)
        fleet.register(engine("b", clock))
        fleet.register(engine("sick", clock))
        for _ in 0..<3 { fleet.recordProbe(id: "sick", success: false) }
        fleet.recordProbe(id: "b", success: true)
        // b is healthy, a not yet probed: only b can take streams.
        #expect(try reserve(fleet, content(1))?.get().id == "b")
        #expect(try reserve(fleet, content(2))?.get().id == "b", "an unprobed engine may not be listening yet")
        fleet.recordProbe(id: "a", success: true)
        #expect(try reserve(fleet, content(3))?.get().id == "a", "least loaded among healthy")
        fleet.register(engine("vpn", clock, forwarded: true))
        fleet.recordProbe(id: "vpn", success: true)
        #expect(try reserve(fleet, content(4))?.get().id == "vpn", "forwarded preferred")
        #expect(fleet.engines.first { $0.id == "sick" }?.load == 0, "unhealthy engines get no new streams")
    }

    @Test func aProbeTakesOnlyASlotBeyondTheOneKeptForPlayersAndIsNoDemand() throws {
        let clock = ManualClock()
        let fleet = makeFleet(clock, limit: 2)
        let asked = Locked(0)
        fleet.onDemand { asked.withLock { $0 += 1 }; return nil }
        fleet.register(engine("a", clock))
        #expect(fleet.reserveSpareEngine(for: content(1), excluding: []) == nil, "an engine not yet probed is no spare capacity")
        fleet.recordProbe(id: "a", success: true)
        let probed = try #require(fleet.reserveSpareEngine(for: content(1), excluding: []))
        #expect(probed.id == "a")
        #expect(fleet.reserveSpareEngine(for: content(2), excluding: []) == nil, "the last slot stays for a player")
        #expect(fleet.hasFreeSlot(excluding: []))
        #expect(try reserve(fleet, content(3))?.get().id == "a")
        #expect(!fleet.hasFreeSlot(excluding: []))
        let a = try #require(fleet.engine(id: "a"))
        #expect(a.load == 2)
        #expect(fleet.playerLoad(of: a) == 1, "scaling counts the player's content, not the probe's")
        #expect(asked.withLock { $0 } == 0, "probes never ask for provisioning")
        fleet.releaseEngine(probed, for: content(1))
        #expect(fleet.playerLoad(of: try #require(fleet.engine(id: "a"))) == 1)
    }

    @Test func aBurstOfContentsNeverOverbooksAnEngine() throws {
        let clock = ManualClock()
        let fleet = makeFleet(clock, limit: 3)
        for id in ["a", "b"] {
            fleet.register(engine(id, clock))
            fleet.recordProbe(id: id, success: true)
        }
        let results = (0..<20).map { reserve(fleet, content($0)) }
        #expect(results.compactMap { try? $0?.get() }.count == 6)
        #expect(fleet.engines.allSatisfy { $0.load <= 3 })
        #expect(results.filter { if case .failure = $0 { return true } else { return false } }.count == 14)
    }

    @Test func waitsForProvisioningAndIsServedWhenAnEngineTurnsHealthy() throws {
        let clock = ManualClock()
        let fleet = makeFleet(clock)
        let asked = Locked(0)
        fleet.onDemand { asked.withLock { $0 += 1 }; return nil }
        let box = Locked<Result<EngineEndpoint, EngineUnavailable>?>(nil)
        fleet.reserveEngine(for: content(1), excluding: []) { result in box.withLock { $0 = result } }
        #expect(box.withLock { $0 } == nil)
        #expect(asked.withLock { $0 } == 1)
        #expect(fleet.waiting == 1)
        fleet.register(engine("new", clock))
        #expect(box.withLock { $0 } == nil, "not before its first probe succeeds")
        fleet.recordProbe(id: "new", success: true)
        #expect(try box.withLock { $0 }?.get().id == "new")
        #expect(fleet.waiting == 0)
    }

    @Test func waitersTimeOutAndRefusalsCarryTheProvisionersReason() {
        let clock = ManualClock()
        let fleet = makeFleet(clock)
        fleet.onDemand { nil }
        let box = Locked<Result<EngineEndpoint, EngineUnavailable>?>(nil)
        fleet.reserveEngine(for: content(1), excluding: []) { result in box.withLock { $0 = result } }
        clock.advance(26)
        fleet.serveWaiters()
        #expect(box.withLock { $0 } == .failure(EngineUnavailable(code: "startup_timeout", message: "no engine became available within 25 s", retryAfterSeconds: 15)))
        let refusal = EngineUnavailable(code: "circuit_breaker", message: "provisioning paused after failures", retryAfterSeconds: 40)
        fleet.onDemand { refusal }
        #expect(reserve(fleet, content(2)) == .failure(refusal))
    }
}
