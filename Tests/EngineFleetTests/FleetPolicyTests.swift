import Foundation
import Testing
@testable import EngineFleet

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
