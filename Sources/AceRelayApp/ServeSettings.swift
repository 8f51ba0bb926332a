import Dispatcharr
import DockerEngine
import Channels
import EngineFleet
import Foundation
import RelayCore
import Streams
import VPN

/// Every setting `serve` needs, resolved and validated before anything starts,
/// so a bad value stops start-up with one line.
struct ServeSettings {
    var level: LogLevelSetting
    var relay: RelayConfiguration
    var engineURLs: [String]
    var apiAddress: (host: String, port: UInt16)
    var dataDirectory: String
    var provisioning: Bool
    /// `DOCKER_HOSTS`: the hosts engines are spread over; nil for `DOCKER_HOST`'s one host.
    var dockerHosts: [DockerHost]?
    var fleet: FleetConfiguration
    /// `--max-streams-per-static-engine`: the cap on each `--engine`, 0 for none.
    /// `fleet.maxStreamsPerEngine` is for provisioned engines only.
    var staticEngineMaxStreams: Int
    var apiKey: String?
    /// `COLLECT_INTERVAL_S`: seconds between stat polls of each stream.
    var collectInterval: Double
    /// How long stat samples are kept.
    var statsRetention: Double
    /// Loop detection as the environment sets it; API changes stored later win.
    var loopDetection: LoopDetectionConfig
    /// `CHANNEL_REORDER_MARGIN`: points a source must beat a channel's first by to take its place.
    var channelReorderMargin: Int
    /// `ACERELAY_PUBLIC_URL`: the origin `/channels.m3u` points players at; nil uses the request's host.
    var publicURL: String?
    /// `DISPATCHARR_BASE_URL` and its credentials; nil when Dispatcharr is not used.
    var dispatcharr: DispatcharrConfiguration?
    /// `M3U_TIMEOUT`: seconds allowed for fetching a playlist.
    var m3uTimeout: Double
    /// `--drain-seconds`: how long SIGTERM lets connected players keep streaming, 0 for none.
    var drainSeconds: Double
    /// `SSE_UPDATE_INTERVAL_S`: seconds between the panel's live snapshots.
    var sseUpdateInterval: Double
    /// `ACERELAY_API_MAX_REQUESTS`: control API requests in progress at most; more get 503.
    var apiMaxRequests: Int
    /// `CHANNEL_PROBE_SECONDS`, `CHANNEL_PROBE_INTERVAL_S`, `CHANNEL_PROBE_CONCURRENCY`: how channel sources are probed.
    var probe: ProbeSettings
    /// `ALLOW_FOREIGN_ENGINE_URLS`: call `stat_url`/`command_url` that other proxies report
    /// even when their host is not an engine of the fleet (default false: stored, never called).
    var allowForeignEngineURLs: Bool
    /// `GLUETUN_*` and `VPN_RESTART_ENGINES_ON_RECONNECT`; nil without `GLUETUN_CONTAINER_NAME`.
    var vpn: VPNSettings?

