import Foundation
import RelayCore

/// One engine in the fleet registry, managed (a container) or static (a URL).
public struct FleetEngine: Sendable, Equatable {
    public var endpoint: EngineEndpoint
    public var name: String
    public var host: String
    public var port: Int
    public var apiPort: Int?
    public var labels: [String: String]
    public var managed: Bool
    public var forwarded: Bool
    /// Being replaced (make-before-break): it gets no new streams and goes once its last one ends.
    public var draining = false
    /// The Docker host a managed engine's container runs on (its `DOCKER_HOST`
    /// spelling, as in the `acerelay.docker_host` label); nil for a static engine.
    public var dockerHost: String?
    /// Contents this engine may serve at once, 0 for no limit; nil takes the
    /// fleet's `maxStreamsPerEngine` (the managed engines' limit).
    public var maxStreams: Int?
    public var health: HealthTracker
    /// Contents reserved or streaming on this engine.
    public var contents: Set<ContentKey> = []
    /// The subset of `contents` that is streaming (the rest are reservations).
    public var streaming: Set<ContentKey> = []
    public var firstSeen: Date
    public var lastSeen: Date
    public var lastStreamUsage: Date?
    /// When it last became free, for idle removal and longest-idle-first selection.
    public var idleSince: Date?
    public var version: String?
    public var platform: String?

    public init(endpoint: EngineEndpoint, name: String, host: String, port: Int, apiPort: Int? = nil,
                labels: [String: String] = [:], managed: Bool, forwarded: Bool = false, dockerHost: String? = nil,
                maxStreams: Int? = nil, failureThreshold: Int, now: Date) {
        self.endpoint = endpoint
        self.name = name
        self.host = host
        self.port = port
        self.apiPort = apiPort
        self.labels = labels
        self.managed = managed
        self.forwarded = forwarded
        self.dockerHost = dockerHost
        self.maxStreams = maxStreams
        health = HealthTracker(failureThreshold: failureThreshold)
        firstSeen = now
        lastSeen = now
        idleSince = now
    }

    public var id: String { endpoint.id }
    /// The P2P port it was started with (`--port`), from its label; nil for the engine's default.
    public var p2pPort: Int? { labels[ContainerTemplate.p2pPortLabel].flatMap(Int.init) }
    public var load: Int { contents.count }

    /// Whether it can take one more content, under its own limit or else `fleetLimit` (0: none).
    func hasRoom(fleetLimit: Int) -> Bool {
        if draining { return false }
        let limit = maxStreams ?? fleetLimit
        return limit <= 0 || load < limit
    }

    /// Contents it can still take under its own limit or `fleetLimit`; a large number for no limit.
    func freeSlots(fleetLimit: Int) -> Int {
        if draining { return 0 }
        let limit = maxStreams ?? fleetLimit
        return limit <= 0 ? 1 << 20 : max(limit - load, 0)
    }
}
