import CSupport
import Foundation
import Locking
import Synchronization

/// The one port through which the relay tells the rest of the process what it
/// does: every observer subscribes here and gets every event on its own
/// delivery thread.
///
/// Publishing, on a relay loop, takes a short lock per observer and copies the
/// event into that observer's queue; it never waits for an observer. Each
/// observer has two queues, merged back into publication order on delivery by
/// a sequence number:
/// - measurements (`hubMeasured`) go into a fixed ring; when it is full the
///   oldest measurement is dropped and counted. A measurement is superseded by
///   the next one a second later, so losing old ones loses nothing an observer
///   that fell behind could still use.
/// - everything else goes into a queue that grows when full. These events mean
///   something that happened once (a player joined, a session ended); a
///   recorder that missed one would be wrong forever. They come at the rate of
///   player and hub churn, which already allocates (an accept, a hub), so the
///   growth is bounded by real work, never by packets or by time.
public final class RelayEventFeed: Sendable {
    private let channels = Locked<[ObserverChannel]>([])
    private let measurementCapacity: Int

    /// - Parameter measurementCapacity: measurements kept per observer before the oldest is dropped.
    public init(measurementCapacity: Int = 256) {
        self.measurementCapacity = max(measurementCapacity, 1)
    }

    /// Starts delivering every event published from now on to `observer`, in order,
    /// on a new thread named after `name`. Keep the subscription to cancel it;
    /// dropping it does not unsubscribe.
    @discardableResult
    public func subscribe(_ name: String, _ observer: any RelayObserver) -> RelayEventSubscription {
        let channel = ObserverChannel(name: name, observer: observer, measurementCapacity: measurementCapacity)
        channels.withLock { $0.append(channel) }
        channel.startThread()
        return RelayEventSubscription(feed: self, channel: channel)
    }

    /// `subscribe(_:_:)` with a closure as the observer.
    @discardableResult
    public func subscribe(_ name: String, _ handler: @escaping @Sendable (RelayEvent) -> Void) -> RelayEventSubscription {
        subscribe(name, ClosureObserver(handler: handler))
    }

    /// Queues `event` for every observer. Any thread; never blocks on an observer.
    public func publish(_ event: RelayEvent) {
        channels.withLock { channels in
            for channel in channels { channel.enqueue(event) }
        }
    }

    /// Measurements dropped because an observer fell behind, over all observers.
    public var droppedMeasurements: UInt64 {
        channels.withLock { $0.reduce(0) { $0 + $1.droppedMeasurements.load(ordering: .relaxed) } }
    }

    fileprivate func remove(_ channel: ObserverChannel) {
        channels.withLock { list in list.removeAll { $0 === channel } }
    }
}

/// One observer's place in the feed.
public final class RelayEventSubscription: Sendable {
    private let feed: RelayEventFeed
    private let channel: ObserverChannel

    fileprivate init(feed: RelayEventFeed, channel: ObserverChannel) {
        self.feed = feed
        self.channel = channel
    }

    /// Measurements this observer lost because it fell behind.
    public var droppedMeasurements: UInt64 { channel.droppedMeasurements.load(ordering: .relaxed) }

    /// Stops delivery: events still queued are discarded, and the delivery thread
    /// ends once the observer returns from the event it is handling.
    public func cancel() {
        feed.remove(channel)
        channel.stop()
    }
}

private struct ClosureObserver: RelayObserver {
    let handler: @Sendable (RelayEvent) -> Void
    func observe(_ event: RelayEvent) { handler(event) }
}

/// An event and its place in publication order.
private struct QueuedEvent {
    var sequence: UInt64
    var event: RelayEvent
}

/// A FIFO on a circular buffer, so steady-state pushes and pops do not allocate.
private struct EventRing {
    private var slots: [QueuedEvent?]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) { slots = Array(repeating: nil, count: max(capacity, 1)) }

    var isFull: Bool { count == slots.count }
    var first: QueuedEvent? { count == 0 ? nil : slots[head] }

    /// Appends, doubling the buffer when full.
    mutating func push(_ entry: QueuedEvent) {
        if isFull {
            var grown = [QueuedEvent?](repeating: nil, count: slots.count * 2)
            for i in 0..<count { grown[i] = slots[(head + i) % slots.count] }
            slots = grown
            head = 0
        }
        slots[(head + count) % slots.count] = entry
        count += 1
    }

    mutating func popFirst() -> QueuedEvent? {
        guard count > 0 else { return nil }
        let entry = slots[head]
        slots[head] = nil
        head = (head + 1) % slots.count
        count -= 1
        return entry
    }

    mutating func removeAll() {
        while popFirst() != nil {}
    }
}

/// One observer's queues and delivery thread.
private final class ObserverChannel: @unchecked Sendable {
    let name: String
    let observer: any RelayObserver
    let droppedMeasurements = Atomic<UInt64>(0)
    private let measurementCapacity: Int
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var lifecycle = EventRing(capacity: 64)
    private var measurements: EventRing
    private var nextSequence: UInt64 = 0
    private var stopped = false

    init(name: String, observer: any RelayObserver, measurementCapacity: Int) {
        self.name = name
        self.observer = observer
        self.measurementCapacity = measurementCapacity
        measurements = EventRing(capacity: measurementCapacity)
    }

    func enqueue(_ event: RelayEvent) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return }
        let entry = QueuedEvent(sequence: nextSequence, event: event)
        nextSequence &+= 1
        if event.isMeasurement {
            if measurements.count >= measurementCapacity {
                _ = measurements.popFirst()
                droppedMeasurements.add(1, ordering: .relaxed)
            }
            measurements.push(entry)
        } else {
            lifecycle.push(entry)
        }
        condition.signal()
    }

    func stop() {
        condition.lock()
        stopped = true
        lifecycle.removeAll()
        measurements.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    func startThread() {
        let thread = Thread { [self] in
            csupport_set_thread_name(String("events-\(name)".prefix(15)))
            while let event = next() { observer.observe(event) }
        }
        thread.start()
    }

    /// The oldest queued event of either queue; nil once stopped.
    private func next() -> RelayEvent? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopped { return nil }
            switch (lifecycle.first, measurements.first) {
            case (let l?, let m?): return (l.sequence < m.sequence ? lifecycle.popFirst() : measurements.popFirst())?.event
            case (.some, nil): return lifecycle.popFirst()?.event
            case (nil, .some): return measurements.popFirst()?.event
            case (nil, nil): condition.wait()
            }
        }
    }
}
