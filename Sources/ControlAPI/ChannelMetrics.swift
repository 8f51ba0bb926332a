import Channels
import Prometheus
import RelayCore
import Locking

/// The channel metrics, brought up to date at scrape time from the channel
/// service: `acerelay_channel_best_score{channel}`,
/// `acerelay_channel_sources{channel,state}`,
/// `acerelay_channel_measurements_total{result}`, `acerelay_channel_reorders_total`;
/// and from the relay, `acerelay_channel_switches_total{channel,reason}`.
///
/// Channel ids are labels because they are bounded by configuration (an
/// operator creates channels); a deleted channel's series are removed.
/// Results are `ok` and the `SourceFailure` reasons, a fixed set.
final class ChannelMetrics: Sendable {
    private struct PerChannel {
        let best: Gauge
        let ok: Gauge
        let failed: Gauge
    }

    private struct State {
        var channels: [String: PerChannel] = [:]
        var lastCounts = ChannelCounts()
        /// Switch counters by channel and reason, with the relay's total they were last advanced to.
        var switches: [String: (counter: Counter, seen: UInt64)] = [:]
    }

    private let registry: PrometheusCollectorRegistry
    private let measurements: [String: Counter]
    private let reorders: Counter
    private let state = Locked(State())

    static let bestScoreName = "acerelay_channel_best_score"
    static let sourcesName = "acerelay_channel_sources"

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        var measurements: [String: Counter] = [:]
        for result in ["ok"] + SourceFailure.allCases.map(\.rawValue) {
            measurements[result] = registry.makeCounter(name: "acerelay_channel_measurements_total", labels: [("result", result)],
                                                        help: "Source measurements recorded, by result (ok or the failure reason).")
        }
        self.measurements = measurements
        reorders = registry.makeCounter(name: "acerelay_channel_reorders_total", help: "Times a channel's source order changed.")
    }

    /// Sets every channel's gauges and advances the counters to the service's totals.
    func update(gauges: [ChannelGauge], counts: ChannelCounts) {
        state.withLock { state in
            let present = Set(gauges.map(\.channelID))
            for (id, series) in state.channels where !present.contains(id) {
                registry.unregisterGauge(series.best)
                registry.unregisterGauge(series.ok)
                registry.unregisterGauge(series.failed)
                state.channels[id] = nil
            }
            for figure in gauges {
                let series = state.channels[figure.channelID] ?? makeSeries(figure.channelID)
                state.channels[figure.channelID] = series
                series.best.set(Double(figure.bestScore))
                series.ok.set(Double(figure.ok))
                series.failed.set(Double(figure.failed))
            }
            for (result, counter) in measurements {
                let total = counts.measurements[result] ?? 0
                let previous = state.lastCounts.measurements[result] ?? 0
                if total > previous { counter.increment(by: Int64(total - previous)) }
            }
            if counts.reorders > state.lastCounts.reorders { reorders.increment(by: Int64(counts.reorders - state.lastCounts.reorders)) }
            state.lastCounts = counts
        }
    }

    /// Advances `acerelay_channel_switches_total{channel,reason}` to the relay's per-channel counts.
    func update(playback: [ChannelPlaybackSnapshot]) {
        state.withLock { state in
            for channel in playback {
                for (reason, total) in channel.switchesByReason {
                    let key = channel.channelID + "\u{0}" + reason
                    let series = state.switches[key] ?? (registry.makeCounter(
                        name: "acerelay_channel_switches_total", labels: [("channel", channel.channelID), ("reason", reason)],
                        help: "Channel players moved to another source, by channel and why they left the previous one."), 0)
                    if total > series.seen { series.counter.increment(by: Int64(total - series.seen)) }
                    state.switches[key] = (series.counter, max(total, series.seen))
                }
            }
        }
    }

    private func makeSeries(_ channel: String) -> PerChannel {
        PerChannel(
            best: registry.makeGauge(name: Self.bestScoreName, labels: [("channel", channel)],
                                     help: "The best score (0-100) among the channel's working sources."),
            ok: registry.makeGauge(name: Self.sourcesName, labels: [("channel", channel), ("state", "ok")],
                                   help: "The channel's sources by the state of their latest measurement."),
            failed: registry.makeGauge(name: Self.sourcesName, labels: [("channel", channel), ("state", "failed")],
                                       help: "The channel's sources by the state of their latest measurement."))
    }
}
