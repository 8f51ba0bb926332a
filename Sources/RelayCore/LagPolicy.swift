/// What to do with a player that may be falling behind its hub's live edge.
enum LagDecision: Equatable {
    /// Within the limits: keep sending from where it is.
    case keep
    /// Too far behind (or behind what the history still holds): move it forward,
    /// to `LagPolicy.skipTarget`, at its next packet boundary.
    case skip
    /// It kept lagging: `skipLimit` skips within the skip window already.
    case drop
}

/// The lag rules for players, as pure functions of what a player and its hub
/// know, so they can be tested without sockets.
struct LagPolicy {
    /// Seconds of stream a player may be behind the live edge.
    let maxLagSeconds: Double
    /// Skips allowed within the skip window before the player is dropped.
    let skipLimit: Int

    /// The most bytes a player may be behind: `maxLagSeconds` of the measured rate
    /// (8 Mbit/s until measured), and never more than half of what the history keeps.
    func maxLagBytes(bitsPerSecond: Int, retainedBytes: UInt64) -> UInt64 {
        let rate = bitsPerSecond > 0 ? bitsPerSecond : 8_000_000
        return min(UInt64(maxLagSeconds * Double(rate) / 8), retainedBytes / 2)
    }

    /// - Parameters:
    ///   - readOffset: the player's next byte.
    ///   - oldestReadable, end: the history's readable window.
    ///   - recentSkips: the player's skips within the skip window.
    func decide(readOffset: UInt64, oldestReadable: UInt64, end: UInt64, maxLag: UInt64, recentSkips: Int) -> LagDecision {
        guard isLagging(readOffset: readOffset, oldestReadable: oldestReadable, end: end, maxLag: maxLag) else { return .keep }
        return recentSkips >= skipLimit ? .drop : .skip
    }

    /// Behind what the history still holds, or more than `maxLag` behind its end.
    func isLagging(readOffset: UInt64, oldestReadable: UInt64, end: UInt64, maxLag: UInt64) -> Bool {
        readOffset < oldestReadable || end - min(readOffset, end) > maxLag
    }

    /// Where a new or skipping player starts: the newest join point, unless it is
    /// trimmed already or too far behind, then the live edge.
    func skipTarget(joinPoint: UInt64?, oldestReadable: UInt64, end: UInt64, maxLag: UInt64) -> UInt64 {
        guard let point = joinPoint, point >= oldestReadable, point <= end, end - point <= maxLag else { return end }
        return point
    }
}
