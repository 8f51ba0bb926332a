import CSupport

/// glibc gives each thread that contends for malloc an arena of its own, up to
/// 8 per core, and an arena keeps what its thread freed. The relay's loops, libcurl's
/// thread and the control plane's pool then hold freed memory in a dozen arenas, and
/// RSS climbs for hours under churn (perf/RESULTS.md, "Soak": +15.6 % in 30 minutes
/// with glibc's default against +3.3 % with two arenas). The data plane allocates
/// little per byte (sendfile), so two arenas cost it nothing measurable.
enum MallocArenas {
    static let relayDefault = 2

    /// Limits the arenas unless `MALLOC_ARENA_MAX` is set (glibc reads it itself).
    /// Called first thing, before any thread starts: glibc fixes the limit when a
    /// thread first needs a second arena. Returns the limit set, or nil when the
    /// environment chose or glibc refused.
    @discardableResult
    static func limit(environment: [String: String]) -> Int? {
        guard environment["MALLOC_ARENA_MAX"] == nil else { return nil }
        return csupport_limit_malloc_arenas(Int32(relayDefault)) == 1 ? relayDefault : nil
    }
}
