import Foundation

/// What the fleet looks like to the scaler: one entry per managed engine.
public struct EngineLoad: Sendable, Equatable {
    public var id: String
    public var healthy: Bool
    /// Live streams plus reservations not yet started.
    public var streams: Int
    /// When its last stream ended (or it was created), for idle removal.
    public var idleSince: Date?

    public init(id: String, healthy: Bool, streams: Int, idleSince: Date?) {
        self.id = id
        self.healthy = healthy
        self.streams = streams
        self.idleSince = idleSince
    }
}

/// The orchestrator's scaling rules as pure decisions, so they can be tested
/// with a manual clock and applied by whoever talks to Docker.
public struct ScalingPolicy: Sendable {
    public var minReplicas: Int
    public var minFreeReplicas: Int
    public var maxReplicas: Int
    public var maxStreamsPerEngine: Int
    public var idleGracePeriod: TimeInterval
    public var autoDelete: Bool

    public init(minReplicas: Int = 2, minFreeReplicas: Int = 1, maxReplicas: Int = 6, maxStreamsPerEngine: Int = 3,
                idleGracePeriod: TimeInterval = 30, autoDelete: Bool = true) {
        self.minReplicas = minReplicas
        self.minFreeReplicas = minFreeReplicas
        self.maxReplicas = maxReplicas
        self.maxStreamsPerEngine = maxStreamsPerEngine
        self.idleGracePeriod = idleGracePeriod
        self.autoDelete = autoDelete
    }

    public struct Decision: Sendable, Equatable {
        /// Engines to create now.
        public var provision: Int
        /// Idle engines to remove, oldest idle first.
        public var remove: [String]
    }

    /// `pending` counts engines being created, which count as free capacity already.
    public func decide(engines: [EngineLoad], pending: Int, now: Date) -> Decision {
        let total = engines.count + pending
        // An unhealthy engine is no capacity; a free engine has room for a stream.
        let free = engines.filter { $0.healthy && $0.streams == 0 }.count + pending
        var wanted = max(minReplicas - total, minFreeReplicas - free, 0)
        wanted = min(wanted, max(maxReplicas - total, 0))
        guard wanted == 0, autoDelete else { return Decision(provision: wanted, remove: []) }
        // Remove idle engines past the grace period while min replicas and free replicas hold.
        let idle = engines
            .filter { $0.streams == 0 && ($0.idleSince.map { now.timeIntervalSince($0) >= idleGracePeriod } ?? false) }
            .sorted { ($0.idleSince ?? now) < ($1.idleSince ?? now) }
        var removable: [String] = []
        var remaining = total
        var remainingFree = free
        for engine in idle {
            guard remaining - 1 >= minReplicas, remainingFree - (engine.healthy ? 1 : 0) >= minFreeReplicas else { break }
            removable.append(engine.id)
            remaining -= 1
            if engine.healthy { remainingFree -= 1 }
        }
        return Decision(provision: 0, remove: removable)
    }
}
