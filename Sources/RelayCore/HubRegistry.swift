import Locking

/// Every hub of this host by content, so each content has at most one engine
/// session however many players ask at once.
///
/// Attaching a player and deciding that an idle hub may close happen under the
/// same lock, so a player arriving at the end of a grace period either keeps
/// the hub or finds it gone, never a hub that is closing.
///
/// It also counts, per player address, the hubs that address opened and that
/// are still open (`--max-contents-per-address`), under the same lock, so a
/// burst of new contents from one address cannot slip past the bound.
final class HubRegistry: Sendable {
    private struct State {
        var hubs: [ContentKey: Hub] = [:]
        /// The address that opened each open hub, for hubs a player opened.
        var openers: [ObjectIdentifier: String] = [:]
        /// Open hubs per opening address; an address with none has no entry.
        var openedPerAddress: [String: Int] = [:]

        /// Drops `hub`'s entry and gives its opener's count back.
        mutating func forget(_ hub: Hub) {
            if hubs[hub.key] === hub { hubs[hub.key] = nil }
            guard let address = openers.removeValue(forKey: ObjectIdentifier(hub)) else { return }
            let left = (openedPerAddress[address] ?? 1) - 1
            openedPerAddress[address] = left > 0 ? left : nil
        }
    }

    private let state = Locked(State())
    /// Hubs one address may have opened and still open; 0 for no bound.
    let maxContentsPerAddress: Int

    init(maxContentsPerAddress: Int = 0) { self.maxContentsPerAddress = maxContentsPerAddress }

    /// Counts a new player of `key`, creating the hub with `make` if none is open.
    /// - Parameter address: the player's address (host only); a new hub counts against it.
    /// - Throws: `AddressQuotaExceeded` when `key` has no hub and `address` opened
    ///   `maxContentsPerAddress` hubs that are still open; what `make` throws.
    func attach(_ key: ContentKey, from address: String? = nil, make: () throws -> Hub) throws -> (hub: Hub, created: Bool) {
        try state.withLock { state in
            if let hub = state.hubs[key] {
                hub.clientCount.add(1, ordering: .relaxed)
                hub.hadPlayers.store(true, ordering: .releasing)
                return (hub, false)
            }
            if let address, maxContentsPerAddress > 0, state.openedPerAddress[address, default: 0] >= maxContentsPerAddress {
                throw AddressQuotaExceeded(limit: maxContentsPerAddress)
            }
            let hub = try make()
            hub.clientCount.add(1, ordering: .relaxed)
            hub.hadPlayers.store(true, ordering: .releasing)
            state.hubs[key] = hub
            if let address {
                state.openers[ObjectIdentifier(hub)] = address
                state.openedPerAddress[address, default: 0] += 1
            }
            return (hub, true)
        }
    }

    /// Counts a probe of `key`, creating the hub with `make` if none is open. A
    /// probe holds the hub open like a player, but is no player.
    func attachProbe(_ key: ContentKey, make: () throws -> Hub) rethrows -> (hub: Hub, created: Bool) {
        try state.withLock { state in
            if let hub = state.hubs[key] {
                hub.probeCount.add(1, ordering: .relaxed)
                return (hub, false)
            }
            let hub = try make()
            hub.probeCount.add(1, ordering: .relaxed)
            state.hubs[key] = hub
            return (hub, true)
        }
    }

    /// Notes an HLS fetch of `key` by `viewer`, creating the hub with `make` if none
    /// is open; a viewer not yet in the hub's audience is counted as a player.
    /// - Parameter address: the viewer's host; a new hub counts against it, as for `attach`.
    /// - Throws: `AddressQuotaExceeded` as `attach` does; what `make` throws.
    func attachViewer(_ key: ContentKey, viewer: String, from address: String? = nil, at now: Double,
                      make: () throws -> Hub) throws -> (hub: Hub, created: Bool, newViewer: Bool) {
        try state.withLock { state in
            let existing = state.hubs[key]
            if existing == nil, let address, maxContentsPerAddress > 0,
               state.openedPerAddress[address, default: 0] >= maxContentsPerAddress {
                throw AddressQuotaExceeded(limit: maxContentsPerAddress)
            }
            let hub = try existing ?? make()
            if existing == nil {
                state.hubs[key] = hub
                if let address {
                    state.openers[ObjectIdentifier(hub)] = address
                    state.openedPerAddress[address, default: 0] += 1
                }
            }
            let isNew = hub.audience.touch(viewer, at: now)
            if isNew {
                hub.clientCount.add(1, ordering: .relaxed)
                hub.hadPlayers.store(true, ordering: .releasing)
            }
            return (hub, existing == nil, isNew)
        }
    }

