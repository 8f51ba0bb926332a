import Foundation
import Logging
import PersistentConditions
import Store
import Locking
import Synchronization

/// Probes every engine's `get_status` and feeds the results to the fleet:
/// an engine turns unhealthy after consecutive failures and gets no new hubs;
/// status changes are logged, stored, and recorded as events.
public final class HealthMonitor: Sendable {
    private let fleet: EngineFleet
    private let store: Store?
    private let probe: EngineProbe
    private let logger: Logger
    /// Per engine, its probes failing: logged when it begins, summarised, and when it ends,
    /// not once per probe interval.
    private let unanswered = Locked<[String: PersistentConditionLog]>([:])
    /// Failed probes of engines gone from the fleet, so `probeFailures` never goes down.
    private let forgottenFailures = Atomic<UInt64>(0)

    public init(fleet: EngineFleet, store: Store?, probe: EngineProbe, logger: Logger) {
        self.fleet = fleet
        self.store = store
        self.probe = probe
        self.logger = logger
    }

    /// Probes all engines at once and waits for every answer (each bounded by the probe timeout).
    public func checkAll() async {
        let engines = fleet.engines
        await withTaskGroup(of: (String, ProbeResult).self) { group in
            for engine in engines {
                group.addTask { [probe] in (engine.id, await probe.probe(baseURL: engine.endpoint.baseURL)) }
            }
            for await (id, result) in group {
                reportProbe(of: engines.first { $0.id == id }, result)
                guard let changed = fleet.recordProbe(id: id, success: result.healthy, version: result.version, platform: result.platform) else {
                    continue
                }
                let status = changed.health.status.rawValue
                if changed.health.status == .unhealthy {
                    logger.warning("engine unhealthy", metadata: ["fleet.engine": "\(changed.name)", "fleet.reason": "\(result.failure ?? "")"])
                } else {
                    logger.info("engine \(status)", metadata: ["fleet.engine": "\(changed.name)"])
                }
                await persist(changed, failure: result.failure)
            }
        }
    }

    /// Failed probes since start, over every engine; for a metric.
    public var probeFailures: UInt64 {
        // Both under the lock: a gone engine's failures move from one to the other under it, so
        // reading the second after the lock could count them twice, and a counter never goes back.
        unanswered.withLock { $0.values.reduce(0) { $0 + $1.occurrences } + forgottenFailures.load(ordering: .relaxed) }
    }

    private func reportProbe(of engine: FleetEngine?, _ result: ProbeResult) {
        guard let engine else { return }
        let condition = unanswered.withLock { conditions in
            let present = Set(fleet.engines.map(\.id))
            for (id, gone) in conditions where !present.contains(id) {
                forgottenFailures.add(gone.occurrences, ordering: .relaxed)
                conditions[id] = nil
            }
            if let known = conditions[engine.id] { return known }
            // Notice, not warning: a starting engine fails its first probes, and "engine unhealthy" is the warning.
            let made = PersistentConditionLog(name: "engine \(engine.name) not answering its status probe", level: .notice, logger: logger)
            conditions[engine.id] = made
            return made
        }
        if result.healthy {
            condition.cleared(metadata: ["fleet.engine": "\(engine.name)"])
        } else {
            condition.occurred(result.failure ?? "no answer", metadata: ["fleet.engine": "\(engine.name)"])
        }
    }

    private func persist(_ engine: FleetEngine, failure: String?) async {
        guard let store else { return }
        do {
            try await store.saveEngine(engine.record)
            let message = engine.health.status == .unhealthy
                ? "\(engine.name) unhealthy after \(engine.health.consecutiveFailures) failed probes: \(failure ?? "no answer")"
                : "\(engine.name) \(engine.health.status.rawValue)"
            try await store.record(EventRecord(kind: "engine_\(engine.health.status.rawValue)", message: message, containerID: engine.id))
        } catch {
            logger.warning("cannot store an engine's health", metadata: ["fleet.reason": "\(error)"])
        }
    }
}
