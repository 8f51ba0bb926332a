import Channels
import Dispatcharr
import EngineFleet
import Streams
import Foundation
import RelayCore
import Store
import VPN

/// What the control API reads and drives. Plain values and the control-plane
/// objects the app composed; any of the optional parts may be absent (no
/// Docker: no provisioning).
public struct ControlPlane: Sendable {
    public var fleet: EngineFleet
    public var provisioner: EngineProvisioner?
    public var store: Store
    public var relay: RelayServer?
    /// Loop detection; nil when the app runs without it.
    public var loops: LoopDetector?
    /// Prometheus metrics; nil serves no `/metrics`.
    public var metrics: MetricsExporter?
    /// `API_KEY`; nil or empty turns authentication off.
    public var apiKey: String?
    public var version: String
    /// Stream port players use, for the `/ace/getstream` redirect.
    public var streamPort: @Sendable () -> UInt16
    /// Channels and their scored sources; nil serves no `/channels` routes.
    public var channels: ChannelService?
    /// `ACERELAY_PUBLIC_URL` and `M3U_TIMEOUT`, for the playlist routes.
    public var playlists: PlaylistSettings
    /// The Dispatcharr sync, when `DISPATCHARR_BASE_URL` is set: its status in
    /// `/orchestrator/status`, its request counts in `/metrics`.
    public var dispatcharr: DispatcharrSync?
    /// The panel's live updates (`GET /events/live`); nil serves none.
    public var live: LiveUpdates?
    /// The Gluetun monitor, when `GLUETUN_CONTAINER_NAME` is set: `/vpn/*`, the status's `vpn`, metrics, the panel.
    public var vpn: VPNMonitor?
    /// Which reported `stat_url`/`command_url` may be called (the fleet's engines only, by default).
    public var engineURLs: EngineURLPolicy
    /// The engines' status probes; their failures in `/metrics`. Nil counts none.
    public var health: HealthMonitor?
    /// The streams' stat polls; their failures in `/metrics`. Nil counts none.
    public var stats: StatsCollector?
    /// Control API requests in progress at most (`ACERELAY_API_MAX_REQUESTS`); more get 503.
    public var maxConcurrentRequests = 64
    /// The count `maxConcurrentRequests` bounds, shared by every router built from this plane.
    let requestsInFlight = InFlightRequests()

    public init(fleet: EngineFleet, provisioner: EngineProvisioner?, store: Store, relay: RelayServer?, loops: LoopDetector? = nil,
                metrics: MetricsExporter? = nil, apiKey: String?, version: String, streamPort: @escaping @Sendable () -> UInt16,
                channels: ChannelService? = nil, playlists: PlaylistSettings = PlaylistSettings(),
                dispatcharr: DispatcharrSync? = nil, live: LiveUpdates? = nil, engineURLs: EngineURLPolicy? = nil,
                vpn: VPNMonitor? = nil, health: HealthMonitor? = nil, stats: StatsCollector? = nil) {
        self.health = health
        self.stats = stats
        self.live = live
        self.vpn = vpn
        self.engineURLs = engineURLs ?? EngineURLPolicy(fleet: fleet)
        self.channels = channels
        self.dispatcharr = dispatcharr
        self.playlists = playlists
        self.fleet = fleet
        self.loops = loops
        self.metrics = metrics
        self.provisioner = provisioner
        self.store = store
        self.relay = relay
        self.apiKey = apiKey
        self.version = version
        self.streamPort = streamPort
    }
}
