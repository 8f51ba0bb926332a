/// Estimates a frame rate from the timestamps of consecutive video PES headers,
/// for streams whose sequence header carries no timing (HEVC, broadcast H.264
/// without VUI timing).
///
/// It relies on one coded picture per PES packet, which is how TS muxers
/// packetise video. Decoding timestamps grow by one frame duration per packet;
/// with presentation timestamps only and B-frames the order is shuffled, but
/// every step is still a whole number of frame durations. A window of steps
/// that does not fit either pattern (a lost PES start, a damaged header, a
/// splice) is thrown away and measuring starts again.
public struct TimestampCadence: Sendable {
    /// Steps gathered before an estimate is made.
    public static let stepsNeeded = 8
    /// Rounding slack between steps, in 90 kHz ticks (59.94 fps alternates 1501 and 1502).
    static let slack: Int64 = 2

    private var first: UInt64?
    private var last: UInt64?
    /// Signed steps of the current window; capacity reserved once.
    private var steps: [Int64]

    public init() {
        steps = []
        steps.reserveCapacity(Self.stepsNeeded)
    }

    /// Frames per second once a consistent window of `stepsNeeded` steps is in;
    /// nil before that.
    public private(set) var frameRate: Double?

    /// Records the timestamp (DTS, else PTS; 90 kHz) of one video PES packet.
    public mutating func record(_ timestamp: UInt64) {
        guard frameRate == nil else { return }
        defer { last = timestamp }
        guard let last else {
            restart(at: timestamp)
            return
        }
        // 33-bit wrap-around: the difference modulo 2^33, as a signed step.
        var step = Int64((timestamp &- last) & 0x1_FFFF_FFFF)
        if step >= 1 << 32 { step -= 1 << 33 }
        // A step of more than a second, either way, is a splice, not a frame.
        guard step != 0, abs(step) <= 90_000 else {
            restart(at: timestamp)
            return
        }
        steps.append(step)
        guard steps.count == Self.stepsNeeded, let first else { return }
        if let rate = Self.rate(steps, span: Int64((timestamp &- first) & 0x1_FFFF_FFFF)) {
            frameRate = rate
        } else {
            restart(at: timestamp)
        }
    }

    private mutating func restart(at timestamp: UInt64) {
        first = timestamp
        steps.removeAll(keepingCapacity: true)
    }

    private static func rate(_ steps: [Int64], span: Int64) -> Double? {
        guard let smallest = steps.filter({ $0 > 0 }).min(), let largest = steps.max() else { return nil }
        let rate: Double
        if steps.allSatisfy({ $0 > 0 }) {
            guard largest - smallest <= slack else { return nil }
            rate = 90_000 * Double(steps.count) / Double(span)
        } else {
            // Presentation order with B-frames: each step, forward or back, is a few frame durations.
            for step in steps {
                let frames = (abs(step) + smallest / 2) / smallest
                guard frames >= 1, frames <= 8, abs(abs(step) - frames * smallest) <= slack * frames else { return nil }
            }
            rate = 90_000 / Double(smallest)
        }
        let snapped = snap(rate)
        return FrameRate.isPlausible(snapped) ? snapped : nil
    }

    /// Rates met in broadcast; a measured rate within 0.5 % of one is taken as it.
    private static let commonRates: [Double] = [
        24000.0 / 1001, 24, 25, 30000.0 / 1001, 30, 48, 50, 60000.0 / 1001, 60, 100, 120000.0 / 1001, 120,
    ]

    static func snap(_ rate: Double) -> Double {
        for common in commonRates where abs(rate - common) / common < 0.005 {
            return common
        }
        return rate
    }
}
