import Locking

/// The HLS players of one hub, each known by its address and user agent, with
/// the loop time of its last playlist or segment fetch.
///
/// HLS players make short requests, so a player is "connected" while it keeps
/// fetching: the registry counts a viewer as one of the hub's players from its
/// first fetch until it has been quiet for three target durations. Address plus
/// user agent, rather than a token in the URLs, keeps segment URLs the same for
/// every player (a cache or a channel playlist can reuse them) and needs no
/// redirect, which some players do not follow on reloads; players behind one NAT
/// with the same user agent count as one.
///
/// Guarded by its own lock, and touched only under the registry's lock so the
/// hub's player count and this set always agree.
final class HLSAudience: Sendable {
    private let lastFetch = Locked<[String: Double]>([:])

    /// Notes a fetch by `viewer`; true when the viewer is new (not yet counted).
    func touch(_ viewer: String, at now: Double) -> Bool {
        lastFetch.withLock { $0.updateValue(now, forKey: viewer) == nil }
    }

    /// Forgets viewers whose last fetch is before `cutoff`; returns how many.
    func expire(before cutoff: Double) -> Int {
        lastFetch.withLock { viewers in
            let before = viewers.count
            viewers = viewers.filter { $0.value >= cutoff }
            return before - viewers.count
        }
    }

    /// Whether `viewer` is counted now.
    func contains(_ viewer: String) -> Bool { lastFetch.withLock { $0[viewer] != nil } }

    /// Viewers counted now.
    var count: Int { lastFetch.withLock { $0.count } }

    /// The key of a viewer: the address without its port (each request is a new
    /// connection) and the user agent.
    static func viewer(address: String, userAgent: String?) -> String {
        var host = Substring(address)
        if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
        return "\(host) \(userAgent ?? "")"
    }
}
