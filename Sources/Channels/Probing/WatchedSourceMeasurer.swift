import Foundation
import RelayCore
import Streams
import Locking

/// Measures sources players watch from their hub's own measurements, with no
/// probe and no second session: per open hub with players, the change since
/// the window began becomes one measurement — first after `firstWindow` (as
/// long as a probe would take, so a source players picked is scored as soon
/// as a probed one), then once every `interval`.
/// A watched hub that fails (its engine lost for good, or found looping)
/// records the failure at once.
final class WatchedSourceMeasurer: Sendable {
    private struct Window {
        var start: HubMeasurement
        var since: Date
        /// Seconds this window spans before it is recorded.
        var length: Double
    }

    private let observations: HubObservations
    private let sink: any SourceMeasurementSink
    private let stats: StatsCollector?
    private let interval: Double
    private let firstWindow: Double
    private let windows = Locked<[HubID: Window]>([:])

    init(observations: HubObservations, sink: any SourceMeasurementSink, stats: StatsCollector?, interval: Double, firstWindow: Double) {
        self.firstWindow = min(firstWindow, interval)
        self.observations = observations
        self.sink = sink
        self.stats = stats
        self.interval = interval
    }

    /// What a watched hub's failure says of its source; nil for closes that say nothing of it.
    private static func failure(_ code: String) -> SourceFailure? {
        switch code {
        case "stream_looping": .looping
        case "engine_lost": .stalled
        default: nil
        }
    }

    /// Opens windows for newly watched hubs and records those that span `interval`.
    func round() async {
        let now = Date()
        let watched = observations.watched
        let due: [(String, SourceMeasurement)] = windows.withLock { windows in
            var due: [(String, SourceMeasurement)] = []
            for (id, window) in windows where !watched.contains(where: { $0.hub == id }) {
                windows[id] = nil
                guard let track = observations.track(id), case .failed(let code, _)? = track.closed,
                      let failure = Self.failure(code), let latest = track.latest else { continue }
                due.append((id.content.value, MeasurementWindow(start: window.start, end: latest, since: window.since)
                    .measurement(failure: failure, stats: stats)))
            }
            for track in watched {
                guard let latest = track.latest else { continue }
                guard let window = windows[track.hub] else {
                    windows[track.hub] = Window(start: latest, since: now, length: firstWindow)
                    continue
                }
                guard now.timeIntervalSince(window.since) >= window.length else { continue }
                let measurement = MeasurementWindow(start: window.start, end: latest, since: window.since).measurement(failure: nil, stats: stats)
                due.append((track.hub.content.value, measurement))
                windows[track.hub] = Window(start: latest, since: now, length: interval)
            }
            return due
        }
        for (content, measurement) in due where content.count == 40 {
            await sink.record(contentID: content, measurement: measurement)
        }
    }
}
