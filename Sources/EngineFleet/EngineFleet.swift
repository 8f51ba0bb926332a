import Clocks
import Foundation
import Logging
import RelayCore
import Locking

/// The one registry of engines, managed and static, and the relay's engine
/// selector: healthy engines only, forwarded preferred, least loaded (streams
/// plus reservations), longest idle.
///
/// A reservation is taken under the registry's lock, so a burst of new
/// contents never books more than an engine's limit on it (its own, or the
/// fleet's `maxStreamsPerEngine`). When no
/// engine can take a content, the request waits (its hub keeps players alive
/// with keepalive packets) while `demand` asks the provisioner for an engine;
/// it is served as soon as one turns healthy, or refused after
/// `startupTimeout` with the provisioner's reason.
public final class EngineFleet: EngineSelector {
    public typealias Completion = @Sendable (Result<EngineEndpoint, EngineUnavailable>) -> Void

    private struct Waiter {
        let content: ContentKey
        let excluded: Set<EngineEndpoint>
        let deadline: Date
        let completion: Completion
    }

    private struct State {
        var engines: [String: FleetEngine] = [:]
        var waiters: [Waiter] = []
        /// Contents reserved by probes, per engine id: not demand the scaling policy provisions for.
        var probes: [String: Set<ContentKey>] = [:]
    }

    private let state = Locked(State())
    private let clock: any WallClock
    private let maxStreamsPerEngine: Int
    private let startupTimeout: TimeInterval
    private let failureThreshold: Int
    private let logger: Logger
    /// Called (outside the lock) when a request waits for capacity; answers why
    /// provisioning cannot help, or nil when it will try.
    private let demand: Locked<(@Sendable () -> EngineUnavailable?)?> = Locked(nil)

    public init(clock: any WallClock = SystemClock(), maxStreamsPerEngine: Int, startupTimeout: TimeInterval,
                failureThreshold: Int, logger: Logger) {
        self.clock = clock
        self.maxStreamsPerEngine = maxStreamsPerEngine
        self.startupTimeout = startupTimeout
        self.failureThreshold = failureThreshold
        self.logger = logger
    }

    /// Sets who hears about unmet demand (the provisioner).
    public func onDemand(_ handler: @escaping @Sendable () -> EngineUnavailable?) { demand.withLock { $0 = handler } }

    // MARK: Registry

    /// Adds or refreshes an engine (from configuration, provisioning or reconciliation).
    public func register(_ engine: FleetEngine) {
        state.withLock { state in
            if var existing = state.engines[engine.id] {
                existing.lastSeen = engine.lastSeen
                existing.labels = engine.labels
                existing.endpoint = engine.endpoint
                existing.port = engine.port
                existing.host = engine.host
                // A drained engine stays drained and unforwarded whatever its labels say.
                existing.forwarded = engine.forwarded && !existing.draining
                existing.dockerHost = engine.dockerHost
                state.engines[engine.id] = existing
            } else {
                state.engines[engine.id] = engine
            }
        }
        serveWaiters()
    }

    /// Forgets an engine; its reservations end (their hubs move on when their streams fail).
    @discardableResult
    public func remove(id: String) -> FleetEngine? {
        state.withLock { $0.engines.removeValue(forKey: id) }
    }

    /// Stops giving the engine new streams (make-before-break: its replacement runs);
    /// it is no longer the forwarded engine. False when it is not known.
    @discardableResult
    public func drain(id: String) -> Bool {
        state.withLock { state in
            guard state.engines[id] != nil else { return false }
            state.engines[id]!.draining = true
            state.engines[id]!.forwarded = false
            return true
        }
    }

    /// Takes a draining engine back into service, as the forwarded engine when `forwarded`.
    public func undrain(id: String, forwarded: Bool) {
        state.withLock { state in
            state.engines[id]?.draining = false
            state.engines[id]?.forwarded = forwarded
        }
        serveWaiters()
    }

    public var engines: [FleetEngine] { state.withLock { Array($0.engines.values) }.sorted { $0.firstSeen < $1.firstSeen } }

    public func engine(id: String) -> FleetEngine? { state.withLock { $0.engines[id] } }

    /// Requests waiting for an engine.
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Records a health probe; returns the engine after the change, if it changed status.
    @discardableResult
    public func recordProbe(id: String, success: Bool, version: String? = nil, platform: String? = nil) -> FleetEngine? {
        let now = clock.now
        let changed: FleetEngine? = state.withLock { state in
            guard var engine = state.engines[id] else { return nil }
            let didChange = engine.health.record(success: success, at: now)
            if success {
                engine.lastSeen = now
                if let version { engine.version = version }
                if let platform { engine.platform = platform }
            }
            state.engines[id] = engine
            return didChange ? engine : nil
        }
        if success { serveWaiters() }
        return changed
    }

    // MARK: EngineSelector

