import EngineFleet
import Streams
import Dispatcharr
import Foundation
import VPN
import Hummingbird
import Store

/// `GET /orchestrator/status`, `GET /health/status` and `GET /version`.
struct OrchestratorController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("orchestrator/status") { _, _ in try await orchestratorStatus() }
        open.get("health/status") { _, _ in healthStatus() }
        open.get("version") { _, _ in
            Response.json(["version": plane.version, "name": "acerelay", "api": "acestream-orchestrator-compatible"])
        }
    }

    func healthStatus() -> Response {
        let engines = plane.fleet.engines
        func count(_ health: EngineHealth) -> Int { engines.filter { $0.health.status == health }.count }
        struct EngineHealthJSON: Encodable {
            var container_id: String
            var health_status: String
            var last_health_check: Date?
            var consecutive_failures: Int
        }
        struct Body: Encodable {
            var total: Int, healthy: Int, unhealthy: Int, unknown: Int
            var engines: [EngineHealthJSON]
        }
        return .json(Body(total: engines.count, healthy: count(.healthy), unhealthy: count(.unhealthy), unknown: count(.unknown),
                          engines: engines.map { EngineHealthJSON(container_id: $0.id, health_status: $0.health.status.rawValue,
                                                                   last_health_check: $0.health.lastCheck,
                                                                   consecutive_failures: $0.health.consecutiveFailures) }))
    }

    func orchestratorStatus() async throws -> Response {
        let engines = plane.fleet.engines
        // A store that cannot be read (locked by another process) must not take the status
        // down with it: the relay's own hubs are the active streams it knows from memory.
        let liveHubs = plane.relay?.totals().hubs ?? 0
        let active = (try? await plane.store.streamCount(status: .started)) ?? liveHubs
        let total = (try? await plane.store.streamCount()) ?? active
        let store = plane.store.health
        let healthy = engines.filter { $0.health.status == .healthy }.count
        let unhealthy = engines.filter { $0.health.status == .unhealthy }.count
        let perEngine = plane.provisioner?.configuration.maxStreamsPerEngine ?? 0
        let capacity = perEngine > 0 ? engines.filter { $0.health.status != .unhealthy }.count * perEngine : 0
        let used = engines.reduce(0) { $0 + $1.load }
        let provisioning = plane.provisioner?.status()
        let blocked = provisioning?.blocked ?? (plane.provisioner == nil
            ? ProvisioningError(code: "general_error", message: "no Docker daemon configured: engines are static", recoveryETASeconds: 0, canRetry: false, shouldWait: false)
            : nil)
        let dockerHosts = plane.provisioner?.dockerHosts() ?? []
        let vpn = plane.vpn?.status
        var state = engines.isEmpty ? "unavailable" : (healthy == engines.count ? "healthy" : (healthy > 0 ? "degraded" : "unavailable"))
        if state == "healthy", !store.writable { state = "degraded" }
        // Engines behind a dead tunnel reach no peer, however their probes answer.
        if state == "healthy", let vpn, !vpn.isUp { state = "degraded" }
        // A Docker host that does not answer degrades the service even while every
        // engine is healthy; provisioning stops only when no host answers.
        if state == "healthy", dockerHosts.contains(where: { !$0.reachable }) { state = "degraded" }
        let body: [String: Any] = [
            "status": state,
            "engines": ["total": engines.count, "running": engines.count, "healthy": healthy, "unhealthy": unhealthy],
            "streams": ["active": active, "total": total],
            "capacity": ["total": capacity, "used": used, "available": max(capacity - used, 0),
                         "max_replicas": plane.provisioner?.configuration.maxReplicas ?? engines.count,
                         "min_replicas": plane.provisioner?.configuration.minReplicas ?? 0],
            "vpn": ["enabled": vpn != nil, "connected": vpn?.isUp ?? false, "health": vpn?.health ?? "unknown",
                    "container": vpn.map { $0.containerName as Any } ?? NSNull(),
                    "forwarded_port": vpn?.forwardedPort.map { $0 as Any } ?? NSNull()],
            "provisioning": [
                "can_provision": provisioning?.canProvision ?? false,
                "circuit_breaker": provisioning?.breaker.rawValue ?? "closed",
                "blocked_reason": blocked?.message ?? NSNull(),
                "blocked_reason_details": blocked.map { APIError.structured($0) } ?? NSNull(),
            ],
            "dispatcharr": dispatcharrStatus(),
            "store": storeStatus(store),
            "docker_hosts": dockerHosts.map { host -> [String: Any] in
                ["host": host.name, "reachable": host.reachable, "engines": host.engines,
                 "last_error": host.lastError ?? NSNull(),
                 "last_checked": host.lastChecked.map { ISO8601DateFormatter().string(from: $0) } ?? NSNull()]
            },
            "timestamp": ISO8601DateFormatter().string(from: Date()),
        ]
        return .rawJSON(body)
    }

    /// The store's health: `degraded` while writes fail (players keep streaming; what
    /// happens meanwhile is not recorded), with failures by operation.
    private func storeStatus(_ health: StoreHealthSnapshot) -> [String: Any] {
        func time(_ date: Date?) -> Any { date.map { ISO8601DateFormatter().string(from: $0) } ?? NSNull() }
        return [
            "status": health.writable ? "ok" : "degraded",
            "writable": health.writable,
            "errors_total": health.errors.values.reduce(0, +),
            "errors": health.errors,
            "retries": health.retries,
            "last_error": health.lastError ?? NSNull(),
            "last_error_at": time(health.lastErrorAt),
            "failing_since": time(health.failingSince),
            "moved_aside": health.movedAside ?? NSNull(),
        ]
    }

    /// The Dispatcharr sync's state as plain JSON values (ISO 8601 times, like every other timestamp here).
    private func dispatcharrStatus() -> [String: Any] {
        let status = plane.dispatcharr?.status ?? .notConfigured
        return [
            "configured": status.configured, "reachable": status.reachable, "reorder": status.reorder,
            "last_sync_at": status.lastSyncAt.map { ISO8601DateFormatter().string(from: $0) } ?? NSNull(),
            "last_error": status.lastError ?? NSNull(),
            "managed_channels": status.managedChannels, "pending_writes": status.pendingWrites,
            "writes_done": status.writesDone, "writes_failed": status.writesFailed,
        ]
    }
}
