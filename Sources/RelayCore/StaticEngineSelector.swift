import Locking

/// Chooses among engines given by URL in the configuration: healthy first,
/// least loaded (live sessions plus reservations), then longest idle.
///
/// Health here is passive: an engine that fails `failureThreshold` times in a
/// row is skipped for `cooldownSeconds`, then tried again. The control plane
/// adds active probing on top.
public final class StaticEngineSelector: EngineSelector {
    private struct EngineState {
        var endpoint: EngineEndpoint
        var contents: Set<ContentKey> = []
        var consecutiveFailures = 0
        var unhealthyUntil: ContinuousClock.Instant?
        var lastReleased: ContinuousClock.Instant
    }

    private let state: Locked<[EngineState]>
    private let maxStreamsPerEngine: Int
    private let failureThreshold: Int
    private let cooldown: Duration

    public init(engines: [EngineEndpoint], maxStreamsPerEngine: Int = 0, failureThreshold: Int = 3, cooldownSeconds: Int = 30) {
        let now = ContinuousClock.now
        state = Locked(engines.map { EngineState(endpoint: $0, lastReleased: now) })
        self.maxStreamsPerEngine = maxStreamsPerEngine
        self.failureThreshold = failureThreshold
        cooldown = .seconds(cooldownSeconds)
    }

    public var engines: [EngineEndpoint] { state.withLock { $0.map(\.endpoint) } }

    /// Content count per engine id, for status pages.
    public var load: [String: Int] { state.withLock { Dictionary($0.map { ($0.endpoint.id, $0.contents.count) }, uniquingKeysWith: +) } }

    public func reserveEngine(
        for content: ContentKey,
        excluding excluded: Set<EngineEndpoint>,
        completion: @escaping @Sendable (Result<EngineEndpoint, EngineUnavailable>) -> Void
    ) {
        let result: Result<EngineEndpoint, EngineUnavailable> = state.withLock { engines in
            guard !engines.isEmpty else {
                return .failure(EngineUnavailable(code: "no_engine", message: "no AceStream engine is configured", retryAfterSeconds: 30))
            }
            let now = ContinuousClock.now
            let candidates = engines.indices.filter { i in
                !excluded.contains(engines[i].endpoint)
                    && (maxStreamsPerEngine == 0 || engines[i].contents.count < maxStreamsPerEngine)
            }
            func healthy(_ i: Int) -> Bool { engines[i].unhealthyUntil.map { $0 <= now } ?? true }
            let ordered = candidates.sorted { a, b in
                let (ha, hb) = (healthy(a), healthy(b))
                if ha != hb { return ha }
                if engines[a].contents.count != engines[b].contents.count {
                    return engines[a].contents.count < engines[b].contents.count
                }
                return engines[a].lastReleased < engines[b].lastReleased
            }
            guard let chosen = ordered.first(where: healthy) else {
                let busy = candidates.isEmpty && excluded.count < engines.count
                return .failure(EngineUnavailable(
                    code: busy ? "max_capacity" : "no_healthy_engine",
                    message: busy ? "every engine already serves its maximum of \(maxStreamsPerEngine) streams"
                        : "no healthy AceStream engine can take this content",
                    retryAfterSeconds: busy ? 15 : 10))
            }
            engines[chosen].contents.insert(content)
            return .success(engines[chosen].endpoint)
        }
        completion(result)
    }

    public func reserveSpareEngine(for content: ContentKey, excluding excluded: Set<EngineEndpoint>) -> EngineEndpoint? {
        state.withLock { engines in
            let now = ContinuousClock.now
            let usable = engines.indices.filter { i in
                !excluded.contains(engines[i].endpoint) && (engines[i].unhealthyUntil.map { $0 <= now } ?? true)
            }
            func room(_ i: Int) -> Int { maxStreamsPerEngine == 0 ? 1 << 20 : max(maxStreamsPerEngine - engines[i].contents.count, 0) }
            // One slot stays free for a player: a probe needs two.
            let free = usable.reduce(0) { $0 + room($1) }
            guard free >= 2, let chosen = usable.filter({ room($0) > 0 }).min(by: { engines[$0].contents.count < engines[$1].contents.count }) else {
                return nil
            }
            engines[chosen].contents.insert(content)
            return engines[chosen].endpoint
        }
    }

    public func hasFreeSlot(excluding excluded: Set<EngineEndpoint>) -> Bool {
        guard maxStreamsPerEngine > 0 else { return state.withLock { !$0.isEmpty } }
        return state.withLock { engines in
            let now = ContinuousClock.now
            return engines.contains { engine in
                !excluded.contains(engine.endpoint) && (engine.unhealthyUntil.map { $0 <= now } ?? true)
                    && engine.contents.count < maxStreamsPerEngine
            }
        }
    }

    public func engineStarted(_ engine: EngineEndpoint, for content: ContentKey) {
        state.withLock { engines in
            for i in engines.indices where engines[i].endpoint == engine {
                engines[i].consecutiveFailures = 0
                engines[i].unhealthyUntil = nil
            }
        }
    }

    public func releaseEngine(_ engine: EngineEndpoint, for content: ContentKey) {
        state.withLock { engines in
            for i in engines.indices where engines[i].endpoint == engine {
                if engines[i].contents.remove(content) != nil { engines[i].lastReleased = .now }
            }
        }
    }

    public func engineFailed(_ engine: EngineEndpoint, reason: String) {
        state.withLock { engines in
            for i in engines.indices where engines[i].endpoint == engine {
                engines[i].consecutiveFailures += 1
                if engines[i].consecutiveFailures >= failureThreshold {
                    engines[i].unhealthyUntil = .now + cooldown
                }
            }
        }
    }
}
