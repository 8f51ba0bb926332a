import Foundation
import GRDB
import Logging
import PersistentConditions
import Locking

/// What the store's writes have met: failures by operation, retries, and whether
/// the latest write failed; for `/orchestrator/status` and `/metrics`.
public struct StoreHealthSnapshot: Sendable, Equatable {
    /// False from a write that failed for good until the next one that succeeds.
    public var writable: Bool
    /// Writes (and reads) that failed after their retries, by store operation (a method name).
    public var errors: [String: UInt64]
    /// Attempts retried after a transient error (locked, busy, full, read-only, I/O).
    public var retries: UInt64
    /// The newest failure, in one line, and when it happened.
    public var lastError: String?
    public var lastErrorAt: Date?
    /// When writes began failing, while they do.
    public var failingSince: Date?
    /// A database found corrupt at start and moved aside, if that happened.
    public var movedAside: String?
}

/// Counts the store's failures and logs "writes failing" once when it begins and
/// once when it ends (with summaries between), not once per failed write.
final class StoreHealth: Sendable {
    private let state = Locked(StoreHealthSnapshot(writable: true, errors: [:], retries: 0))
    private let writesFailing: PersistentConditionLog

    init(logger: Logger) {
        writesFailing = PersistentConditionLog(name: "database writes failing (disk full, read-only, or locked by another process?)",
                                               level: .error, logger: logger)
    }

    var snapshot: StoreHealthSnapshot { state.withLock { $0 } }

    func movedAside(to path: String) { state.withLock { $0.movedAside = path } }

    func retried() { state.withLock { $0.retries += 1 } }

    func succeededWrite() {
        state.withLock { health in
            health.writable = true
            health.failingSince = nil
        }
        // Every success, not only the first: the condition ends once writes have worked a while.
        writesFailing.cleared()
    }

    func failed(_ operation: String, write: Bool, _ error: any Error) {
        let line = Self.describe(error)
        state.withLock { health in
            health.errors[operation, default: 0] += 1
            health.lastError = "\(operation): \(line)"
            health.lastErrorAt = Date()
            if write {
                if health.writable { health.failingSince = Date() }
                health.writable = false
            }
        }
        if write { writesFailing.occurred("\(operation): \(line)", metadata: ["store.operation": "\(operation)"]) }
    }

    /// SQLite's own message for a database error (no SQL, no arguments), else the error.
    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return "\(error.message ?? "SQLite error") (SQLite code \(error.extendedResultCode.rawValue))"
        }
        return "\(error)"
    }

    /// Errors that may pass: another process's lock, a full disk, a directory made
    /// read-only, an I/O error. Constraint violations and bugs are not retried.
    static func isTransient(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_FULL, .SQLITE_READONLY, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_PROTOCOL:
            return true
        default:
            return false
        }
    }

    /// Errors that say the file itself is damaged or not a database at all.
    static func isCorruption(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    }
}
