import Foundation
import Locking
import Logging

/// The relay's stream starts and ends, written to the store one after another
/// in the order they happened, each kept until the store takes it.
///
/// A task per event, as before, could write a short stream's end before its
/// start (the stream then stayed `started` until the next restart), and a start
/// that met a full disk was lost for good. Here one task writes the changes in
/// turn. A write that fails for a reason that may pass (full, read-only,
/// locked: `StoreHealth.isTransient`) is tried again every `retryInterval`, with
/// the changes behind it waiting; the store's own health counts and logs those
/// failures. At most `limit` changes wait: past that the oldest are dropped,
/// logged and counted (a dropped start leaves no row; a dropped end is made good
/// when acerelay next starts and ends its own streams).
public final class StreamRecordQueue: Sendable {
    public enum Change: Sendable, Equatable {
        case started(StreamRecord)
        case ended(id: String, reason: String, at: Date)
    }

    private let changes: AsyncStream<Change>.Continuation
    private let droppedCount = Locked<UInt64>(0)
    private let logger: Logger

    public init(store: Store, retryInterval: Duration = .seconds(2), limit: Int = 10_000, logger: Logger) {
        let (stream, changes) = AsyncStream.makeStream(of: Change.self, bufferingPolicy: .bufferingNewest(max(limit, 1)))
        self.changes = changes
        self.logger = logger
        Task { await Self.write(stream, to: store, retryInterval: retryInterval, logger: logger) }
    }

    deinit { changes.finish() }

    /// Queues `change` behind those not yet written; returns at once.
    public func submit(_ change: Change) {
        guard case .dropped(let oldest) = changes.yield(change) else { return }
        let total = droppedCount.withLock { count in
            count += 1
            return count
        }
        // One line for the first and then one per thousand: the condition is a store down for hours.
        if total == 1 || total.isMultiple(of: 1000) {
            logger.error("stream records waited too long for the store and were dropped",
                         metadata: ["store.dropped_total": "\(total)", "store.oldest": "\(oldest.streamID)"])
        }
    }

    /// Changes dropped because too many were waiting, since start.
    public var droppedTotal: UInt64 { droppedCount.withLock { $0 } }

    private static func write(_ stream: AsyncStream<Change>, to store: Store, retryInterval: Duration, logger: Logger) async {
        for await change in stream {
            while true {
                do {
                    try await apply(change, to: store)
                    break
                } catch where StoreHealth.isTransient(error) && !Task.isCancelled {
                    try? await Task.sleep(for: retryInterval)
                } catch {
                    logger.warning("a stream record was not written", metadata: ["store.stream": "\(change.streamID)",
                                                                               "store.reason": "\(StoreHealth.describe(error))"])
                    break
                }
            }
        }
    }

    private static func apply(_ change: Change, to store: Store) async throws {
        switch change {
        case .started(let record): try await store.saveStream(record)
        case .ended(let id, let reason, let at): _ = try await store.endStream(id: id, reason: reason, at: at)
        }
    }
}

extension StreamRecordQueue.Change {
    var streamID: String {
        switch self {
        case .started(let record): record.id
        case .ended(let id, _, _): id
        }
    }
}
