import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// One libev loop (`ev_loop_new`, never the default loop, which would reap every
/// child process). Confined to the thread that runs it, except `AsyncWatcher.send`.
final class EventLoop: @unchecked Sendable {
    let raw: OpaquePointer

    init() {
        // EVFLAG_NOSIGMASK: leave the thread's signal mask alone; signals are handled by the app.
        guard let loop = ev_loop_new(UInt32(EVFLAG_AUTO | EVFLAG_NOSIGMASK)) else {
            preconditionFailure("ev_loop_new failed: libev could not create an event loop")
        }
        raw = loop
    }

    deinit { ev_loop_destroy(raw) }

    /// Runs until `stop()` is called from a callback on this loop.
    func run() { _ = ev_run(raw, 0) }

    func stop() { ev_break(raw, Int32(EVBREAK_ALL)) }

    /// The loop's cached time of the current iteration, in seconds.
    var now: Double { ev_now(raw) }
}

/// Watches one file descriptor for readability and/or writability.
///
/// The `ev_io` lives on the heap for the watcher's whole life: libev keeps a
/// pointer to it while active. The callback reaches this object through
/// `data` without retaining it; the owner keeps the watcher alive while active.
final class IOWatcher {
    static let read = Int32(EV_READ)
    static let write = Int32(EV_WRITE)

    private let loop: EventLoop
    private let watcher: UnsafeMutablePointer<ev_io>
    private let handler: (_ revents: Int32) -> Void
    private(set) var events: Int32
    let fd: Int32

    init(loop: EventLoop, fd: Int32, events: Int32, handler: @escaping (_ revents: Int32) -> Void) {
        self.loop = loop
        self.handler = handler
        self.events = events
        self.fd = fd
        watcher = .allocate(capacity: 1)
        watcher.initialize(to: ev_io())
        csupport_ev_io_init(watcher, { _, w, revents in
            guard let w, let data = csupport_ev_data(w) else { return }
            Unmanaged<IOWatcher>.fromOpaque(data).takeUnretainedValue().handler(revents)
        }, fd, events)
        csupport_ev_set_data(watcher, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        ev_io_stop(loop.raw, watcher)
        watcher.deallocate()
    }

    var isActive: Bool { csupport_ev_is_active(watcher) != 0 }

    func start() { ev_io_start(loop.raw, watcher) }
    func stop() { ev_io_stop(loop.raw, watcher) }

    /// Changes what to wait for; libev requires the watcher stopped while it is reset.
    func watch(_ newEvents: Int32) {
        guard newEvents != events else { return }
        let wasActive = isActive
        if wasActive { stop() }
        events = newEvents
        csupport_ev_io_set(watcher, fd, newEvents)
        if wasActive { start() }
    }
}

/// A one-shot or repeating timer on a loop.
final class TimerWatcher {
    private let loop: EventLoop
    private let watcher: UnsafeMutablePointer<ev_timer>
    private let handler: () -> Void

    init(loop: EventLoop, handler: @escaping () -> Void) {
        self.loop = loop
        self.handler = handler
        watcher = .allocate(capacity: 1)
        watcher.initialize(to: ev_timer())
        csupport_ev_timer_init(watcher, { _, w, _ in
            guard let w, let data = csupport_ev_data(w) else { return }
            Unmanaged<TimerWatcher>.fromOpaque(data).takeUnretainedValue().handler()
        }, 0, 0)
        csupport_ev_set_data(watcher, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        ev_timer_stop(loop.raw, watcher)
        watcher.deallocate()
    }

    var isActive: Bool { csupport_ev_is_active(watcher) != 0 }

    /// (Re)arms the timer to fire after `after` seconds, then every `every` seconds if non-zero.
    func schedule(after: Double, every interval: Double = 0) {
        ev_timer_stop(loop.raw, watcher)
        csupport_ev_timer_set(watcher, max(after, 0), interval)
        ev_timer_start(loop.raw, watcher)
    }

    func cancel() { ev_timer_stop(loop.raw, watcher) }
}

/// Wakes a loop from another thread. `send` is the only call safe off the loop's thread.
final class AsyncWatcher: @unchecked Sendable {
    private let loop: EventLoop
    private let watcher: UnsafeMutablePointer<ev_async>
    private let handler: () -> Void

    init(loop: EventLoop, handler: @escaping () -> Void) {
        self.loop = loop
        self.handler = handler
        watcher = .allocate(capacity: 1)
        watcher.initialize(to: ev_async())
        csupport_ev_async_init(watcher, { _, w, _ in
            guard let w, let data = csupport_ev_data(w) else { return }
            Unmanaged<AsyncWatcher>.fromOpaque(data).takeUnretainedValue().handler()
        })
        csupport_ev_set_data(watcher, Unmanaged.passUnretained(self).toOpaque())
        ev_async_start(loop.raw, watcher)
    }

    deinit {
        ev_async_stop(loop.raw, watcher)
        watcher.deallocate()
    }

    /// Coalescing: many sends before the loop runs produce one callback.
    func send() { ev_async_send(loop.raw, watcher) }
}
