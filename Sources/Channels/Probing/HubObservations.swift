import Foundation
import RelayCore
import Locking

/// What the relay's events said of each hub, kept for the prober and the
/// watcher of hubs players keep open: the hub's first and latest measurement,
/// whether it stalled, and how it closed.
///
/// Subscribe it to the relay's feed. Closed hubs are kept a minute so a probe
/// that looks after the close still finds the reason.
public final class HubObservations: RelayObserver, Sendable {
    /// One hub as its events told it.
    public struct Track: Sendable {
        public var hub: HubID
        /// The newest measurement; nil before the first (about a second after the start).
        public var latest: HubMeasurement?
        /// `hubStalled` events seen.
        public var stalls: Int = 0
        /// Set by `hubClosed`.
        public var closed: HubCloseReason?
        var closedAt: Date?

        /// True while open with at least one player (probes not counted).
        public var isWatched: Bool { closed == nil && (latest?.players ?? 0) > 0 }
    }

    private let tracks = Locked<[HubID: Track]>([:])
    /// How long a closed hub's track is kept.
    static let closedRetention: TimeInterval = 60

    public init() {}

    public func observe(_ event: RelayEvent) {
        let now = Date()
        tracks.withLock { tracks in
            switch event {
            case .hubStarted(let hub):
                tracks[hub] = Track(hub: hub)
                tracks = tracks.filter { $0.value.closedAt.map { now.timeIntervalSince($0) < Self.closedRetention } ?? true }
            case .hubMeasured(let measurement):
                tracks[measurement.hub, default: Track(hub: measurement.hub)].latest = measurement
            case .hubStalled(let hub):
                tracks[hub, default: Track(hub: hub)].stalls += 1
            case .hubClosed(let hub, let reason):
                tracks[hub, default: Track(hub: hub)].closed = reason
                tracks[hub]?.closedAt = now
            default:
                break
            }
        }
    }

    /// The hub's track, if its events were seen.
    public func track(_ hub: HubID) -> Track? { tracks.withLock { $0[hub] } }

    /// Open hubs with players, by hub.
    public var watched: [Track] { tracks.withLock { $0.values.filter(\.isWatched) } }

    /// Whether players watch `content` now.
    public func isWatched(_ content: ContentKey) -> Bool {
        tracks.withLock { $0.values.contains { $0.hub.content == content && $0.isWatched } }
    }
}