    public func reserveEngine(for content: ContentKey, excluding excluded: Set<EngineEndpoint>, completion: @escaping Completion) {
        let now = clock.now
        let chosen: EngineEndpoint? = state.withLock { state in
            guard let id = Self.choose(from: state.engines, excluding: excluded, limit: maxStreamsPerEngine) else { return nil }
            Self.reserve(&state.engines[id]!, content, now: now)
            return state.engines[id]!.endpoint
        }
        if let chosen {
            completion(.success(chosen))
            return
        }
        let deadline = now.addingTimeInterval(startupTimeout)
        // An engine not yet probed (just provisioned, or at start-up) may take it
        // once its first probe succeeds: wait for that rather than provision more.
        let probing = state.withLock { state in
            let pending = state.engines.values.contains { engine in
                engine.health.status == .unknown && !excluded.contains(engine.endpoint)
                    && engine.hasRoom(fleetLimit: maxStreamsPerEngine)
            }
            if pending { state.waiters.append(Waiter(content: content, excluded: excluded, deadline: deadline, completion: completion)) }
            return pending
        }
        if probing { return }
        // Nothing can take it now: wait for capacity, unless provisioning cannot help.
        guard let demand = demand.withLock({ $0 }) else {
            completion(.failure(EngineUnavailable(
                code: "no_engine", message: "every engine is busy or unhealthy, and none can be provisioned",
                retryAfterSeconds: 15)))
            return
        }
        if let refusal = demand() {
            completion(.failure(refusal))
            return
        }
        state.withLock { $0.waiters.append(Waiter(content: content, excluded: excluded, deadline: deadline, completion: completion)) }
        serveWaiters()
    }

    /// A probe's engine: only from healthy engines, only when a slot stays free for
    /// a player after it, never through a waiter or the provisioner.
    public func reserveSpareEngine(for content: ContentKey, excluding excluded: Set<EngineEndpoint>) -> EngineEndpoint? {
        let now = clock.now
        return state.withLock { state in
            // A waiting player comes first, whatever room there is.
            guard state.waiters.isEmpty else { return nil }
            let free = state.engines.values.reduce(0) { total, engine in
                engine.health.status == .healthy && !excluded.contains(engine.endpoint)
                    ? total + engine.freeSlots(fleetLimit: maxStreamsPerEngine) : total
            }
            guard free >= 2, let id = Self.choose(from: state.engines, excluding: excluded, limit: maxStreamsPerEngine) else { return nil }
            Self.reserve(&state.engines[id]!, content, now: now)
            state.probes[id, default: []].insert(content)
            return state.engines[id]!.endpoint
        }
    }

    /// Contents on the engine that players (not probes) asked for: the load scaling decides on,
    /// so probes never make the fleet provision.
    public func playerLoad(of engine: FleetEngine) -> Int {
        let probes = state.withLock { $0.probes[engine.id]?.count ?? 0 }
        return max(engine.load - probes, 0)
    }

    public func hasFreeSlot(excluding excluded: Set<EngineEndpoint>) -> Bool {
        state.withLock { state in Self.choose(from: state.engines, excluding: excluded, limit: maxStreamsPerEngine) != nil }
    }

    public func engineStarted(_ engine: EngineEndpoint, for content: ContentKey) {
        let now = clock.now
        state.withLock { state in
            guard var entry = state.engines[engine.id] else { return }
            entry.streaming.insert(content)
            entry.lastStreamUsage = now
            state.engines[engine.id] = entry
        }
    }

    public func releaseEngine(_ engine: EngineEndpoint, for content: ContentKey) {
        let now = clock.now
        state.withLock { state in
            state.probes[engine.id]?.remove(content)
            guard var entry = state.engines[engine.id] else { return }
            entry.contents.remove(content)
            entry.streaming.remove(content)
            entry.lastStreamUsage = now
            if entry.contents.isEmpty { entry.idleSince = now }
            state.engines[engine.id] = entry
        }
        serveWaiters()
    }

    public func engineFailed(_ engine: EngineEndpoint, reason: String) {
        logger.warning("engine failed a stream", metadata: ["fleet.engine": "\(engine.id)", "fleet.reason": "\(reason)"])
    }

    // MARK: Waiting requests

    /// Serves waiters that an engine can now take, in arrival order; fails those past their deadline.
    public func serveWaiters() {
        let now = clock.now
        var served: [(Completion, Result<EngineEndpoint, EngineUnavailable>)] = []
        state.withLock { state in
            var remaining: [Waiter] = []
            for waiter in state.waiters {
                if let id = Self.choose(from: state.engines, excluding: waiter.excluded, limit: maxStreamsPerEngine) {
                    Self.reserve(&state.engines[id]!, waiter.content, now: now)
                    served.append((waiter.completion, .success(state.engines[id]!.endpoint)))
                } else if now >= waiter.deadline {
                    served.append((waiter.completion, .failure(EngineUnavailable(
                        code: "startup_timeout", message: "no engine became available within \(Int(startupTimeout)) s",
                        retryAfterSeconds: 15))))
                } else {
                    remaining.append(waiter)
                }
            }
            state.waiters = remaining
        }
        for (completion, result) in served { completion(result) }
    }

    /// Fails every waiter now, e.g. when provisioning broke for good.
    public func failWaiters(_ reason: EngineUnavailable) {
        let waiters = state.withLock { state -> [Waiter] in
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.completion(.failure(reason)) }
    }

    // MARK: Choice

    private static func reserve(_ engine: inout FleetEngine, _ content: ContentKey, now: Date) {
        engine.contents.insert(content)
        engine.idleSince = nil
        engine.lastStreamUsage = now
    }

    /// Among engines a probe found healthy: forwarded first, least loaded, longest idle.
    /// An engine not yet probed may not be listening yet (a container still starting).
    static func choose(from engines: [String: FleetEngine], excluding excluded: Set<EngineEndpoint>, limit: Int) -> String? {
        let candidates = engines.values.filter { engine in
            engine.health.status == .healthy && !excluded.contains(engine.endpoint)
                && engine.hasRoom(fleetLimit: limit)
        }
        return candidates.min { a, b in
            if a.forwarded != b.forwarded { return a.forwarded }
            if a.load != b.load { return a.load < b.load }
            let idleA = a.idleSince ?? .distantFuture, idleB = b.idleSince ?? .distantFuture
            if idleA != idleB { return idleA < idleB }
            return a.id < b.id
        }?.id
    }
}
