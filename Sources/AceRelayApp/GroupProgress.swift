import Dispatch
import Foundation
import Locking

/// How far the control plane's service group has come, as the main thread
/// waits on it: it runs the relay's start and stop, which block, so it follows
/// the group from outside rather than from a task. Stages only move forward.
final class GroupProgress: Sendable {
    enum Stage: Int, Comparable, Sendable {
        /// Services are starting; the control port is not listening yet.
        case starting
        /// The control port listens.
        case ready
        /// Shutdown began (a signal, or a service that could not start).
        case stopping
        /// The group returned.
        case ended

        static func < (a: Stage, b: Stage) -> Bool { a.rawValue < b.rawValue }
    }

    private let stage = Locked(Stage.starting)
    // One waiter (the main thread): every advance signals once, the waiter re-checks.
    private let advanced = DispatchSemaphore(value: 0)

    func advance(to next: Stage) {
        let moved = stage.withLock { current in
            guard current < next else { return false }
            current = next
            return true
        }
        if moved { advanced.signal() }
    }

    func reached(_ target: Stage) -> Bool { stage.withLock { $0 >= target } }

    /// Blocks the calling thread (never a task's) until `target` or a later
    /// stage is reached, or `deadline` passes; returns the stage then.
    @discardableResult
    func wait(for target: Stage, until deadline: DispatchTime = .distantFuture) -> Stage {
        while true {
            let current = stage.withLock { $0 }
            if current >= target { return current }
            if advanced.wait(timeout: deadline) == .timedOut { return stage.withLock { $0 } }
        }
    }
}
