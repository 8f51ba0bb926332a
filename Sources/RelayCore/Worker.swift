import CSupport
import Foundation
import Logging
import Locking
import Synchronization

/// One relay thread: a libev loop with its listener, its players, the hubs it
/// owns and a curl multi handle for those hubs' engine requests.
///
/// Everything a worker owns is touched only on its thread. Other threads reach
/// it through `execute` (a task queue plus `ev_async`) or `Subscription.notify`.
final class Worker: @unchecked Sendable {
    let index: Int
    let loop: EventLoop
    let logger: Logger
    unowned let server: RelayServer
    private(set) var curl: CurlMulti!
    private var wakeup: AsyncWatcher!
    private var listener: ListeningSocket?
    private var acceptWatcher: IOWatcher?
    private let tasks = Locked<[@Sendable () -> Void]>([])
    /// This worker's players per hub; loop-confined.
    private var subscriptions: [ObjectIdentifier: Subscription] = [:]
    /// This worker's totals; written only on this worker's thread.
    let counters = RelayCounters()
    /// Every open connection, for status pages on other threads.
    let connections = Locked<[ObjectIdentifier: ClientConnection]>([:])
    /// Reused for every read of a request head: no allocation per read.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
    private let finished = DispatchSemaphore(value: 0)
    /// Wall-clock seconds of the loop's last heartbeat (each second); read by the watchdog.
    let lastBeat = Atomic<Int64>(0)
    private var heartbeat: TimerWatcher!
    private var acceptPause: TimerWatcher!
    /// Kept open for `descriptorsExhausted`; -1 while given up.
    private var spareDescriptor: Int32 = Worker.openSpareDescriptor()

    init(index: Int, server: RelayServer, listener: ListeningSocket, logger: Logger) {
        self.index = index
        self.server = server
        self.listener = listener
        var logger = logger
        logger[metadataKey: "relay.worker"] = "\(index)"
        self.logger = logger
        loop = EventLoop()
        startedAt = loop.now
        curl = CurlMulti(loop: loop)
        wakeup = AsyncWatcher(loop: loop) { [unowned self] in self.drainTasks() }
        acceptWatcher = IOWatcher(loop: loop, fd: listener.fd, events: IOWatcher.read) { [unowned self] _ in
            self.acceptConnections()
        }
        acceptWatcher?.start()
        acceptPause = TimerWatcher(loop: loop) { [unowned self] in self.acceptWatcher?.start() }
        heartbeat = TimerWatcher(loop: loop) { [unowned self] in self.beat() }
        heartbeat.schedule(after: 0, every: 1)
    }

    deinit { readBuffer.deallocate() }

    /// Loop time the worker was made; the stall hook counts from it.
    private let startedAt: Double

    /// The heartbeat: proof, from this loop's own timer, that the loop turns.
    private func beat() {
        lastBeat.store(Int64(Date().timeIntervalSince1970), ordering: .relaxed)
        if let stallAfter = server.configuration.testStallLoopAfter, index == 0, loop.now - startedAt >= stallAfter {
            // Test-only (ACERELAY_TEST_STALL_LOOP_AFTER_S): a loop wedged for good, as
            // a stuck syscall would leave it; the watchdog pings must stop.
            logger.warning("test hook: stalling relay loop 0 for good")
            while true { sleep(3_600) }
        }
        server.loopTurned?(index)
    }

    /// The relay loops' nice value; control-plane threads run at 10.
    static let relayNice: Int32 = -10

