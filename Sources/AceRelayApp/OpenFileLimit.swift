#if canImport(Glibc)
import Glibc
#endif

/// Each player is a socket: the default soft limit of 1,024 descriptors would
/// cap a relay at about a thousand players, so the soft limit goes to the hard one.
enum OpenFileLimit {
    /// Raises the soft limit to the hard limit; returns the limit now in force.
    @discardableResult
    static func raiseToHardLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(RLIMIT_NOFILE_VALUE, &limit)
            _ = getrlimit(RLIMIT_NOFILE_VALUE, &limit)
        }
        return UInt64(limit.rlim_cur)
    }

    /// Descriptors kept for everything but players: engine transfers and health
    /// probes, the control API's connections, the store, the loops' own.
    static func reserve(descriptors: UInt64) -> UInt64 { max(128, descriptors / 8) }

    /// `--max-players` when none is given: a player of a content nobody else
    /// watches costs three descriptors (its socket, its hub's memfd, the engine
    /// transfer), so a third of what the reserve leaves; at least 16.
    static func defaultMaxPlayers(descriptors: UInt64) -> Int {
        let spare = descriptors > reserve(descriptors: descriptors) ? descriptors - reserve(descriptors: descriptors) : 0
        return Int(min(max(spare / 3, 16), 10_000_000))
    }

    private static var RLIMIT_NOFILE_VALUE: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }
}
