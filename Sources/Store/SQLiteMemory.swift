import GRDBSQLite

extension Store {
    /// Bytes SQLite holds now over every connection of the process (page caches,
    /// statements, schema): `sqlite3_memory_used`. The page caches grow with the database
    /// up to their limit, so this is where a growing history shows in memory.
    public static var sqliteMemoryBytes: Int64 { sqlite3_memory_used() }
}
