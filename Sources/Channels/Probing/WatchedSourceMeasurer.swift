import Foundation
import RelayCore
import Streams
import Synchronization

/// Measures sources players watch from their hub's own measurements, with no
/// probe and no second session: per open hub with players, once every
/// `interval`, the change since the window began becomes one measurement.
final class WatchedSourceMeasurer: Sendable {
    private struct Window {
        var start: HubMeasurement
        var since: Date
    }

    private let observations: HubObservations
    private let sink: any SourceMeasurementSink
    private let stats: StatsCollector?
    private let interval: Double
    private let windows = Mutex<[HubID: Window]>([:])

    init(observations: HubObservations, sink: any SourceMeasurementSink, stats: StatsCollector?, interval: Double) {
        self.observations = observations
        self.sink = sink
        self.stats = stats
        self.interval = interval
    }

    /// Opens windows for newly watched hubs and records those that span `interval`.
    func round() async {
        let now = Date()
        let watched = observations.watched
        let due: [(String, SourceMeasurement)] = windows.withLock { windows in
            windows = windows.filter { id, _ in watched.contains { $0.hub == id } }
            var due: [(String, SourceMeasurement)] = []
            for track in watched {
                guard let latest = track.latest else { continue }
                guard let window = windows[track.hub] else {
                    windows[track.hub] = Window(start: latest, since: now)
                    continue
                }
                guard now.timeIntervalSince(window.since) >= interval else { continue }
                let measurement = MeasurementWindow(start: window.start, end: latest, since: window.since).measurement(failure: nil, stats: stats)
                due.append((track.hub.content.value, measurement))
                windows[track.hub] = Window(start: latest, since: now)
            }
            return due
        }
        for (content, measurement) in due where content.count == 40 {
            await sink.record(contentID: content, measurement: measurement)
        }
    }
}
