import Foundation
import Testing
import TestSupport
@testable import Store

/// The store under faults an operator meets: a corrupt file at start, another process
/// holding the database's lock, a full filesystem under the data directory. (A filesystem
/// turned read-only under an open database cannot be made here: the kernel refuses to
/// remount a filesystem read-only while a file on it is open for writing.)
@Suite(.serialized) struct StoreFaultTests {
    private func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("acerelay-store-fault-\(UUID().uuidString)").path
    }

    private func engine(_ id: String) -> EngineRecord {
        EngineRecord(containerID: id, containerName: "acestream-\(id)", host: "127.0.0.1", port: 19001, labels: [:], managed: true)
    }

    /// A store that gives up quickly, so a test of a lock does not wait 15 s per write.
    private func quickStore(_ directory: String) throws -> Store {
        try Store(directory: directory, busyTimeout: 0.2, writeAttempts: 3, retryDelay: .milliseconds(10))
    }

    @Test func aFileThatIsNotADatabaseIsMovedAsideAndAnEmptyStoreOpens() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/acerelay.sqlite"
        let garbage = Data((0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
        try garbage.write(to: URL(fileURLWithPath: path))

        let store = try Store(directory: directory)
        let aside = try #require(store.health.movedAside)
        #expect(aside.hasPrefix(path + ".corrupt-"))
        #expect(FileManager.default.contents(atPath: aside) == garbage, "the damaged file is kept as it was")
        try await store.saveEngine(engine("a"))
        #expect(try await store.engines().map(\.containerID) == ["a"])
        #expect(try await store.journalMode() == "wal")
    }

    @Test func aDatabaseWithDamagedPagesIsMovedAsideToo() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path: String
        do {
            let store = try Store(directory: directory)
            path = store.path
            for i in 0..<300 {
                try await store.record(EventRecord(kind: "k", message: String(repeating: "event \(i) ", count: 20)))
            }
        }
        // Checkpointed and closed: now scribble over the middle of the file, past the header page.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let size = try handle.seekToEnd()
        #expect(size > 16 * 4096)
        try handle.seek(toOffset: 4096 * 2)
        handle.write(Data(repeating: 0xEE, count: 4096 * 8))
        try handle.close()

        let store = try Store(directory: directory)
        #expect(store.health.movedAside != nil)
        #expect(try await store.events().isEmpty)
        let integrity = try await store.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        #expect(integrity == ["ok"])
    }

    @Test func writesFailCountedAndRetriedWhileAnotherProcessHoldsTheLockAndReadsStillAnswer() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try quickStore(directory)
        try await store.saveEngine(engine("before"))

        // The sqlite3 command-line tool, another process, takes the write lock and keeps it.
        let lock = try SQLiteLock(path: store.path, whileLocked: "INSERT INTO settings(key, value) VALUES ('lock', '1');")

        await #expect(throws: (any Error).self) { try await store.saveEngine(engine("during")) }
        var health = store.health
        #expect(!health.writable)
        #expect(health.errors["saveEngine"] == 1)
        #expect(health.retries == 2, "three attempts: two retries")
        #expect(health.lastError?.contains("database is locked") == true)
        #expect(health.failingSince != nil)
        // WAL: the other process's write lock does not stop readers.
        #expect(try await store.engines().map(\.containerID) == ["before"])

        lock.release()
        try await store.saveEngine(engine("after"))
        health = store.health
        #expect(health.writable)
        #expect(health.failingSince == nil)
        #expect(health.errors["saveEngine"] == 1, "a failure stays counted")
        #expect(try await store.engines().map(\.containerID).sorted() == ["after", "before"])
        #expect(try await store.setting("lock", as: Int.self) == 1)
    }

    // MARK: A filesystem of the test's own

    @Test(.enabled(if: Tmpfs.canMount, "mounting a tmpfs is refused here (needs root or CAP_SYS_ADMIN): not run"))
    func aFullFilesystemFailsWritesUntilSpaceIsFreed() async throws {
        let disk = try Tmpfs(size: "1m")
        defer { disk.unmount() }
        let store = try quickStore(disk.path + "/data")
        try await store.saveEngine(engine("before"))
        // Fill what is left with a file of our own, then ask for more than a page.
        let filler = try disk.fill()

        let big = String(repeating: "x", count: 256 * 1024)
        await #expect(throws: (any Error).self) {
            try await store.record(EventRecord(kind: "big", message: big))
        }
        let health = store.health
        #expect(!health.writable)
        #expect(health.errors["record"] == 1)
        #expect(health.lastError?.contains("full") == true,
                "\(health.lastError ?? "")")
        #expect(try await store.engines().map(\.containerID) == ["before"], "reads keep answering")
        // Deleting nothing appends nothing to the WAL: it works on a full disk and proves nothing.
        // (The stat collector prunes after every round: the status said healthy between failures.)
        #expect(try await store.pruneSamples(before: .distantPast) == 0)
        #expect(!store.health.writable, "a write that changed nothing took the store for writable again")
        #expect(store.health.failingSince != nil)

        try FileManager.default.removeItem(atPath: filler)
        try await store.record(EventRecord(kind: "big", message: big))
        #expect(store.health.writable)
    }
}
