import Locking

/// One HLS segment: a byte range of a hub's history between two join points.
public struct HLSSegment: Sendable, Equatable {
    /// Its media sequence number, fixed for the hub's life.
    public var sequence: UInt64
    /// History offsets: starts at a join point (PAT, PMT, key frame), ends at the next cut.
    public var range: Range<UInt64>
    /// Seconds, from the stream's PCR (or, without one, from when its join points arrived).
    public var duration: Double
    /// Its timestamps do not continue from the segment before (`#EXT-X-DISCONTINUITY`).
    public var discontinuity: Bool
    /// Discontinuities from the hub's first segment up to and including this one:
    /// what `#EXT-X-DISCONTINUITY-SEQUENCE` counts for a playlist that starts here.
    public var discontinuitySequence: UInt64

    public init(sequence: UInt64, range: Range<UInt64>, duration: Double, discontinuity: Bool, discontinuitySequence: UInt64) {
        self.sequence = sequence
        self.range = range
        self.duration = duration
        self.discontinuity = discontinuity
        self.discontinuitySequence = discontinuitySequence
    }
}

/// The segments of one hub's history, oldest first, numbered by a sequence that
/// only grows for the hub's life.
///
/// Written by the hub's loop (its `HLSSegmenter`) once per segment, read by HLS
/// responders on any loop. A segment is only a description: its bytes stay in
/// the history, which decides how long they last; the index keeps at most
/// `capacity` segments and readers check the history's readable window.
public final class HLSSegmentIndex: Sendable {
    private struct State {
        var segments: [HLSSegment] = []
        var nextSequence: UInt64
        var discontinuities: UInt64 = 0
        var longest: Double = 0
    }

    private let state: Locked<State>
    private let capacity: Int

    /// - Parameter firstSequence: the first segment's number. A hub starts from the
    ///   wall clock's seconds so a later hub of the same content numbers above every
    ///   segment an earlier one issued, and a player holding an old URL gets a 404
    ///   rather than another hub's bytes.
    public init(firstSequence: UInt64, capacity: Int = 512) {
        state = Locked(State(nextSequence: firstSequence))
        self.capacity = max(capacity, 1)
    }

    /// Adds the segment that ends where the next begins. Writer only.
    @discardableResult
    public func append(range: Range<UInt64>, duration: Double, discontinuity: Bool) -> HLSSegment {
        state.withLock { state in
            if discontinuity { state.discontinuities += 1 }
            let segment = HLSSegment(sequence: state.nextSequence, range: range, duration: duration,
                                     discontinuity: discontinuity, discontinuitySequence: state.discontinuities)
            state.nextSequence += 1
            state.longest = max(state.longest, duration)
            if state.segments.count == capacity { state.segments.removeFirst() }
            state.segments.append(segment)
            return segment
        }
    }

    /// The segment numbered `sequence` if its bytes are in `readable` (published and not yet trimmed).
    public func segment(_ sequence: UInt64, readable: Range<UInt64>) -> HLSSegment? {
        state.withLock { state in
            guard let first = state.segments.first, sequence >= first.sequence else { return nil }
            let i = Int(sequence - first.sequence)
            guard i < state.segments.count else { return nil }
            let segment = state.segments[i]
            return readable.contains(segment.range.lowerBound) && segment.range.upperBound <= readable.upperBound ? segment : nil
        }
    }

    /// The newest `count` segments whose bytes are in `readable`, oldest first.
    public func newest(_ count: Int, readable: Range<UInt64>) -> [HLSSegment] {
        state.withLock { state in
            var found: [HLSSegment] = []
            var i = state.segments.count - 1
            while i >= 0, found.count < count {
                let segment = state.segments[i]
                if segment.range.lowerBound < readable.lowerBound { break }
                if segment.range.upperBound <= readable.upperBound { found.append(segment) }
                i -= 1
            }
            return found.reversed()
        }
    }

    /// The number the next segment will get.
    public var nextSequence: UInt64 { state.withLock { $0.nextSequence } }

    /// Segments the index holds now.
    public var count: Int { state.withLock { $0.segments.count } }

    /// The longest segment so far, in seconds: the floor of the playlist's target
    /// duration, which must not shrink while the hub lives.
    public var longestDuration: Double { state.withLock { $0.longest } }
}
