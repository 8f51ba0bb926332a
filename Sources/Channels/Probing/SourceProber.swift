import Foundation
import Logging
import RelayCore
import Streams
import Locking

/// Measures channel sources nobody watches by opening each through the relay
/// as a probe (`RelayServer.openProbe`), and sources players watch from their
/// hub's measurements (`WatchedSourceMeasurer`), recording every measurement
/// through the `SourceMeasurementSink`.
///
/// Every `roundInterval` it asks the catalog for sources. One is probed when
/// its last measurement is older than `interval` and nobody watches it; new
/// sources wait a random delay up to `startSpread` and re-probes up to a tenth
/// of `interval`, so probes spread over time; at most `concurrency` run at once.
/// A probe holds the source `probeSeconds` (longer, up to the start timeout,
/// while no byte came), then releases it. A probe the relay declined or cut
/// short for a player (no spare engine, preempted, relay stopping) records
/// nothing and is tried again next round.
public final class SourceProber: Sendable {
    private struct Schedule {
        /// Contents probed now.
        var inFlight: Set<String> = []
        /// Earliest time each content may be probed next (spread, or a declined probe's back-off).
        var notBefore: [String: Date] = [:]
        /// The most probes that ran at once, for tests and status.
        var peakConcurrency = 0
    }

    private let relay: RelayServer
    private let catalog: any SourceCatalog
    private let sink: any SourceMeasurementSink
    private let stats: StatsCollector?
    private let loops: LoopDetector?
    private let observations: HubObservations
    private let watchedMeasurer: WatchedSourceMeasurer
    private let settings: ProbeSettings
    private let logger: Logger
    private let schedule = Locked(Schedule())
    private let subscription: RelayEventSubscription

    /// Subscribes to the relay's events at once; call `run()` to start measuring.
    public init(relay: RelayServer, catalog: any SourceCatalog, sink: any SourceMeasurementSink, stats: StatsCollector?,
                loops: LoopDetector?, settings: ProbeSettings, logger: Logger) {
        self.relay = relay
        self.catalog = catalog
        self.sink = sink
        self.stats = stats
        self.loops = loops
        self.settings = settings
        self.logger = logger
        let observations = HubObservations()
        self.observations = observations
        subscription = relay.events.subscribe("prober", observations)
        watchedMeasurer = WatchedSourceMeasurer(observations: observations, sink: sink, stats: stats, interval: settings.interval,
                                                firstWindow: settings.probeSeconds)
    }

    deinit { subscription.cancel() }

    /// The most probes that ran at once since start.
    public var peakConcurrency: Int { schedule.withLock { $0.peakConcurrency } }

