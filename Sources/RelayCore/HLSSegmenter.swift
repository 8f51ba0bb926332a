/// Cuts a hub's stream into HLS segments as its join points pass: a segment
/// closes at the first join point at least the target duration after its start,
/// and at a loop seam or a new engine session (a PCR break) so the next segment
/// can carry `#EXT-X-DISCONTINUITY`.
///
/// Loop-confined to the hub's owner; fed by the ingest pipeline's inspector
/// before the bytes are published (the index's readers check the history's end).
final class HLSSegmenter {
    let index: HLSSegmentIndex
    private let targetSeconds: Double
    /// Start of the segment being filled, and whether it starts a new timeline.
    private var open: (point: JoinPoint, discontinuity: Bool)?
    /// The newest join point, which a PCR break just after it turns into a cut.
    private var latest: JoinPoint?
    /// A break inside a key frame group (no join point near it): the next segment is flagged.
    private var discontinuityPending = false
    /// PAT-only join points seen before any key frame.
    private var patOnlyPoints = 0

    /// A PCR break this close after a join point is a seam at that join point: a
    /// seam restarts with PAT, PMT and a key frame, whose first PCR follows shortly.
    static let seamDistance: UInt64 = 256 * 1024
    /// The last PCR before a join point is up to 100 ms early; a group that ends
    /// this close to the target is taken rather than doubled.
    static let slackSeconds = 0.15
    /// A stream that flags no key frames is cut at PATs once this many passed.
    static let patOnlyPointsBeforeFallback = 3

    init(index: HLSSegmentIndex, targetSeconds: Double) {
        self.index = index
        self.targetSeconds = targetSeconds
    }

    /// A join point was found (bytes before it are inspected).
    func joinPointFound(_ point: JoinPoint) {
        guard let open else {
            // The first segment starts at a key frame; a stream without flags gets PATs after a while.
            if !point.keyFrame {
                patOnlyPoints += 1
                guard patOnlyPoints > HLSSegmenter.patOnlyPointsBeforeFallback else { return }
            }
            self.open = (point, false)
            latest = point
            return
        }
        latest = point
        if HLSSegmenter.duration(from: open.point, to: point) >= targetSeconds - HLSSegmenter.slackSeconds {
            cut(at: point, nextDiscontinuous: false)
        }
    }

    /// The PCR at `offset` does not continue the one before.
    func timelineBroke(at offset: UInt64) {
        guard let current = open, let latest else { return }
        guard offset >= latest.offset, offset - latest.offset <= HLSSegmenter.seamDistance else {
            discontinuityPending = true
            return
        }
        if latest.offset > current.point.offset {
            cut(at: latest, nextDiscontinuous: true)
        } else {
            // The open segment itself starts at the seam.
            open = (current.point, true)
        }
    }

    private func cut(at point: JoinPoint, nextDiscontinuous: Bool) {
        guard let current = open else { return }
        index.append(range: current.point.offset..<point.offset,
                     duration: HLSSegmenter.duration(from: current.point, to: point), discontinuity: current.discontinuity)
        open = (point, nextDiscontinuous || discontinuityPending)
        discontinuityPending = false
    }

    /// Seconds between two join points: by the stream clock when both have it and
    /// it moved, else by when they arrived.
    static func duration(from start: JoinPoint, to end: JoinPoint) -> Double {
        if let a = start.streamTime, let b = end.streamTime, b > a { return b - a }
        return max(end.time - start.time, 0)
    }
}