    /// Runs the loop on a new thread until `stopLoop()`.
    func startThread() {
        let thread = Thread { [self] in
            csupport_set_thread_name("relay-\(index)")
            // Relay loops outrank the control plane: nice -10 where allowed (root,
            // CAP_SYS_NICE); the app also lowers every other thread.
            if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Worker.relayNice) != 0, index == 0 {
                logger.notice("cannot raise relay thread priority (needs CAP_SYS_NICE); relying on the control plane running at nice 10")
            }
            loop.run()
            finished.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    func join() { finished.wait() }

    /// Runs `task` on this worker's thread, soon. Safe from any thread.
    func execute(_ task: @escaping @Sendable () -> Void) {
        tasks.withLock { $0.append(task) }
        wakeup.send()
    }

    /// Wakes the loop to service subscriptions with pending data. Safe from any thread.
    func wake() { wakeup.send() }

    private func drainTasks() {
        // Most wakes carry data, not tasks: an empty queue costs no allocation.
        let pending = tasks.withLock { queue -> [@Sendable () -> Void] in
            if queue.isEmpty { return [] }
            let taken = queue
            queue = []
            return taken
        }
        for task in pending { task() }
        for subscription in subscriptions.values where subscription.takePending() {
            subscription.pumpAll()
        }
    }

    // MARK: Accepting

    private func acceptConnections() {
        guard let listener else { return }
        // Accept in bounded batches so one flood cannot starve the players of this loop.
        for _ in 0..<256 {
            let fd: Int32?
            do {
                fd = try listener.accept()
            } catch {
                // Out of descriptors: logged when it begins and ends (not per accept), and
                // the listener stays readable, so pause instead of spinning.
                server.acceptFailures.occurred("\(error)")
                descriptorsExhausted(listener: listener)
                return
            }
            guard let fd else { return }
            server.acceptFailures.cleared()
            guard server.isAccepting else {
                Syscall.close(fd)
                continue
            }
            guard server.admission.admit() else {
                PlayerAdmission.turnAway(fd, scratch: readBuffer)
                continue
            }
            let connection = ClientConnection(fd: fd, worker: self)
            connections.withLock { $0[ObjectIdentifier(connection)] = connection }
            connection.begin()
        }
    }

    /// Out of descriptors (or memory): the spare descriptor is given up for one
    /// accept so the first queued connection gets its 503 instead of a silent
    /// wait, then accepting pauses for 100 ms rather than spinning on a listener
    /// that stays readable. The caller logs it (when it begins and ends, through
    /// `RelayServer.acceptFailures`).
    private func descriptorsExhausted(listener: ListeningSocket) {
        if spareDescriptor >= 0 {
            Syscall.close(spareDescriptor)
            spareDescriptor = -1
            if let fd = try? listener.accept() {
                PlayerAdmission.turnAway(fd, scratch: readBuffer)
            }
            spareDescriptor = Worker.openSpareDescriptor()
        }
        acceptWatcher?.stop()
        acceptPause.schedule(after: 0.1)
    }

    /// A descriptor held only to be given back when the process runs out.
    private static func openSpareDescriptor() -> Int32 { open("/dev/null", O_RDONLY | O_CLOEXEC) }

    /// Stops accepting; queued connections are refused when the socket closes.
    func closeListener() {
        if spareDescriptor >= 0 {
            Syscall.close(spareDescriptor)
            spareDescriptor = -1
        }
        acceptPause.cancel()
        acceptWatcher?.stop()
        acceptWatcher = nil
        listener?.close()
        listener = nil
    }

    // MARK: Subscriptions

    /// The subscription of this worker to `hub`, created (and registered with the hub) on first use.
    func subscription(to hub: Hub) -> Subscription {
        let id = ObjectIdentifier(hub)
        if let existing = subscriptions[id] { return existing }
        let subscription = Subscription(hub: hub, worker: self)
        subscriptions[id] = subscription
        hub.addSubscriber(subscription)
        return subscription
    }

    /// Called when a subscription lost its last player.
    func dropSubscription(_ subscription: Subscription) {
        subscriptions[ObjectIdentifier(subscription.hub)] = nil
        subscription.hub.removeSubscriber(subscription)
    }

    func connectionClosed(_ connection: ClientConnection) {
        connections.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(connection)) }
        server.admission.release()
        // Release it on the next wake, not inside its own watcher's callback.
        execute { _ = connection }
    }

    /// Closes every player and stops the loop. Runs on this worker's thread.
    func stopLoop() {
        closeListener()
        let open = connections.withLock { Array($0.values) }
        for connection in open { connection.close() }
        heartbeat.cancel()
        loop.stop()
    }
}

/// One worker's players of one hub. The hub flags it when bytes were published;
/// the worker then writes to each of them on its own thread.
final class Subscription: @unchecked Sendable {
    let hub: Hub
    unowned let worker: Worker
    /// Loop-confined to `worker`.
    private(set) var clients: [ClientConnection] = []
    private let pending = Atomic<Bool>(false)

    init(hub: Hub, worker: Worker) {
        self.hub = hub
        self.worker = worker
    }

    /// From the hub's thread: new bytes or a state change. Coalesced: one wake per batch.
    func notify() {
        if !pending.exchange(true, ordering: .acquiringAndReleasing) { worker.wake() }
    }

    func takePending() -> Bool { pending.exchange(false, ordering: .acquiringAndReleasing) }

    func add(_ client: ClientConnection) { clients.append(client) }

    func remove(_ client: ClientConnection) {
        if let i = clients.firstIndex(where: { $0 === client }) { clients.swapAt(i, clients.count - 1); clients.removeLast() }
        if clients.isEmpty { worker.dropSubscription(self) }
    }

    func pumpAll() {
        // A pump may close its client, which edits `clients`: iterate a snapshot.
        for client in clients { client.pump() }
    }
}
