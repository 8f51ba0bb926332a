import EngineFleet
import Dispatcharr
import Foundation
import VPN
import Prometheus
import RelayCore
import Store
import Streams
import Locking

/// Prometheus metrics, `acerelay_<subsystem>_<name>_<unit>`, rendered at scrape
/// time from snapshots (the relay's per-worker totals, the fleet, the store), so
/// nothing on the relay's path touches a metric except the time-to-first-byte
/// histogram, once per player. Labels come only from bounded sets (health
/// states, results), never from an address, a URL or a content id.
public final class MetricsExporter: RelayObserver {
    private let registry: PrometheusCollectorRegistry
    private let firstByte: ValueHistogram
    private let scrape = Locked<[String: UInt64]>([:])

    // Relay.
    private let players: Gauge
    private let hubs: Gauge
    private let hlsPlayers: Gauge
    private let historyBytes: Gauge
    private let historyBudget: Gauge
    private let relayCounters: [(key: String, counter: Counter, read: @Sendable (RelayTotals) -> UInt64)]
    // Fleet.
    private let engines: [EngineHealth: Gauge]
    private let provisioned: Counter
    private let provisioningFailed: Counter
    private let breakerOpen: Gauge
    private let waiting: Gauge
    private let probeFailures: Counter
    // Streams.
    private let activeStreams: Gauge
    private let peers: Gauge
    private let downloadSpeed: Gauge
    private let uploadSpeed: Gauge
    private let loopDetections: Counter
    private let statPollFailures: Counter
    // Channels.
    private let channelMetrics: ChannelMetrics
    private let dispatcharrRequests: [DispatcharrRequestResult: Counter]
    // VPN.
    private let vpnUp: Gauge
    private let vpnForwardedPort: Gauge
    /// What the Dispatcharr counters were last advanced to.
    private let dispatcharrSeen = Locked<[DispatcharrRequestResult: Int]>([:])
    /// `acerelay_store_errors_total{operation}`, one per store operation that failed so far.
    private let storeErrors = Locked<[String: Counter]>([:])
    private let storeRetries: Counter
    private let storeWritable: Gauge
    // Memory: what is live, beside the RSS a scraper already gets.
    private let heapInUse: Gauge
    private let sqliteMemory: Gauge

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        firstByte = registry.makeValueHistogram(
            name: "acerelay_relay_time_to_first_byte_seconds",
            buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
            help: "Time from a player's connection to the first stream byte sent to it.")
        players = registry.makeGauge(name: "acerelay_relay_players", help: "Players connected now.")
        hubs = registry.makeGauge(name: "acerelay_relay_hubs", help: "Contents with an open engine session (hubs) now.")
        hlsPlayers = registry.makeGauge(name: "acerelay_relay_hls_players", help: "HLS players now (fetching within three target durations); not in acerelay_relay_players.")
        historyBytes = registry.makeGauge(name: "acerelay_history_bytes",
                                          help: "Memfd bytes all stream histories hold now (shared memory: Shmem in /proc/meminfo, not RSS).")
        historyBudget = registry.makeGauge(name: "acerelay_history_budget_bytes", help: "The budget for all stream histories (--history-budget); 0 for none.")
        func counter(_ name: String, _ help: String, _ read: @escaping @Sendable (RelayTotals) -> UInt64) -> (String, Counter, @Sendable (RelayTotals) -> UInt64) {
            (name, registry.makeCounter(name: name, help: help), read)
        }
        relayCounters = [
            counter("acerelay_relay_received_bytes_total", "Stream bytes read from engines.") { $0.bytesIn },
            counter("acerelay_relay_sent_bytes_total", "Stream bytes sent to players.") { $0.bytesOut },
            counter("acerelay_relay_skips_total", "Times a lagging player skipped forward to a join point.") { $0.skips },
            counter("acerelay_relay_drops_total", "Players dropped for lagging again and again.") { $0.drops },
            counter("acerelay_relay_continuity_errors_total", "Continuity counter jumps in streams from engines (lost packets).") { $0.continuityErrors },
            counter("acerelay_relay_upstream_reconnects_total", "Times a hub reconnected to its engine.") { $0.reconnects },
            counter("acerelay_relay_upstream_stalls_total", "Times an engine went quiet for a second or more.") { $0.stalls },
            counter("acerelay_relay_players_served_total", "Players that asked for a stream.") { $0.playersServed },
            counter("acerelay_relay_hls_playlist_requests_total", "HLS playlists asked for.") { $0.hlsPlaylistRequests },
            counter("acerelay_relay_hls_segment_requests_total", "HLS segments asked for (served or 404).") { $0.hlsSegmentRequests },
            counter("acerelay_relay_accept_failures_total", "Accepts that failed (out of file descriptors, as a rule).") { $0.acceptFailures },
            counter("acerelay_relay_players_refused_total", "Connections answered 503 because --max-players were connected.") { $0.playersRefused },
        ].map { (key: $0.0, counter: $0.1, read: $0.2) }
        storeRetries = registry.makeCounter(name: "acerelay_store_retries_total",
                                            help: "Store writes retried after an error that may pass (locked, full, read-only).")
        storeWritable = registry.makeGauge(name: "acerelay_store_writable", help: "0 while the store's writes fail, else 1.")
        heapInUse = registry.makeGauge(name: "acerelay_process_heap_in_use_bytes",
                                       help: "Bytes malloc has handed out and not had back (glibc mallinfo2); RSS beyond it is freed memory malloc keeps, stacks and code.")
        sqliteMemory = registry.makeGauge(name: "acerelay_store_sqlite_memory_bytes",
                                          help: "Bytes SQLite holds over every connection (page caches, statements): sqlite3_memory_used.")
        var engines: [EngineHealth: Gauge] = [:]
        for health in [EngineHealth.healthy, .unhealthy, .unknown] {
            engines[health] = registry.makeGauge(name: "acerelay_fleet_engines", labels: [("health", health.rawValue)],
                                                 help: "Engines by health.")
        }
        self.engines = engines
        provisioned = registry.makeCounter(name: "acerelay_fleet_provisioning_total", labels: [("result", "success")],
                                           help: "Engine containers started, and attempts that failed.")
        provisioningFailed = registry.makeCounter(name: "acerelay_fleet_provisioning_total", labels: [("result", "failure")],
                                                  help: "Engine containers started, and attempts that failed.")
        breakerOpen = registry.makeGauge(name: "acerelay_fleet_circuit_breaker_open", help: "1 while provisioning is paused by the circuit breaker.")
        waiting = registry.makeGauge(name: "acerelay_fleet_waiting_requests", help: "Streams waiting for an engine.")
        // Over all engines and all streams: an engine's name is a URL for static engines, and
        // streams come and go; the log names which one is failing.
        probeFailures = registry.makeCounter(name: "acerelay_fleet_engine_probe_failures_total",
                                             help: "Engine status probes (get_status) that failed or timed out, over all engines.")
        activeStreams = registry.makeGauge(name: "acerelay_streams_active", help: "Engine sessions started and not ended.")
        peers = registry.makeGauge(name: "acerelay_streams_peers", help: "Peers over all active streams, from the engines' stats.")
        downloadSpeed = registry.makeGauge(name: "acerelay_streams_download_bytes_per_second", help: "Engines' download speed over all active streams.")
        uploadSpeed = registry.makeGauge(name: "acerelay_streams_upload_bytes_per_second", help: "Engines' upload speed over all active streams.")
        loopDetections = registry.makeCounter(name: "acerelay_streams_loop_detections_total", help: "Looping broadcasts found and stopped.")
        statPollFailures = registry.makeCounter(name: "acerelay_streams_stat_poll_failures_total",
                                                help: "Stat polls of streams (stat_url) that failed or timed out, over all streams.")
        channelMetrics = ChannelMetrics(registry: registry)
        var dispatcharrRequests: [DispatcharrRequestResult: Counter] = [:]
        for result in DispatcharrRequestResult.allCases {
            dispatcharrRequests[result] = registry.makeCounter(name: "acerelay_dispatcharr_requests_total", labels: [("result", result.rawValue)],
                                                               help: "Requests to Dispatcharr's API, by result.")
        }
        self.dispatcharrRequests = dispatcharrRequests
        vpnUp = registry.makeGauge(name: "acerelay_vpn_up", help: "1 while the Gluetun tunnel is up (0 while down or without a VPN).")
        vpnForwardedPort = registry.makeGauge(name: "acerelay_vpn_forwarded_port", help: "The P2P port Gluetun forwards, 0 for none.")
    }

    /// Hears the relay's events: records each player's time to first byte.
    public func observe(_ event: RelayEvent) {
        if case .firstByte(_, let seconds) = event { firstByte.record(seconds) }
    }

    /// The exposition text, after bringing every metric up to date.
    public func render(plane: ControlPlane) async -> [UInt8] {
        let started = (try? await plane.store.streams(status: .started)) ?? []
        let latest = (try? await plane.store.latestSamples(streamIDs: started.map(\.id), as: StatSample.self)) ?? [:]
        let fleetEngines = plane.fleet.engines
        if let channels = plane.channels { channelMetrics.update(gauges: await channels.gauges(), counts: channels.counts) }
        if let relay = plane.relay { channelMetrics.update(playback: relay.channelPlayback()) }
        if let dispatcharr = plane.dispatcharr {
            let snapshot = dispatcharr.client.counts.snapshot()
            dispatcharrSeen.withLock { seen in
                for (result, count) in snapshot where count > seen[result, default: 0] {
                    dispatcharrRequests[result]?.increment(by: Int64(count - seen[result, default: 0]))
                    seen[result] = count
                }
            }
        }
        scrape.withLock { last in
            if let relay = plane.relay {
                let totals = relay.totals()
                players.set(Double(totals.players))
                hubs.set(Double(totals.hubs))
                hlsPlayers.set(Double(totals.hlsPlayers))
                historyBytes.set(Double(totals.historyBytes))
                historyBudget.set(Double(totals.historyBudgetBytes))
                for entry in relayCounters { advance(entry.counter, key: entry.key, to: entry.read(totals), last: &last) }
            }
            for (health, gauge) in engines {
                gauge.set(Double(fleetEngines.filter { $0.health.status == health }.count))
            }
            if let provisioner = plane.provisioner {
                let counts = provisioner.provisioningCounts
                advance(provisioned, key: "provisioned", to: counts.succeeded, last: &last)
                advance(provisioningFailed, key: "provisioning_failed", to: counts.failed, last: &last)
                breakerOpen.set(provisioner.status().breaker == .open ? 1.0 : 0.0)
                // Hosts come from DOCKER_HOSTS: a bounded set of labels, made (once) at the first scrape.
                for host in provisioner.dockerHosts() {
                    registry.makeGauge(name: "acerelay_docker_host_up", labels: [("host", host.name)],
                                       help: "1 while the Docker host answers, 0 while it does not.").set(host.reachable ? 1.0 : 0.0)
                    let errors = registry.makeCounter(name: "acerelay_docker_errors_total", labels: [("host", host.name)],
                                                      help: "Docker API calls that failed, by host.")
                    advance(errors, key: "docker_errors \(host.name)", to: host.errors, last: &last)
                }
            }
            waiting.set(Double(plane.fleet.waiting))
            if let health = plane.health { advance(probeFailures, key: "probe_failures", to: health.probeFailures, last: &last) }
            if let stats = plane.stats { advance(statPollFailures, key: "stat_poll_failures", to: stats.pollFailures, last: &last) }
            activeStreams.set(Double(started.count))
            peers.set(Double(latest.values.reduce(0) { $0 + ($1.peers ?? 0) }))
            downloadSpeed.set(Double(latest.values.reduce(0) { $0 + ($1.speedDown ?? 0) }) * 1024)
            uploadSpeed.set(Double(latest.values.reduce(0) { $0 + ($1.speedUp ?? 0) }) * 1024)
            if let loops = plane.loops { advance(loopDetections, key: "loops", to: loops.detections, last: &last) }
            let vpn = plane.vpn?.status
            vpnUp.set(vpn?.isUp == true ? 1.0 : 0.0)
            vpnForwardedPort.set(Double(vpn?.forwardedPort ?? 0))
            let store = plane.store.health
            storeWritable.set(store.writable ? 1.0 : 0.0)
            heapInUse.set(ProcessUsage.heapInUseBytes())
            sqliteMemory.set(Double(Store.sqliteMemoryBytes))
            advance(storeRetries, key: "store_retries", to: store.retries, last: &last)
            for (operation, count) in store.errors {
                let counter = storeErrors.withLock { counters in
                    if let known = counters[operation] { return known }
                    let made = registry.makeCounter(name: "acerelay_store_errors_total", labels: [("operation", operation)],
                                                    help: "Store operations that failed after their retries, by operation.")
                    counters[operation] = made
                    return made
                }
                advance(counter, key: "store_errors.\(operation)", to: count, last: &last)
            }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    /// Prometheus counters only go up: add what the source's total grew by since the last scrape.
    private func advance(_ counter: Counter, key: String, to total: UInt64, last: inout [String: UInt64]) {
        let previous = last[key] ?? 0
        if total > previous { counter.increment(by: Int64(total - previous)) }
        last[key] = max(total, previous)
    }
}
