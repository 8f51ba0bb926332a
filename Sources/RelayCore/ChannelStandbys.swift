import Locking

/// Warm standbys: while a channel has players, the source they would switch to
/// next is kept open as a hub without players, so a switch costs no engine start.
///
/// A standby is held like a probe (`HubRegistry.attachProbe`): it reserves only
/// spare engine capacity and a player that needs the engine preempts it. One
/// per channel, following the latest player's wish; released when the
/// channel's last player leaves. A standby that could not open (no spare
/// engine, preempted) is tried again after `retryInterval`.
final class ChannelStandbys: Sendable {
    private struct Entry {
        var players = 0
        var hub: Hub?
        /// Loop time before which a failed standby is not opened again.
        var retryAt: Double = 0
    }

    static let retryInterval: Double = 10

    private let entries = Locked<[String: Entry]>([:])
    private let registry: HubRegistry
    private let ledger: ChannelLedger

    init(registry: HubRegistry, ledger: ChannelLedger) {
        self.registry = registry
        self.ledger = ledger
    }

    func playerJoined(_ channel: String) {
        entries.withLock { $0[channel, default: Entry()].players += 1 }
    }

    /// The channel's last player left: its standby goes.
    func playerLeft(_ channel: String) {
        let released: Hub? = entries.withLock { entries in
            guard var entry = entries[channel] else { return nil }
            entry.players -= 1
            guard entry.players <= 0 else {
                entries[channel] = entry
                return nil
            }
            entries[channel] = nil
            return entry.hub
        }
        if let released {
            registry.detachProbe(released)
            ledger.standby(channel, source: nil)
        }
    }

    /// Keeps `source` open for `channel` (nil: no standby). On `worker`'s loop: a
    /// hub it opens belongs to that worker.
    func want(_ source: ContentKey?, for channel: String, on worker: Worker) {
        let now = worker.loop.now
        var opened: Hub?
        var created = false
        let released: Hub? = entries.withLock { entries in
            guard var entry = entries[channel], entry.players > 0 else { return nil }
            let current = entry.hub
            let usable = current.map { $0.phase == .starting || $0.phase == .streaming } ?? false
            if let current, current.key == source, usable { return nil }
            if current?.key == source, !usable, now < entry.retryAt { return nil }
            var dropped: Hub?
            if let current {
                dropped = current
                entry.hub = nil
            }
            if let source, worker.server.isAccepting {
                if let attached = try? registry.attachProbe(source, make: { try Hub(key: source, owner: worker) }) {
                    entry.hub = attached.hub
                    created = attached.created
                    opened = attached.hub
                }
                entry.retryAt = now + ChannelStandbys.retryInterval
            }
            entries[channel] = entry
            return dropped
        }
        if let released { registry.detachProbe(released) }
        if created, let opened { opened.start() }
        if released != nil || opened != nil { ledger.standby(channel, source: opened?.key) }
    }
}
