import Foundation
import GRDB
import Logging

extension JSONEncoder {
    /// Samples are stored with ISO 8601 dates so the JSON reads the same everywhere.
    static var store: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}

extension JSONDecoder {
    static var store: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// Why the store could not do what was asked, in one line a user can act on.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// acerelay's SQLite database (WAL mode, migrated on open) under the data directory.
///
/// Everything that must survive a restart lives here: engines, streams, events
/// and settings. Writes that fail for a reason that may pass (another process's
/// lock, a full disk, a read-only directory) are retried a bounded number of
/// times, then throw; callers log them and keep serving, so a store problem never
/// stops the relay. Every failure is counted by operation (`health`), and the
/// store logs once when writes begin failing and once when they work again.
/// A database found corrupt at start is moved aside and replaced by an empty one.
public final class Store: Sendable {
    /// The database file.
    public let path: String
    /// Internal so the store's extensions (one file per table family) share it.
    let pool: DatabasePool
    private let writeAttempts: Int
    private let retryDelay: Duration
    private let healthState: StoreHealth

    /// Failures, retries and whether writes work now.
    public var health: StoreHealthSnapshot { healthState.snapshot }

    /// A read on GRDB's async API; `body` must return a Sendable plain value (see `latestSamples`).
    func read<Value: Sendable>(operation: String = #function, _ body: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        try await attempt(operation, write: false) { (try await self.pool.read(body), changed: false) }
    }

    func write<Value: Sendable>(operation: String = #function, _ body: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        try await attempt(operation, write: true) {
            try await self.pool.write { db in
                let before = db.totalChangesCount
                let value = try body(db)
                return (value, changed: db.totalChangesCount != before)
            }
        }
    }

    /// Runs `body`, retrying a write whose error may pass; `changed` says whether it changed a row.
    private func attempt<Value: Sendable>(_ function: String, write: Bool,
                                          _ body: () async throws -> (value: Value, changed: Bool)) async throws -> Value {
        // The method's name without its arguments: a bounded label for metrics.
        let operation = String(function.prefix { $0 != "(" })
        var tries = 0
        while true {
            do {
                let (value, changed) = try await body()
                // Only a write that changed a row appended to the WAL: one that changed nothing (a
                // prune with nothing to prune) commits on a full disk too, and proves nothing.
                if write && changed { healthState.succeededWrite() }
                return value
            } catch {
                tries += 1
                // Reads are not retried: an API request waiting on a lock should answer, not queue.
                guard write, tries < writeAttempts, StoreHealth.isTransient(error), !Task.isCancelled else {
                    healthState.failed(operation, write: write, error)
                    throw error
                }
                healthState.retried()
                try? await Task.sleep(for: retryDelay * tries)
            }
        }
    }

