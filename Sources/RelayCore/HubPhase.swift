/// What players of a hub can see of its state, from any thread.
enum HubPhase: UInt8, Sendable {
    /// Engine chosen or session opening; no stream bytes yet.
    case starting
    /// Bytes are in the history (the engine may be reconnecting; keepalives fill gaps).
    case streaming
    /// The hub could not start or lost its engine for good; see `Hub.failure`.
    case failed
    /// Closed normally (idle after the grace period, or the relay is stopping).
    case closed
}

/// Why a hub gave up, as a player will be told.
struct HubFailure: Sendable, Equatable {
    /// HTTP status for a player that has not had its head yet.
    let status: Int
    /// Machine-readable code for the JSON body.
    let code: String
    let message: String
    /// `Retry-After` seconds, when asking again later may help.
    let retryAfter: Int?
}

/// How a hub's engine stream is doing, as channel players see it from any thread.
enum HubUpstream: UInt8, Sendable {
    /// Live and not reconnecting.
    case flowing
    /// Reconnecting, the same-session attempt still pending.
    case reconnecting
    /// Reconnecting, and an attempt already failed: the same session did not come back.
    case reconnectFailed
}
