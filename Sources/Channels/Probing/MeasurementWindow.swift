import Foundation
import RelayCore
import Streams

/// Turns what a hub measured over a window (its measurement at the start, nil
/// when the window began with the hub, and its latest) and what the engine's
/// stats said into one `SourceMeasurement`.
struct MeasurementWindow {
    var start: HubMeasurement?
    var end: HubMeasurement
    /// When the window began, for "did livepos advance" (wall clock).
    var since: Date

    func measurement(failure: SourceFailure?, stats: StatsCollector?) -> SourceMeasurement {
        let packets = end.packets - min(start?.packets ?? 0, end.packets)
        let nulls = end.nullPackets - min(start?.nullPackets ?? 0, end.nullPackets)
        let errors = end.continuityErrors - min(start?.continuityErrors ?? 0, end.continuityErrors)
        let stall = max(end.stallSeconds - (start?.stallSeconds ?? 0), 0)
        let elapsed = max(Date().timeIntervalSince(since), 0)
        // A window that began with the hub covers the stream from its first byte.
        let seconds = start != nil ? elapsed : max(elapsed - (end.timeToFirstByte ?? elapsed), 0)
        let sample = stats?.latestStats(end.hub.content.value)
        return SourceMeasurement(
            failure: failure,
            timeToFirstByte: start == nil ? end.timeToFirstByte : nil,
            measuredSeconds: seconds,
            stallSeconds: stall,
            continuityErrors: Int(errors),
            nullPacketShare: packets == 0 ? 0 : Double(nulls) / Double(packets),
            bitrateKbps: end.bitsPerSecond > 0 ? end.bitsPerSecond / 1000 : nil,
            peers: sample?.peers,
            speedDownKBps: sample?.speedDown,
            speedUpKBps: sample?.speedUp,
            liveposAdvancing: stats?.liveposAdvanced(end.hub.content.value, since: since),
            facts: end.facts)
    }
}