    /// Rounds until the task is cancelled; probes in flight finish (and release) first.
    public func run() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                await watchedMeasurer.round()
                for source in await due() {
                    group.addTask { [self] in await probe(source) }
                }
                try? await Task.sleep(for: .seconds(settings.roundInterval))
            }
        }
    }

    /// Sources to probe now, each marked in flight.
    private func due() async -> [String] {
        let sources = await catalog.sourcesToMeasure()
        let now = Date()
        return schedule.withLock { schedule in
            var chosen: [String] = []
            for source in sources {
                let id = source.contentID.lowercased()
                guard schedule.inFlight.count < settings.concurrency else { break }
                guard !schedule.inFlight.contains(id), let key = ContentKey(kind: .contentID, value: id) else { continue }
                if let last = source.lastMeasuredAt, now.timeIntervalSince1970 - last < settings.interval { continue }
                // Watched sources are measured from their hub, at no cost.
                if observations.isWatched(key) { continue }
                if schedule.notBefore[id] == nil {
                    let spread = settings.startSpread > 0 ? Double.random(in: 0..<settings.startSpread) : 0
                    schedule.notBefore[id] = now.addingTimeInterval(spread)
                }
                guard let notBefore = schedule.notBefore[id], notBefore <= now else { continue }
                schedule.inFlight.insert(id)
                chosen.append(id)
            }
            schedule.peakConcurrency = max(schedule.peakConcurrency, schedule.inFlight.count)
            return chosen
        }
    }

    /// What one probe found: a measurement to record, or nothing (declined, cut short).
    private enum Outcome {
        case measured(SourceMeasurement)
        case declined(String)
    }

    private func probe(_ contentID: String) async {
        let outcome = await measure(contentID)
        let now = Date()
        schedule.withLock { schedule in
            schedule.inFlight.remove(contentID)
            switch outcome {
            case .measured:
                schedule.notBefore[contentID] = now.addingTimeInterval(settings.interval * Double.random(in: 1...1.1))
            case .declined:
                schedule.notBefore[contentID] = now.addingTimeInterval(min(settings.interval, 30))
            }
        }
        switch outcome {
        case .measured(let measurement):
            logger.debug("source measured", metadata: ["channels.source": "\(contentID)",
                                                       "channels.result": "\(measurement.failure?.rawValue ?? "ok")"])
            await sink.record(contentID: contentID, measurement: measurement)
        case .declined(let why):
            logger.debug("probe declined", metadata: ["channels.source": "\(contentID)", "channels.reason": "\(why)"])
        }
    }

    private func measure(_ contentID: String) async -> Outcome {
        guard let key = ContentKey(kind: .contentID, value: contentID) else { return .declined("not a content id") }
        let openedAt = Date()
        let handle = await relay.openProbe(key)
        guard let hub = handle.hubID else {
            if handle.refusal?.code == "stream_looping" { return .measured(SourceMeasurement(failure: .looping)) }
            return .declined(handle.refusal?.message ?? "refused")
        }
        let outcome = await watch(hub, openedAt: openedAt)
        handle.release()
        // The probe's slot frees once its hub closed (the engine was told to stop), so the
        // engine sessions probes hold never exceed the limit, not even for a moment.
        if handle.players == 0 { await waitForClose(hub, timeout: 3) }
        return outcome
    }

    private func waitForClose(_ hub: HubID, timeout: Double) async {
        let deadline = Date().addingTimeInterval(timeout)
        while observations.track(hub)?.closed == nil, Date() < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Follows the probe's hub until the probe has seen enough, or the hub closed.
    private func watch(_ hub: HubID, openedAt: Date) async -> Outcome {
        while true {
            let elapsed = Date().timeIntervalSince(openedAt)
            let track = observations.track(hub)
            if let closed = track?.closed { return outcome(closedWith: closed, track: track!, since: openedAt) }
            let flowing = track?.latest?.timeToFirstByte != nil
            if elapsed >= settings.probeSeconds, flowing || elapsed >= settings.startTimeout {
                guard let latest = track?.latest else { return .measured(SourceMeasurement(failure: .noData)) }
                return .measured(finalMeasurement(latest, since: openedAt))
            }
            try? await Task.sleep(for: .milliseconds(100))
            if Task.isCancelled { return .declined("stopping") }
        }
    }

    /// The measurement at the end of a probe that kept its hub to the end.
    private func finalMeasurement(_ latest: HubMeasurement, since: Date) -> SourceMeasurement {
        let window = MeasurementWindow(start: nil, end: latest, since: since)
        let failure: SourceFailure?
        if latest.timeToFirstByte == nil {
            failure = .noData
        } else if loops?.refusal(for: latest.hub.content)?.code == "stream_looping" {
            failure = .looping
        } else if latest.secondsSinceData >= settings.stalledAfter {
            failure = .stalled
        } else {
            failure = nil
        }
        return window.measurement(failure: failure, stats: stats)
    }

    private func outcome(closedWith reason: HubCloseReason, track: HubObservations.Track, since: Date) -> Outcome {
        guard case .failed(let code, let message) = reason else { return .declined("hub closed: \(reason)") }
        let failure: SourceFailure
        switch code {
        case ProbeCodes.noSpareCapacity, "probe_preempted", "relay_stopping": return .declined(message)
        case "stream_looping": failure = .looping
        case "engine_timeout": failure = .noData
        case "engine_lost": failure = .stalled
        default: failure = track.latest?.timeToFirstByte == nil ? .refused : .stalled
        }
        guard let latest = track.latest else { return .measured(SourceMeasurement(failure: failure)) }
        return .measured(MeasurementWindow(start: nil, end: latest, since: since).measurement(failure: failure, stats: stats))
    }
}

private enum ProbeCodes {
    /// `EngineSelector`'s refusal of a probe with no spare engine.
    static let noSpareCapacity = "probe_no_capacity"
}
