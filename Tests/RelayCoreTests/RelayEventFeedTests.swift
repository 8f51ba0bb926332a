import Foundation
import Locking
import Testing
import TestSupport
@testable import RelayCore

/// Events an observer received, and a way to wait for them.
private final class Received: Sendable {
    let events = Locked<[RelayEvent]>([])

    func append(_ event: RelayEvent) { events.withLock { $0.append(event) } }
    var all: [RelayEvent] { events.withLock { $0 } }

    /// Waits until `condition` holds for the events so far, or `timeout` passes.
    func wait(timeout: Double = 10, until condition: ([RelayEvent]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if events.withLock({ condition($0) }) { return true }
            usleep(2_000)
        }
        return events.withLock { condition($0) }
    }
}

@Suite struct RelayEventFeedTests {
    private func hub(_ n: UInt64) -> HubID {
        HubID(content: ContentKey(kind: .contentID, value: String(repeating: "a", count: 39) + String(n, radix: 16))!, serial: n)
    }

    /// A lifecycle event carrying `sequence`, so order can be checked.
    private func lifecycle(_ hub: HubID, _ sequence: Int) -> RelayEvent { .firstByte(hub, seconds: Double(sequence)) }

    private func measured(_ hub: HubID, _ sequence: Int) -> RelayEvent {
        .hubMeasured(HubMeasurement(hub: hub, bitsPerSecond: 0, continuityErrors: 0, bytesIn: UInt64(sequence),
                                    bytesOut: 0, players: 0, joinPoints: 0))
    }

    private func sequence(_ event: RelayEvent) -> Int? {
        switch event {
        case .firstByte(_, let seconds): return Int(seconds)
        case .hubMeasured(let m): return Int(m.bytesIn)
        default: return nil
        }
    }

    @Test func eventsOfEachHubArriveInTheOrderTheyWerePublished() {
        let feed = RelayEventFeed(measurementCapacity: 100_000)
        let received = Received()
        let subscription = feed.subscribe("order") { received.append($0) }
        defer { subscription.cancel() }
        let perHub = 5_000
        DispatchQueue.concurrentPerform(iterations: 4) { n in
            let id = hub(UInt64(n))
            for i in 0..<perHub { feed.publish(i % 3 == 0 ? measured(id, i) : lifecycle(id, i)) }
        }
        #expect(received.wait { $0.count == 4 * perHub })
        for n in 0..<4 {
            let sequences = received.all.filter { $0.hub == hub(UInt64(n)) }.compactMap(sequence)
            #expect(sequences == Array(0..<perHub), "hub \(n) out of order")
        }
    }

    @Test func aBlockedObserverLosesMeasurementsButNoLifecycleEvent() {
        let feed = RelayEventFeed(measurementCapacity: 16)
        let received = Received()
        let gate = DispatchSemaphore(value: 0)
        let subscription = feed.subscribe("slow") { event in
            if received.all.isEmpty { gate.wait() }
            received.append(event)
        }
        defer { subscription.cancel() }
        let id = hub(1)
        feed.publish(lifecycle(id, 0))
        for i in 1...10_000 { feed.publish(i.isMultiple(of: 2) ? measured(id, i) : lifecycle(id, i)) }
        gate.signal()
        let lifecycleCount = 1 + 5_000
        #expect(received.wait { $0.filter { !$0.isMeasurement }.count == lifecycleCount })
        let measurements = received.all.filter(\.isMeasurement).count
        #expect(measurements <= 16)
        #expect(subscription.droppedMeasurements == UInt64(5_000 - measurements))
        #expect(feed.droppedMeasurements == subscription.droppedMeasurements)
        // The survivors are the newest measurements, still in order after the lifecycle events before them.
        let sequences = received.all.compactMap(sequence)
        #expect(sequences == sequences.sorted())
        #expect(received.all.last.flatMap(sequence) == 10_000)
    }

    @Test func publishingReturnsPromptlyWhileAnObserverIsStuck() {
        let feed = RelayEventFeed(measurementCapacity: 64)
        let stuck = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        let subscription = feed.subscribe("stuck") { _ in
            entered.signal()
            stuck.wait()
        }
        defer {
            subscription.cancel()
            stuck.signal()
        }
        let id = hub(2)
        feed.publish(lifecycle(id, 0))
        #expect(entered.wait(timeout: .now() + 5) == .success, "the observer is inside its handler")
        var slowest = 0.0
        let started = Date()
        for i in 1...50_000 {
            let before = DispatchTime.now().uptimeNanoseconds
            feed.publish(i % 10 == 0 ? lifecycle(id, i) : measured(id, i))
            slowest = max(slowest, Double(DispatchTime.now().uptimeNanoseconds - before) / 1e9)
        }
        // Generous bounds for a loaded 2-core machine; a publish that waited for the
        // stuck observer would never return at all.
        #expect(Date().timeIntervalSince(started) < TestTiming.bound(5))
        #expect(slowest < TestTiming.bound(0.25))
        #expect(subscription.droppedMeasurements == 45_000 - 64)
    }

    @Test func everyObserverGetsEveryEventAndACancelledOneStops() {
        let feed = RelayEventFeed()
        let first = Received(), second = Received()
        let a = feed.subscribe("a") { first.append($0) }
        let b = feed.subscribe("b") { second.append($0) }
        defer { b.cancel() }
        let id = hub(3)
        feed.publish(.hubStarted(id))
        feed.publish(.playerJoined(id))
        #expect(first.wait { $0.count == 2 })
        #expect(second.wait { $0.count == 2 })
        a.cancel()
        feed.publish(.hubClosed(id, reason: .idle))
        #expect(second.wait { $0.count == 3 })
        #expect(first.all.count == 2)
    }
}
