/// The live HLS timeline of one channel across its sources: the segments of
/// every hub it played, in order, under a channel-level media sequence that
/// only grows, with `#EXT-X-DISCONTINUITY` where the source changed.
///
/// Pure bookkeeping: `HLSResponder` chooses the source and attaches the hub,
/// then hands the hub's newest segments here. Segment URIs stay the content's
/// own (`/ace/hls/id/<content>/<n>.ts`), so nothing new is served for segments.
/// `RelayServer` keeps one per channel id under a lock.
struct HLSChannelTimeline {
    /// One listed segment, numbered in the channel's sequence.
    struct Entry: Equatable {
        var sequence: UInt64
        var uri: String
        var duration: Double
        var discontinuity: Bool
    }

    /// The source the channel plays now; nil before the first and after a failure.
    private(set) var source: ContentKey?
    /// The hub of `source` whose segments are appended, and the last of its
    /// segment numbers appended; a new hub of the same content starts over.
    private var hub: HubID?
    private var lastHubSequence: UInt64?
    /// The next appended segment starts a new source (or hub): mark it.
    private var discontinuityPending = false
    private(set) var entries: [Entry] = []
    private var nextSequence: UInt64
    /// Discontinuity tags of entries that left `entries`: `#EXT-X-DISCONTINUITY-SEQUENCE`
    /// for a playlist starting at the first entry kept.
    private var droppedDiscontinuities: UInt64 = 0
    /// The largest target duration announced; it must not shrink.
    private var targetDuration = 0
    private let capacity: Int
    /// When the playing source failed; shared with TS channel players' rule.
    var policy: SwitchPolicy

    /// - Parameter firstSequence: the wall clock's seconds, as hubs number theirs,
    ///   so a timeline made again after a restart numbers above the old one.
    init(firstSequence: UInt64, policy: SwitchPolicy, capacity: Int = 64) {
        nextSequence = firstSequence
        self.policy = policy
        self.capacity = max(capacity, 1)
    }

    /// Plays `key`'s hub `hub` from now on; a change of either marks the next segment.
    mutating func play(_ key: ContentKey, hub id: HubID) {
        guard source != key || hub != id else { return }
        source = key
        hub = id
        lastHubSequence = nil
        if !entries.isEmpty { discontinuityPending = true }
    }

    /// The playing source failed: the next source's first segment is marked.
    mutating func sourceFailed() {
        source = nil
        hub = nil
        lastHubSequence = nil
        if !entries.isEmpty { discontinuityPending = true }
    }

    /// Appends the segments of the playing hub not appended yet (`segments`
    /// oldest first, as the hub's index lists them), keeping their own
    /// discontinuities. After a source change only the new hub's newest segment
    /// is taken, so the player is not sent back through that hub's backlog.
    mutating func append(_ segments: [HLSSegment], content: ContentKey, targetDuration hubTarget: Int) {
        targetDuration = max(targetDuration, hubTarget)
        let fresh = lastHubSequence.map { last in segments.filter { $0.sequence > last } }
            ?? (entries.isEmpty ? segments : Array(segments.suffix(1)))
        for segment in fresh {
            let marked = segment.discontinuity || discontinuityPending
            discontinuityPending = false
            entries.append(Entry(sequence: nextSequence, uri: HLSSegmentPath.path(content: content, sequence: segment.sequence),
                                 duration: segment.duration, discontinuity: marked))
            nextSequence += 1
            lastHubSequence = segment.sequence
        }
        if entries.count > capacity {
            let dropped = entries.prefix(entries.count - capacity)
            droppedDiscontinuities += UInt64(dropped.filter(\.discontinuity).count)
            entries.removeFirst(dropped.count)
        }
    }

    /// The newest `window` entries as a playlist; nil before the first segment.
    func playlist(window: Int) -> HLSPlaylist? {
        guard !entries.isEmpty else { return nil }
        let shown = entries.suffix(max(window, 1))
        let before = entries.prefix(entries.count - shown.count)
        return HLSPlaylist(entries: shown.map { HLSPlaylist.Entry(uri: $0.uri, duration: $0.duration, discontinuity: $0.discontinuity) },
                           mediaSequence: shown.first!.sequence,
                           discontinuitySequence: droppedDiscontinuities + UInt64(before.filter(\.discontinuity).count),
                           minimumTargetDuration: targetDuration)
    }
}
