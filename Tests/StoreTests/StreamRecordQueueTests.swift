import Foundation
import Logging
import Testing
import TestSupport
@testable import Store

/// The relay's stream records, written in order and kept while the store cannot
/// take them: a real store, and the sqlite3 tool as another process holding its lock.
@Suite(.serialized) struct StreamRecordQueueTests {
    let directory = TestDirectory.path("stream-queue")

    func store() throws -> Store {
        // Gives up on a lock quickly, so the queue's retries come around fast.
        try Store(directory: directory, busyTimeout: 0.1, writeAttempts: 1, retryDelay: .milliseconds(10))
    }

    func started(_ n: Int) -> StreamRecordQueue.Change {
        .started(StreamRecord(id: "k\(n)|s", keyType: "content_id", key: "k\(n)", containerID: "c", playbackSessionID: "s"))
    }

    func ended(_ n: Int) -> StreamRecordQueue.Change { .ended(id: "k\(n)|s", reason: "done", at: Date()) }

    @Test func startsAndEndsLandInTheOrderTheyHappened() async throws {
        let store = try store()
        let queue = StreamRecordQueue(store: store, logger: Logger(label: "test"))
        // Back to back, as a player that zaps at once makes them: each end right behind its start.
        for n in 0..<300 {
            queue.submit(started(n))
            queue.submit(ended(n))
        }
        #expect(try await waitFor(timeout: 30) { try await store.streamCount(status: .ended) == 300 })
        #expect(try await store.streamCount(status: .started) == 0, "an end written before its start leaves a stream started")
        #expect(queue.droppedTotal == 0)
    }

    @Test func changesThatMeetALockedStoreAreWrittenInOrderOnceTheLockGoes() async throws {
        let store = try store()
        let queue = StreamRecordQueue(store: store, retryInterval: .milliseconds(50), logger: Logger(label: "test"))
        let lock = try SQLiteLock(path: store.path)
        queue.submit(started(1))
        queue.submit(started(2))
        queue.submit(ended(1))
        #expect(await waitFor(timeout: 10) { store.health.errors["saveStream", default: 0] >= 2 }, "the start is tried again")
        #expect(try await store.streams().isEmpty, "nothing could be written yet")

        lock.release()
        #expect(try await waitFor(timeout: 10) { try await store.stream(id: "k1|s")?.status == .ended })
        #expect(try await store.stream(id: "k2|s")?.status == .started)
        #expect(store.health.writable)
    }

    @Test func pastTheLimitTheOldestWaitingChangesAreDroppedAndCounted() async throws {
        let store = try store()
        let queue = StreamRecordQueue(store: store, retryInterval: .milliseconds(50), limit: 2, logger: Logger(label: "test"))
        let lock = try SQLiteLock(path: store.path)
        for n in 0..<6 { queue.submit(started(n)) }
        // One change may be in the writer's hands, two wait: at least three of six went.
        #expect(queue.droppedTotal >= 3)

        lock.release()
        #expect(try await waitFor(timeout: 10) { try await store.streamCount() == 6 - Int(queue.droppedTotal) })
        let ids = Set(try await store.streams().map(\.id))
        #expect(ids.isSuperset(of: ["k4|s", "k5|s"]), "the newest are kept: \(ids)")
    }
}

/// Checks `condition` every 20 ms until it holds or `timeout` seconds pass.
private func waitFor(timeout: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
