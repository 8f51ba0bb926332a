/// A place in a hub's history where a player can start (see `TSInspector`).
public struct JoinPoint: Sendable, Equatable {
    /// History offset of the join point's first packet.
    public var offset: UInt64
    /// The last PCR (27 MHz) seen before it, when the stream carries one.
    public var pcr: UInt64?
    /// Loop time (seconds) when it was ingested.
    public var time: Double

    public init(offset: UInt64, pcr: UInt64?, time: Double) {
        self.offset = offset
        self.pcr = pcr
        self.time = time
    }
}

/// The recent join points of one history, oldest first, in a ring allocated
/// once: recording one never allocates. Offsets only grow, so the ring is sorted.
struct JoinPointIndex {
    private var slots: [JoinPoint]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        slots = Array(repeating: JoinPoint(offset: 0, pcr: nil, time: 0), count: max(capacity, 1))
    }

    var capacity: Int { slots.count }

    /// Appends `point`, forgetting the oldest when the ring is full.
    mutating func record(_ point: JoinPoint) {
        if let last = latest, point.offset <= last.offset { return }
        if count == slots.count {
            head = (head + 1) % slots.count
            count -= 1
        }
        slots[(head + count) % slots.count] = point
        count += 1
    }

    /// Forgets join points before `offset` (bytes no longer readable).
    mutating func prune(before offset: UInt64) {
        while count > 0, slots[head].offset < offset {
            head = (head + 1) % slots.count
            count -= 1
        }
    }

    /// The widest distance between the last few join points, counting the
    /// bytes from the newest one to `end`; 0 without any. How much history a
    /// joining player needs behind the live edge to find one.
    func widestRecentSpan(upTo end: UInt64) -> UInt64 {
        guard let newest = latest else { return 0 }
        var widest = end > newest.offset ? end - newest.offset : 0
        let first = Swift.max(count - 4, 0)
        for i in stride(from: count - 1, to: first, by: -1) {
            widest = Swift.max(widest, self[i].offset - self[i - 1].offset)
        }
        return widest
    }

    var latest: JoinPoint? { count == 0 ? nil : slots[(head + count - 1) % slots.count] }

    subscript(i: Int) -> JoinPoint { slots[(head + i) % slots.count] }

    /// Join points with offsets in `range`, oldest first.
    func points(in range: Range<UInt64>) -> [JoinPoint] {
        var found: [JoinPoint] = []
        for i in 0..<count {
            let point = self[i]
            if point.offset >= range.upperBound { break }
            if point.offset >= range.lowerBound { found.append(point) }
        }
        return found
    }
}
