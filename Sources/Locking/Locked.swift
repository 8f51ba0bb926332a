#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value that threads share, reached only while holding its lock.
///
/// Why the project's own and not `Synchronization.Mutex`: on Linux, Mutex parks a
/// contended thread with futex calls (FUTEX_LOCK_PI) that ThreadSanitizer does not
/// intercept, so TSan sees no order between one thread's unlock and the next one's
/// lock and reports every guarded access as a race
/// (perf/sanitizers/tsan-mutex-repro.swift). `pthread_mutex_lock` is intercepted, so
/// with this lock TSan's reports are real races. Uncontended, both cost one atomic
/// exchange to lock and one to unlock.
///
/// The call shape is Mutex's (`withLock { $0 ... }`, the value `inout sending`), so
/// the region checker keeps a non-Sendable value from escaping the lock.
public final class Locked<Value>: @unchecked Sendable {
    // pthread_mutex_t must not move once initialised: it lives in memory of its own.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline var value: Value

    public init(_ initialValue: consuming sending Value) {
        value = initialValue
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the lock; the lock is released when it
    /// returns or throws. Not reentrant: calling withLock inside body deadlocks.
    @inlinable
    public func withLock<Result, Failure: Error>(
        _ body: (inout sending Value) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        lock()
        defer { unlock() }
        return try body(&value)
    }

    @usableFromInline func lock() {
        let status = pthread_mutex_lock(mutex)
        precondition(status == 0, "pthread_mutex_lock failed: \(status)")
    }

    @usableFromInline func unlock() {
        let status = pthread_mutex_unlock(mutex)
        precondition(status == 0, "pthread_mutex_unlock failed: \(status)")
    }
}