    /// Opens (creating if needed) `acerelay.sqlite` in `directory`.
    ///
    /// - Parameters:
    ///   - busyTimeout: how long one attempt waits for another connection's lock.
    ///   - writeAttempts: attempts per write when the error may pass (at least 1); reads try once.
    public init(directory: String, busyTimeout: TimeInterval = 5, writeAttempts: Int = 3, retryDelay: Duration = .milliseconds(250),
                logger: Logger = Logger(label: "acerelay.store")) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError(description: "cannot create the data directory \(directory): \(error.localizedDescription); set --data-dir to a writable directory")
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw StoreError(description: "the data directory \(directory) is not writable; set --data-dir to a writable directory")
        }
        path = (directory as NSString).appendingPathComponent("acerelay.sqlite")
        self.writeAttempts = max(writeAttempts, 1)
        self.retryDelay = retryDelay
        let health = StoreHealth(logger: logger)
        healthState = health
        var configuration = Configuration()
        // Another acerelay (or a backup tool) may hold a lock for a moment: wait rather than fail.
        configuration.busyMode = .timeout(busyTimeout)
        do {
            pool = try Self.open(path, configuration)
        } catch let error where StoreHealth.isCorruption(error) {
            // Refusing to start would keep players away for the sake of history the relay can
            // rebuild (engines from containers, streams from the relay): keep the file for a
            // post-mortem and start empty.
            let aside = try Self.moveAside(path)
            logger.error("the database \(path) is corrupt (\(StoreHealth.describe(error))); moved it to \(aside) and starting with an empty one")
            health.movedAside(to: aside)
            do {
                pool = try Self.open(path, configuration)
            } catch {
                throw StoreError(description: "cannot open the database \(path): \(error)")
            }
        } catch {
            throw StoreError(description: "cannot open the database \(path): \(error)")
        }
    }

    /// Opens, checks and migrates the database; a damaged file throws a corruption error.
    private static func open(_ path: String, _ configuration: Configuration) throws -> DatabasePool {
        let pool = try DatabasePool(path: path, configuration: configuration)
        do {
            let check = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
            guard check == ["ok"] else {
                throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "quick_check: " + check.prefix(3).joined(separator: "; "))
            }
            try migrator.migrate(pool)
            return pool
        } catch {
            try? pool.close()
            throw error
        }
    }

    /// Renames the database and its WAL and shared-memory files to `<name>.corrupt-<UTC time>`.
    private static func moveAside(_ path: String) throws -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withYear, .withMonth, .withDay, .withTime, .withTimeZone]
        let suffix = ".corrupt-" + formatter.string(from: Date())
        let files = FileManager.default
        for file in [path, path + "-wal", path + "-shm"] where files.fileExists(atPath: file) {
            do {
                try files.moveItem(atPath: file, toPath: file + suffix)
            } catch {
                throw StoreError(description: "the database \(path) is corrupt and cannot be moved aside (\(error.localizedDescription)); move or delete it by hand")
            }
        }
        return path + suffix
    }

    /// The schema, one migration per change; never edit a shipped migration.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "engines") { t in
                t.primaryKey("container_id", .text)
                t.column("container_name", .text).notNull()
                t.column("host", .text).notNull()
                t.column("port", .integer).notNull()
                t.column("api_port", .integer)
                t.column("labels", .text).notNull()
                t.column("forwarded", .boolean).notNull().defaults(to: false)
                t.column("managed", .boolean).notNull()
                t.column("first_seen", .datetime).notNull()
                t.column("last_seen", .datetime).notNull()
                t.column("health_status", .text).notNull()
                t.column("last_health_check", .datetime)
                t.column("last_stream_usage", .datetime)
                t.column("version", .text)
                t.column("platform", .text)
            }
            try db.create(table: "streams") { t in
                t.primaryKey("id", .text)
                t.column("key_type", .text).notNull()
                t.column("key", .text).notNull().indexed()
                t.column("container_id", .text).notNull().indexed()
                t.column("container_name", .text)
                t.column("playback_session_id", .text).notNull()
                t.column("stat_url", .text)
                t.column("command_url", .text)
                t.column("is_live", .boolean).notNull()
                t.column("started_at", .datetime).notNull()
                t.column("ended_at", .datetime)
                t.column("status", .text).notNull().indexed()
                t.column("end_reason", .text)
            }
            try db.create(table: "events") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull().indexed()
                t.column("kind", .text).notNull()
                t.column("message", .text).notNull()
                t.column("container_id", .text)
                t.column("stream_id", .text)
            }
            try db.create(table: "settings") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
        }
        migrator.registerMigration("v2-stream-origin") { db in
            try db.alter(table: "streams") { t in
                t.add(column: "origin", .text).notNull().defaults(to: "relay")
            }
        }
        migrator.registerMigration("v3-stat-samples") { db in
            try db.create(table: "stat_samples") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("stream_id", .text).notNull()
                t.column("at", .datetime).notNull()
                t.column("sample", .text).notNull()
                t.uniqueKey(["stream_id", "at"])
            }
            try db.create(index: "stat_samples_by_time", on: "stat_samples", columns: ["at"])
        }
        migrator.registerMigration("v4-channels", migrate: createChannelTables)
        migrator.registerMigration("v4-dashboard-samples") { db in
            try db.create(table: "dashboard_samples") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull().indexed()
                t.column("egress_bps", .double).notNull()
                t.column("ingress_bps", .double).notNull()
                t.column("active_streams", .integer).notNull()
                t.column("active_clients", .integer).notNull()
                t.column("ttfb_p95_ms", .double).notNull()
                t.column("cpu_percent", .double).notNull()
                t.column("memory_bytes", .double).notNull()
            }
        }
        migrator.registerMigration("v5-streams-by-start") { db in
            // The listing's order, so each page of it is an index range rather than a sort.
            try db.create(index: "streams_by_start", on: "streams", columns: ["started_at", "id"])
        }
        return migrator
    }

    /// The journal mode in force; `wal` once opened.
    public func journalMode() async throws -> String {
        try await read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    /// `PRAGMA synchronous` of the writing connection: 1 (NORMAL), which GRDB's
    /// pool sets with WAL (a sync at checkpoints, not at every commit: a killed
    /// process loses nothing, a power cut may lose the last commits).
    /// (Asked of the writer: the setting is per connection, and readers never commit.)
    func synchronousMode() async throws -> Int {
        try await pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    // MARK: Engines

    public func saveEngine(_ engine: EngineRecord) async throws {
        try await write { db in try engine.save(db) }
    }

    public func engines() async throws -> [EngineRecord] {
        try await read { db in try EngineRecord.order(EngineRecord.CodingKeys.firstSeen).fetchAll(db) }
    }

    public func engine(id: String) async throws -> EngineRecord? {
        try await read { db in try EngineRecord.fetchOne(db, key: id) }
    }

    @discardableResult
    public func deleteEngine(id: String) async throws -> Bool {
        try await write { db in try EngineRecord.deleteOne(db, key: id) }
    }

    // MARK: Streams

    public func saveStream(_ stream: StreamRecord) async throws {
        try await write { db in try stream.save(db) }
    }

    /// Marks a stream ended; nil when no such stream exists.
    public func endStream(id: String, reason: String?, at: Date = Date()) async throws -> StreamRecord? {
        try await write { db in
            guard var stream = try StreamRecord.fetchOne(db, key: id) else { return nil }
            if stream.status != .ended {
                stream.status = .ended
                stream.endedAt = at
                stream.endReason = reason
                try stream.update(db)
            }
            return stream
        }
    }

    /// Ends every started stream of an engine (it was removed or restarted).
    public func endStreams(containerID: String, reason: String, at: Date = Date()) async throws -> Int {
        try await write { db in
            try StreamRecord
                .filter(StreamRecord.CodingKeys.containerID == containerID && StreamRecord.CodingKeys.status == StreamStatus.started)
                .updateAll(db, [StreamRecord.CodingKeys.status.set(to: StreamStatus.ended),
                                StreamRecord.CodingKeys.endedAt.set(to: at),
                                StreamRecord.CodingKeys.endReason.set(to: reason)])
        }
    }

    /// Ends the streams this process's relay had open before a restart: their
    /// engine sessions did not survive it. Streams other proxies reported stay.
    public func endRelayStreamsAfterRestart(at: Date = Date()) async throws -> Int {
        try await write { db in
            try StreamRecord
                .filter(StreamRecord.CodingKeys.origin == StreamOrigin.relay && StreamRecord.CodingKeys.status == StreamStatus.started)
                .updateAll(db, [StreamRecord.CodingKeys.status.set(to: StreamStatus.ended),
                                StreamRecord.CodingKeys.endedAt.set(to: at),
                                StreamRecord.CodingKeys.endReason.set(to: "acerelay restarted")])
        }
    }

    /// Streams (of `status`, on `containerID`, or all), newest first; streams that started in the same millisecond by id.
    public func streams(status: StreamStatus? = nil, containerID: String? = nil) async throws -> [StreamRecord] {
        try await read { db in
            var request = StreamRecord.all()
            if let status { request = request.filter(StreamRecord.CodingKeys.status == status) }
            if let containerID { request = request.filter(StreamRecord.CodingKeys.containerID == containerID) }
            return try request.order(StreamRecord.CodingKeys.startedAt.desc, StreamRecord.CodingKeys.id.desc).fetchAll(db)
        }
    }

    /// One page of `streams(status:containerID:)`'s listing, newest first: the
    /// `limit` streams that come after `cursor` (from the start when nil). A
    /// listing read page by page holds one page in memory, however many ended
    /// streams the retention keeps. Each stream is listed at most once; one that
    /// starts or ends between pages may or may not be, as with any listing of a
    /// table that changes while it is read.
    public func streams(status: StreamStatus? = nil, containerID: String? = nil,
                        after cursor: StreamListCursor?, limit: Int) async throws -> [StreamRecord] {
        try await read { db in
            var request = StreamRecord.all()
            if let status { request = request.filter(StreamRecord.CodingKeys.status == status) }
            if let containerID { request = request.filter(StreamRecord.CodingKeys.containerID == containerID) }
            if let cursor {
                let startedAt = StreamRecord.CodingKeys.startedAt, id = StreamRecord.CodingKeys.id
                request = request.filter(startedAt < cursor.startedAt || (startedAt == cursor.startedAt && id < cursor.id))
            }
            // The id breaks ties between streams that started in the same millisecond.
            return try request.order(StreamRecord.CodingKeys.startedAt.desc, StreamRecord.CodingKeys.id.desc)
                .limit(max(limit, 1)).fetchAll(db)
        }
    }

    /// How many streams the store holds (of `status`, or all), counted by SQLite
    /// rather than fetched: status pages ask for it on every poll.
    public func streamCount(status: StreamStatus? = nil) async throws -> Int {
        try await read { db in
            var request = StreamRecord.all()
            if let status { request = request.filter(StreamRecord.CodingKeys.status == status) }
            return try request.fetchCount(db)
        }
    }

    /// Deletes streams that ended before `date`; returns how many. The newest
    /// stream of each engine stays, so `lastStreamStarts` still knows when an
    /// idle engine last streamed.
    @discardableResult
    public func pruneEndedStreams(before date: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: """
                DELETE FROM streams WHERE status = ? AND ended_at < ?
                  AND started_at < (SELECT MAX(started_at) FROM streams newest WHERE newest.container_id = streams.container_id)
                """, arguments: [StreamStatus.ended.rawValue, date])
            return db.changesCount
        }
    }

    public func stream(id: String) async throws -> StreamRecord? {
        try await read { db in try StreamRecord.fetchOne(db, key: id) }
    }

    // MARK: Stat samples

    /// Stores one sample of a stream's engine statistics (any Codable shape, kept as JSON).
    public func saveSample<Sample: Encodable & Sendable>(streamID: String, at: Date, _ sample: Sample) async throws {
        let text = String(decoding: try JSONEncoder.store.encode(sample), as: UTF8.self)
        try await write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO stat_samples(stream_id, at, sample) VALUES (?, ?, ?)", arguments: [streamID, at, text])
        }
    }

    /// A stream's samples since `since` (all when nil), oldest first.
    public func samples<Sample: Decodable & Sendable>(streamID: String, since: Date?, as type: Sample.Type) async throws -> [Sample] {
        let rows = try await read { db in
            try String.fetchAll(db, sql: "SELECT sample FROM stat_samples WHERE stream_id = ? AND at >= ? ORDER BY at",
                                arguments: [streamID, since ?? Date.distantPast])
        }
        return try rows.map { try JSONDecoder.store.decode(Sample.self, from: Data($0.utf8)) }
    }

    /// The newest sample of each of `streamIDs`.
    public func latestSamples<Sample: Decodable & Sendable>(streamIDs: [String], as type: Sample.Type) async throws -> [String: Sample] {
        guard !streamIDs.isEmpty else { return [:] }
        // The closure returns plain strings, never GRDB's `Row`: `Row` is not
        // Sendable, and a non-Sendable result silently picks the synchronous
        // `read`, which blocks a cooperative thread while it waits for a reader.
        // With both of this machine's cooperative threads blocked, the async
        // reads holding the readers can never resume: the whole API hung.
        let texts: [String: String] = try await read { db in
            var texts: [String: String] = [:]
            let rows = try Row.fetchCursor(db, sql: """
                SELECT stream_id, sample FROM stat_samples s
                WHERE stream_id IN (\(streamIDs.map { _ in "?" }.joined(separator: ",")))
                  AND at = (SELECT MAX(at) FROM stat_samples WHERE stream_id = s.stream_id)
                """, arguments: StatementArguments(streamIDs))
            while let row = try rows.next() { texts[row["stream_id"]] = row["sample"] }
            return texts
        }
        return try texts.mapValues { try JSONDecoder.store.decode(Sample.self, from: Data($0.utf8)) }
    }

    /// When each engine's newest stream started, over every stream the store
    /// holds (started or ended), by container id: the engine's last stream usage.
    public func lastStreamStarts() async throws -> [String: Date] {
        try await read { db in
            var starts: [String: Date] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT container_id, MAX(started_at) AS started FROM streams GROUP BY container_id")
            while let row = try rows.next() {
                if let started: Date = row["started"] { starts[row["container_id"]] = started }
            }
            return starts
        }
    }

    /// Deletes samples older than `date` (the retention limit); returns how many.
    @discardableResult
    public func pruneSamples(before date: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM stat_samples WHERE at < ?", arguments: [date])
            return db.changesCount
        }
    }

    // MARK: Events

    public func record(_ event: EventRecord) async throws {
        try await write { db in
            var row = event
            try row.insert(db)
        }
    }

    public func events(limit: Int = 100) async throws -> [EventRecord] {
        try await read { db in try EventRecord.order(EventRecord.CodingKeys.id.desc).limit(limit).fetchAll(db) }
    }

    /// Deletes events older than `date`; returns how many.
    @discardableResult
    public func pruneEvents(before date: Date) async throws -> Int {
        try await write { db in try EventRecord.filter(EventRecord.CodingKeys.at < date).deleteAll(db) }
    }

    // MARK: Retention

    /// How long rows that only grow are kept.
    public struct Retention: Sendable, Equatable {
        /// Engine stat samples (`ACERELAY_STATS_RETENTION_MIN`, 60 minutes by default).
        public var samples: TimeInterval
        /// Operator events.
        public var events: TimeInterval

        public init(samples: TimeInterval = 3_600, events: TimeInterval = 7 * 86_400) {
            self.samples = samples
            self.events = events
        }
    }

    /// One retention pass, for a periodic service: deletes samples and events
    /// older than `retention` allows at `now`; returns how many of each went.
    /// Channel score history and ended streams go with the samples' retention:
    /// without it every session the relay ever opened stays a row, and
    /// `GET /streams` reads them all on every call.
    @discardableResult
    public func prune(_ retention: Retention, now: Date = Date()) async throws -> (samples: Int, events: Int, measurements: Int, streams: Int) {
        let samples = try await pruneSamples(before: now.addingTimeInterval(-retention.samples))
        let streams = try await pruneEndedStreams(before: now.addingTimeInterval(-retention.samples))
        let events = try await pruneEvents(before: now.addingTimeInterval(-retention.events))
        let measurements = try await pruneMeasurements(before: now.addingTimeInterval(-retention.samples))
        // The dashboard's history is kept as long as the stat samples it is shown beside.
        try await pruneDashboardSamples(before: now.addingTimeInterval(-retention.samples))
        return (samples, events, measurements, streams)
    }

    // MARK: Settings

    /// A setting stored as JSON, or nil if never set.
    public func setting<Value: Decodable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        let text = try await read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) }
        guard let text else { return nil }
        return try JSONDecoder().decode(Value.self, from: Data(text.utf8))
    }

    public func setSetting<Value: Encodable & Sendable>(_ key: String, to value: Value) async throws {
        let text = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
        try await write { db in
            try db.execute(sql: "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", arguments: [key, text])
        }
    }
}
