/// Why a channel player left a source, as `/ace/status`, the channel API and
/// `acerelay_channel_switches_total{reason}` show it. A fixed set, so it can be a label.
public enum ChannelSwitchReason: String, Sendable, Codable, CaseIterable {
    /// No stream packets for `channelFailoverAfter` seconds while the hub was live.
    case stalled
    /// The engine ended the response and the same-session reconnect brought nothing back in time.
    case eof
    /// The same-session reconnect failed outright: the engine is gone or refuses the session.
    case engineLost = "engine_lost"
    /// The control plane found the broadcast looping and closed its hub.
    case looping
    /// The hub failed for another reason (no engine, start timeout, storage).
    case hubFailed = "hub_failed"
    /// The hub closed without failing (not the source's fault; it is not reported).
    case hubClosed = "hub_closed"
}

/// What the relay asks about channels: which sources a channel plays, best
/// first, and where it reports a source that failed its players.
///
/// The control plane implements it (the channel service). Called on relay
/// loops: answer from memory, without awaiting and without holding a lock for
/// long; hand the report's work off.
public protocol ChannelDirectory: Sendable {
    /// The channel's working sources in failover order (failed ones left out);
    /// nil when there is no such channel, empty when every source failed.
    func sources(ofChannel channelID: String) -> [ContentKey]?

    /// A source failed a player of the channel: mark it failed (score 0 with
    /// `reason`) so the channel's order, and the next lookups, leave it out
    /// until it measures well again.
    func sourceFailed(_ source: ContentKey, ofChannel channelID: String, reason: ChannelSwitchReason)
}
