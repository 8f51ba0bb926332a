import Glibc

/// Nanoseconds on the monotonic clock.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Where the engine is in its life.
enum SimulatorLifecycle {
    /// Made, not started.
    case idle
    /// Serving on this listener.
    case running(ListeningSocket)
    /// Killed by the `die` fault; the old listener is closing (its acceptor closes it).
    case dead(retired: ListeningSocket)
    /// Shut down for good.
    case stopped
}

/// Everything the simulator's threads share, behind one lock.
struct SimulatorState {
    /// Where the engine is in its life.
    var lifecycle: SimulatorLifecycle = .idle
    /// The port served (kept across `die` so the engine comes back on it).
    var port: UInt16 = 0
    /// Live sessions by session id.
    var sessions: [String: PlaybackSession] = [:]
    /// The live session of each content, by infohash.
    var liveSessionIDs: [String: String] = [:]
    /// Counters by infohash.
    var counters: [String: SimulatorCounters] = [:]
    /// The name each content was first asked for by (content id, or infohash), by infohash.
    var contentNames: [String: String] = [:]
    /// Faults in force.
    var faults = FaultTable()

    /// Updates the counters of one content.
    mutating func count(_ infohash: String, _ update: (inout SimulatorCounters) -> Void) {
        update(&counters[infohash, default: SimulatorCounters()])
    }

    /// Ends a session: it leaves the maps, so its URLs answer "unknown playback session id"
    /// and its playback loops see it gone on their next tick.
    mutating func endSession(_ id: String) {
        guard let session = sessions.removeValue(forKey: id) else { return }
        if liveSessionIDs[session.infohash] == id { liveSessionIDs[session.infohash] = nil }
        count(session.infohash) { $0.activeSessions -= 1 }
    }
}
