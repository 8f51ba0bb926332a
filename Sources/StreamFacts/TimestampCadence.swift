/// Estimates a frame rate from the timestamps of consecutive video PES headers,
/// for streams whose sequence header carries no timing (HEVC, interlaced
/// broadcast H.264 without VUI timing).
///
/// It relies on one coded picture per PES packet, which is how TS muxers
/// packetise video. Decoding timestamps grow by one frame duration per packet;
/// with presentation timestamps only and B-frames the order is shuffled, so the
/// smallest positive step is taken.
public struct TimestampCadence: Sendable {
    /// Steps gathered before an estimate is made.
    public static let stepsNeeded = 8

    private var first: UInt64?
    private var last: UInt64?
    private var steps = 0
    private var smallestStep: UInt64 = .max
    private var isMonotonic = true

    public init() {}

    /// Frames per second once `stepsNeeded` steps are in; nil before that or when
    /// the steps are implausible.
    public private(set) var frameRate: Double?

    /// Records the timestamp (DTS, else PTS; 90 kHz) of one video PES packet.
    public mutating func record(_ timestamp: UInt64) {
        guard frameRate == nil else { return }
        defer { last = timestamp }
        guard let last else {
            first = timestamp
            return
        }
        // 33-bit wrap-around: the difference modulo 2^33.
        let step = (timestamp &- last) & 0x1_FFFF_FFFF
        if step == 0 { return }
        // A jump of more than a second, forward or back, is a splice, not a frame.
        if step > 90_000 && step < 0x1_FFFF_FFFF - 90_000 {
            reset(at: timestamp)
            return
        }
        if step > 90_000 {
            isMonotonic = false
        } else {
            smallestStep = min(smallestStep, step)
        }
        steps += 1
        guard steps >= Self.stepsNeeded, let first else { return }
        let rate: Double
        if isMonotonic {
            rate = 90_000 * Double(steps) / Double((timestamp &- first) & 0x1_FFFF_FFFF)
        } else {
            guard smallestStep != .max else { return }
            rate = 90_000 / Double(smallestStep)
        }
        let snapped = Self.snap(rate)
        if FrameRate.isPlausible(snapped) { frameRate = snapped }
    }

    private mutating func reset(at timestamp: UInt64) {
        first = timestamp
        steps = 0
        smallestStep = .max
        isMonotonic = true
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
