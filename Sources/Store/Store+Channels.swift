import Foundation
import GRDB

// Channels, their ordered sources, and every source's score history.
//
// Every read closure returns plain Sendable values built from rows inside it,
// never GRDB's `Row`: a non-Sendable result silently picks the synchronous
// `read`, which blocks a cooperative thread (see `latestSamples`).
extension Store {
    /// The `v4-channels` migration.
    static func createChannelTables(_ db: Database) throws {
        try db.create(table: "channels") { t in
            t.primaryKey("id", .text)
            t.column("name", .text).notNull()
            t.column("group_title", .text)
            t.column("tvg_id", .text)
            t.column("logo", .text)
            t.column("origin", .text).notNull()
            t.column("dispatcharr_channel_id", .integer)
            t.column("created_at", .datetime).notNull()
            t.column("updated_at", .datetime).notNull()
        }
        try db.create(table: "channel_sources") { t in
            t.column("channel_id", .text).notNull().references("channels", onDelete: .cascade)
            t.column("content_id", .text).notNull().indexed()
            t.column("position", .integer).notNull()
            t.column("dispatcharr_stream_id", .integer)
            t.uniqueKey(["channel_id", "content_id"])
        }
        try db.create(table: "source_measurements") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("content_id", .text).notNull()
            t.column("measured_at", .datetime).notNull()
            t.column("score", .integer).notNull()
            t.column("components", .text).notNull()
            t.column("failure", .text)
            t.column("facts", .text).notNull()
            t.column("time_to_first_byte", .double)
            t.column("measured_seconds", .double).notNull()
            t.column("stall_seconds", .double).notNull()
            t.column("continuity_errors", .integer).notNull()
            t.column("null_packet_share", .double).notNull()
            t.column("bitrate_kbps", .integer)
            t.column("peers", .integer)
            t.column("speed_down_kbps", .integer)
            t.column("speed_up_kbps", .integer)
            t.column("livepos_advancing", .boolean)
        }
        try db.create(index: "source_measurements_by_content", on: "source_measurements", columns: ["content_id", "measured_at"])
        try db.create(index: "source_measurements_by_time", on: "source_measurements", columns: ["measured_at"])
    }

    // MARK: Channels

    /// Stores a new channel with its sources in the given order. Its id is
    /// `channel.id`, or, when another channel holds that, the first free of
    /// `id-2`, `id-3`, ...; returns the channel as stored.
    public func createChannel(_ channel: ChannelRecord, sources: [ChannelSourceRecord]) async throws -> StoredChannel {
        try await write { db in
            var record = channel
            var suffix = 1
            while try Bool.fetchOne(db, sql: "SELECT 1 FROM channels WHERE id = ?", arguments: [record.id]) == true {
                suffix += 1
                record.id = "\(channel.id)-\(suffix)"
            }
            try db.execute(sql: """
                INSERT INTO channels(id, name, group_title, tvg_id, logo, origin, dispatcharr_channel_id, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.id, record.name, record.groupTitle, record.tvgID, record.logo, record.origin.rawValue,
                                 record.dispatcharrChannelID, record.createdAt, record.updatedAt])
            try Self.writeSources(db, channelID: record.id, sources)
            return StoredChannel(channel: record, sources: sources)
        }
    }

    /// Replaces a channel's fields, and its sources when `sources` is given;
    /// false when no channel has `channel.id`.
    @discardableResult
    public func updateChannel(_ channel: ChannelRecord, sources: [ChannelSourceRecord]?) async throws -> Bool {
        try await write { db in
            try db.execute(sql: """
                UPDATE channels SET name = ?, group_title = ?, tvg_id = ?, logo = ?, origin = ?, dispatcharr_channel_id = ?, updated_at = ?
                WHERE id = ?
                """, arguments: [channel.name, channel.groupTitle, channel.tvgID, channel.logo, channel.origin.rawValue,
                                 channel.dispatcharrChannelID, channel.updatedAt, channel.id])
            guard db.changesCount > 0 else { return false }
            if let sources { try Self.writeSources(db, channelID: channel.id, sources) }
            return true
        }
    }

    /// Stores a channel's sources in a new order (the same set, reordered by scores).
    public func replaceSourceOrder(channelID: String, contentIDs: [String]) async throws {
        try await write { db in
            for (position, contentID) in contentIDs.enumerated() {
                try db.execute(sql: "UPDATE channel_sources SET position = ? WHERE channel_id = ? AND content_id = ?",
                               arguments: [position, channelID, contentID])
            }
        }
    }

    /// Deletes a channel and its sources (its sources' score history stays until retention); false when absent.
    @discardableResult
    public func deleteChannel(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM channel_sources WHERE channel_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM channels WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    /// Every channel, in order of creation, with its sources in order.
    public func channels() async throws -> [StoredChannel] {
        try await read { db in try Self.fetchChannels(db, id: nil) }
    }

    /// One channel with its sources, or nil.
    public func channel(id: String) async throws -> StoredChannel? {
        try await read { db in try Self.fetchChannels(db, id: id).first }
    }

    private static func writeSources(_ db: Database, channelID: String, _ sources: [ChannelSourceRecord]) throws {
        try db.execute(sql: "DELETE FROM channel_sources WHERE channel_id = ?", arguments: [channelID])
        for (position, source) in sources.enumerated() {
            try db.execute(sql: "INSERT INTO channel_sources(channel_id, content_id, position, dispatcharr_stream_id) VALUES (?, ?, ?, ?)",
                           arguments: [channelID, source.contentID, position, source.dispatcharrStreamID])
        }
    }

    private static func fetchChannels(_ db: Database, id: String?) throws -> [StoredChannel] {
        var channels: [StoredChannel] = []
        var index: [String: Int] = [:]
        let filter = id == nil ? "" : "WHERE id = ?"
        let arguments: StatementArguments = id.map { [$0] } ?? []
        let rows = try Row.fetchCursor(db, sql: "SELECT * FROM channels \(filter) ORDER BY created_at, id", arguments: arguments)
        while let row = try rows.next() {
            let record = ChannelRecord(
                id: row["id"], name: row["name"], groupTitle: row["group_title"], tvgID: row["tvg_id"], logo: row["logo"],
                origin: ChannelOrigin(rawValue: row["origin"]) ?? .api, dispatcharrChannelID: row["dispatcharr_channel_id"],
                createdAt: row["created_at"], updatedAt: row["updated_at"])
            index[record.id] = channels.count
            channels.append(StoredChannel(channel: record, sources: []))
        }
        let sourceFilter = id == nil ? "" : "WHERE channel_id = ?"
        let sources = try Row.fetchCursor(db, sql: "SELECT * FROM channel_sources \(sourceFilter) ORDER BY channel_id, position",
                                          arguments: arguments)
        while let row = try sources.next() {
            guard let at = index[row["channel_id"]] else { continue }
            channels[at].sources.append(ChannelSourceRecord(contentID: row["content_id"], dispatcharrStreamID: row["dispatcharr_stream_id"]))
        }
        return channels
    }

    // MARK: Measurements

    /// Appends one measurement to its source's history.
    public func recordMeasurement(_ m: SourceMeasurementRecord) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO source_measurements(content_id, measured_at, score, components, failure, facts, time_to_first_byte,
                    measured_seconds, stall_seconds, continuity_errors, null_packet_share, bitrate_kbps, peers, speed_down_kbps,
                    speed_up_kbps, livepos_advancing)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [m.contentID, m.measuredAt, m.score, m.components, m.failure, m.facts, m.timeToFirstByte,
                                 m.measuredSeconds, m.stallSeconds, m.continuityErrors, m.nullPacketShare, m.bitrateKbps, m.peers,
                                 m.speedDownKBps, m.speedUpKBps, m.liveposAdvancing])
        }
    }

    /// The newest measurement of every source that has one, by content id.
    public func latestMeasurements() async throws -> [String: SourceMeasurementRecord] {
        try await read { db in
            var latest: [String: SourceMeasurementRecord] = [:]
            let rows = try Row.fetchCursor(db, sql: """
                SELECT * FROM source_measurements
                WHERE id IN (SELECT MAX(id) FROM source_measurements GROUP BY content_id)
                """)
            while let row = try rows.next() {
                let record = Self.measurement(row)
                latest[record.contentID] = record
            }
            return latest
        }
    }

    /// The newest successful measurement of every source that has one: what the
    /// source's stream facts were when last seen working.
    public func latestSuccessfulMeasurements() async throws -> [String: SourceMeasurementRecord] {
        try await read { db in
            var latest: [String: SourceMeasurementRecord] = [:]
            let rows = try Row.fetchCursor(db, sql: """
                SELECT * FROM source_measurements
                WHERE id IN (SELECT MAX(id) FROM source_measurements WHERE failure IS NULL GROUP BY content_id)
                """)
            while let row = try rows.next() {
                let record = Self.measurement(row)
                latest[record.contentID] = record
            }
            return latest
        }
    }

    /// The history of `contentIDs` since `since` (all kept when nil), oldest first.
    public func measurements(contentIDs: [String], since: Date?) async throws -> [SourceMeasurementRecord] {
        guard !contentIDs.isEmpty else { return [] }
        return try await read { db in
            var history: [SourceMeasurementRecord] = []
            let rows = try Row.fetchCursor(db, sql: """
                SELECT * FROM source_measurements
                WHERE content_id IN (\(contentIDs.map { _ in "?" }.joined(separator: ","))) AND measured_at >= ?
                ORDER BY measured_at, id
                """, arguments: StatementArguments(contentIDs) + [since ?? Date.distantPast])
            while let row = try rows.next() { history.append(Self.measurement(row)) }
            return history
        }
    }

    /// Deletes measurements older than `date`, except each source's newest, so a
    /// source the prober has not reached again still shows its last score; returns how many.
    @discardableResult
    public func pruneMeasurements(before date: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: """
                DELETE FROM source_measurements WHERE measured_at < ?
                  AND id NOT IN (SELECT MAX(id) FROM source_measurements GROUP BY content_id)
                """, arguments: [date])
            return db.changesCount
        }
    }

    private static func measurement(_ row: Row) -> SourceMeasurementRecord {
        SourceMeasurementRecord(
            contentID: row["content_id"], measuredAt: row["measured_at"], score: row["score"], components: row["components"],
            failure: row["failure"], facts: row["facts"], timeToFirstByte: row["time_to_first_byte"],
            measuredSeconds: row["measured_seconds"], stallSeconds: row["stall_seconds"], continuityErrors: row["continuity_errors"],
            nullPacketShare: row["null_packet_share"], bitrateKbps: row["bitrate_kbps"], peers: row["peers"],
            speedDownKBps: row["speed_down_kbps"], speedUpKBps: row["speed_up_kbps"], liveposAdvancing: row["livepos_advancing"])
    }
}
