import RelayCore
import Store

extension FleetEngine {
    /// The engine as the store keeps it: the one builder, so every writer
    /// (provisioning, health) stores the same health and usage fields.
    public var record: EngineRecord {
        EngineRecord(containerID: id, containerName: name, host: host, port: port, apiPort: apiPort, labels: labels,
                     forwarded: forwarded, managed: managed, firstSeen: firstSeen, lastSeen: lastSeen,
                     healthStatus: health.status.rawValue, lastHealthCheck: health.lastCheck,
                     lastStreamUsage: lastStreamUsage, version: version, platform: platform)
    }
}