    init(relay options: RelayOptions, control: ControlOptions, engines: [String], environment: [String: String]) throws(SettingError) {
        level = try options.level(environment: environment)
        relay = try options.relayConfiguration(environment: environment)
        drainSeconds = try options.drainSeconds(environment: environment)
        engineURLs = try SettingReader(environment: environment).engineURLs(engines, option: "--engine", env: "ACERELAY_ENGINES")
        apiAddress = try control.apiAddress(environment: environment, relay: relay)
        dataDirectory = control.dataDirectory(environment: environment)
        provisioning = try control.provisioningEnabled(environment: environment)
        dockerHosts = try control.dockerHosts(environment: environment)
        fleet = try control.fleetConfiguration(environment: environment, relay: options)
        // Static engines are the user's own: no per-engine limit unless asked for with their own option.
        staticEngineMaxStreams = try options.staticEngineMaxStreams(environment: environment)
        apiKey = environment["API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        relay.statusKey = APIKey(apiKey)
        let read = SettingReader(environment: environment)
        vpn = try read.vpnSettings()
        // Engines behind the VPN share its network stack, unless DOCKER_NETWORK says otherwise.
        if let vpn, (environment["DOCKER_NETWORK"] ?? "").isEmpty { fleet.networkMode = "container:\(vpn.containerName)" }
        collectInterval = try read.double(nil, option: "COLLECT_INTERVAL_S", env: "COLLECT_INTERVAL_S", default: 1, range: 0.2...3_600)
        sseUpdateInterval = try read.double(nil, option: "SSE_UPDATE_INTERVAL_S", env: "SSE_UPDATE_INTERVAL_S", default: 1, range: 0.1...60)
        let enabled = (environment["STREAM_LOOP_DETECTION_ENABLED"] ?? "false").lowercased()
        guard ["true", "false", "1", "0", "yes", "no"].contains(enabled) else {
            throw SettingError(option: "STREAM_LOOP_DETECTION_ENABLED", environment: nil, value: enabled, expected: "true or false")
        }
        loopDetection = LoopDetectionConfig(
            enabled: ["true", "1", "yes"].contains(enabled),
            thresholdSeconds: try read.int(nil, option: "STREAM_LOOP_DETECTION_THRESHOLD_S", env: "STREAM_LOOP_DETECTION_THRESHOLD_S", default: 3_600, range: 1...31_536_000),
            checkIntervalSeconds: try read.int(nil, option: "STREAM_LOOP_CHECK_INTERVAL_S", env: "STREAM_LOOP_CHECK_INTERVAL_S", default: 10, range: 1...86_400),
            retentionMinutes: try read.int(nil, option: "STREAM_LOOP_RETENTION_MINUTES", env: "STREAM_LOOP_RETENTION_MINUTES", default: 0, range: 0...5_256_000))
        relay.hlsWindow = try read.int(nil, option: "HLS_WINDOW", env: "HLS_WINDOW", default: 6, range: 3...100)
        relay.hlsSegmentSeconds = try read.double(nil, option: "HLS_SEGMENT_S", env: "HLS_SEGMENT_S", default: 2, range: 1...30)
        channelReorderMargin = try read.int(nil, option: "CHANNEL_REORDER_MARGIN", env: "CHANNEL_REORDER_MARGIN", default: 10, range: 0...100)
        relay.channelFailoverAfter = try read.double(nil, option: "CHANNEL_FAILOVER_AFTER_S", env: "CHANNEL_FAILOVER_AFTER_S", default: 4, range: 0.5...600)
        relay.channelMaxSwitchesPerMinute = try read.int(nil, option: "CHANNEL_MAX_SWITCHES_PER_MIN", env: "CHANNEL_MAX_SWITCHES_PER_MIN",
                                                         default: 6, range: 1...600)
        relay.channelWarmStandby = try read.bool(env: "CHANNEL_WARM_STANDBY", default: true)
        switch DispatcharrConfiguration.fromEnvironment(environment) {
        case .success(let configuration): dispatcharr = configuration
        case .failure(let error):
            throw SettingError(option: "the Dispatcharr settings", environment: nil, value: "DISPATCHARR_*",
                               expected: error.problems.joined(separator: "; "))
        }
        apiMaxRequests = try read.int(nil, option: "ACERELAY_API_MAX_REQUESTS", env: "ACERELAY_API_MAX_REQUESTS", default: 64, range: 1...100_000)
        m3uTimeout = try read.double(nil, option: "M3U_TIMEOUT", env: "M3U_TIMEOUT", default: 15, range: 1...600)
        publicURL = try read.publicURL(env: "ACERELAY_PUBLIC_URL")
        allowForeignEngineURLs = try read.bool(env: "ALLOW_FOREIGN_ENGINE_URLS", default: false)
        statsRetention = 60 * (try read.double(nil, option: "ACERELAY_STATS_RETENTION_MIN", env: "ACERELAY_STATS_RETENTION_MIN", default: 60, range: 1...100_000))
        probe = ProbeSettings(
            probeSeconds: try read.double(nil, option: "CHANNEL_PROBE_SECONDS", env: "CHANNEL_PROBE_SECONDS", default: 20, range: 1...600),
            interval: try read.double(nil, option: "CHANNEL_PROBE_INTERVAL_S", env: "CHANNEL_PROBE_INTERVAL_S", default: 300, range: 10...86_400),
            concurrency: try read.int(nil, option: "CHANNEL_PROBE_CONCURRENCY", env: "CHANNEL_PROBE_CONCURRENCY", default: 2, range: 1...64),
            startTimeout: relay.startTimeout)
    }
}