    /// Notes an HLS fetch of one of `hub`'s segments, counting a new viewer; nothing
    /// when the hub is no longer the content's open hub. True for a new viewer.
    func touchViewer(of hub: Hub, viewer: String, at now: Double) -> Bool {
        state.withLock { state in
            guard state.hubs[hub.key] === hub, hub.audience.touch(viewer, at: now) else { return false }
            hub.clientCount.add(1, ordering: .relaxed)
            hub.hadPlayers.store(true, ordering: .releasing)
            return true
        }
    }

    /// Uncounts the HLS viewers of `hub` quiet since before `cutoff`; the hub's owner
    /// hears about it when nothing holds the hub any more. Returns how many left.
    func expireViewers(of hub: Hub, before cutoff: Double) -> Int {
        let (gone, released) = state.withLock { _ -> (Int, Bool) in
            let gone = hub.audience.expire(before: cutoff)
            guard gone > 0 else { return (0, false) }
            return (gone, hub.clientCount.subtract(gone, ordering: .relaxed).newValue == 0 && hub.probeCount.load(ordering: .relaxed) == 0)
        }
        if released { hub.owner.execute { hub.lastClientLeft() } }
        return gone
    }

    /// The open hub of `key`, if any.
    func hub(for key: ContentKey) -> Hub? { state.withLock { $0.hubs[key] } }

    /// Uncounts a player; the hub's owner hears about it when nothing holds the hub any more.
    func detach(_ hub: Hub) {
        let released = state.withLock { _ in
            hub.clientCount.subtract(1, ordering: .relaxed).newValue == 0 && hub.probeCount.load(ordering: .relaxed) == 0
        }
        if released { hub.owner.execute { hub.lastClientLeft() } }
    }

    /// Uncounts a probe; the hub's owner hears about it when nothing holds the hub any more.
    func detachProbe(_ hub: Hub) {
        let released = state.withLock { _ in
            hub.probeCount.subtract(1, ordering: .relaxed).newValue == 0 && hub.clientCount.load(ordering: .relaxed) == 0
        }
        if released { hub.owner.execute { hub.lastClientLeft() } }
    }

    /// Removes `hub` if nobody is attached; true when removed and the hub may close.
    func removeIfIdle(_ hub: Hub) -> Bool {
        state.withLock { state in
            guard hub.clientCount.load(ordering: .relaxed) == 0, hub.probeCount.load(ordering: .relaxed) == 0 else { return false }
            state.forget(hub)
            return true
        }
    }

    /// Removes one hub that only probes ever held, other than `spared`; nil if none.
    /// Under the lock, so no player can attach to the hub once it is chosen.
    func removeProbeOnlyHub(sparing spared: Hub) -> Hub? {
        state.withLock { state in
            guard let entry = state.hubs.first(where: { $0.value !== spared && $0.value.isProbeOnly }) else { return nil }
            state.forget(entry.value)
            return entry.value
        }
    }

    /// Removes `hub` whatever its players: it failed or the relay is stopping.
    func remove(_ hub: Hub) {
        state.withLock { $0.forget(hub) }
    }

    var all: [Hub] { state.withLock { Array($0.hubs.values) } }
}

/// A player address asked for a new content while it already has
/// `limit` hubs open that it opened (`--max-contents-per-address`).
struct AddressQuotaExceeded: Error {
    let limit: Int
}
