import CSupport

/// How acerelay asks glibc's malloc to keep RSS close to what is live.
enum MallocTuning {
    /// glibc gives each thread that contends for malloc an arena of its own, up to
    /// 8 per core, and an arena keeps what its thread freed. The relay's loops, libcurl's
    /// thread and the control plane's pool then hold freed memory in a dozen arenas
    /// (perf/RESULTS.md, "Soak": RSS +15.6 % in 30 minutes with glibc's default against
    /// +3.3 % with two arenas). The data plane allocates little per byte (sendfile), so
    /// contention on two arenas should cost it little; perf/run.py has not been rerun
    /// to show it.
    static let arenas = 2

    /// How often freed memory is handed back (`returnFreedMemory`).
    static let trimInterval = 30.0

    /// Limits the arenas unless `MALLOC_ARENA_MAX` is set (glibc reads it itself).
    /// Called first thing, before any thread starts: glibc fixes the limit when a
    /// thread first needs a second arena. Returns the limit set, or nil when the
    /// environment chose or glibc refused.
    @discardableResult
    static func limitArenas(environment: [String: String]) -> Int? {
        guard environment["MALLOC_ARENA_MAX"] == nil else { return nil }
        return csupport_limit_malloc_arenas(Int32(arenas)) == 1 ? arenas : nil
    }

    /// Hands free pages inside the heap back to the system (malloc_trim). glibc gives
    /// back only the top of a heap by itself, so one large short-lived answer (`/streams`
    /// with an hour of ended streams is megabytes of rows and JSON) leaves its pages
    /// resident under whatever was allocated after it, and RSS tracks the largest answer
    /// ever built rather than what is live. A few milliseconds every `trimInterval`,
    /// on a control-plane thread.
    static func returnFreedMemory() {
        _ = csupport_malloc_trim()
    }
}
