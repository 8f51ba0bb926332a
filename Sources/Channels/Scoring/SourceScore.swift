import StreamFacts

/// A source's score, 0–100, with the points each component gave, so an
/// operator (and the API) can see why one source ranks above another.
public struct SourceScore: Sendable, Equatable, Codable {
    /// Points per component; their sum is `total`. The maxima are in `SourceScorer.Weights`.
    public struct Components: Sendable, Equatable, Codable {
        /// Starts, and starts fast (time to first byte).
        public var start: Double = 0
        /// Flows without stalls.
        public var flow: Double = 0
        /// No continuity errors.
        public var continuity: Double = 0
        /// The engine's live position advances.
        public var livepos: Double = 0
        /// Peers in the swarm.
        public var peers: Double = 0
        /// Download speed against the stream's own bitrate.
        public var speed: Double = 0
        /// Picture: resolution, frame rate, codec, bitrate.
        public var resolution: Double = 0
        public var fps: Double = 0
        public var codec: Double = 0
        public var bitrate: Double = 0

        public init() {}

        public var sum: Double { start + flow + continuity + livepos + peers + speed + resolution + fps + codec + bitrate }
    }

    public var total: Int
    public var components: Components
    /// Why the score is 0, when the measurement failed.
    public var failure: SourceFailure?

    public init(total: Int, components: Components, failure: SourceFailure?) {
        self.total = total
        self.components = components
        self.failure = failure
    }
}

/// Turns a measurement into a score. The formula, documented in the README:
///
/// | component | max | full marks when | zero when |
/// |---|---|---|---|
/// | start | 15 | first byte ≤ 2 s (or already live) | ≥ 10 s |
/// | flow | 20 | no stall | stalled ≥ half the time |
/// | continuity | 10 | no CC error | ≥ 10 errors a minute |
/// | livepos | 5 | advancing (2.5 if unknown) | frozen |
/// | peers | 10 | ≥ 20 peers (5 if unknown) | 0 peers |
/// | speed | 15 | download ≥ 1.5 × bitrate (7.5 if unknown) | ≤ 0.8 × bitrate |
/// | resolution | 10 | ≥ 1080 lines (720: 7, 576: 5, less: 3) | unknown |
/// | fps | 5 | ≥ 50 fps, linear | unknown |
/// | codec | 3 | HEVC (H.264: 2.4, other: 1.5) | unknown |
/// | bitrate | 7 | ≥ 8 Mbit/s of non-null packets, linear | unknown |
///
/// A failed measurement scores 0 whatever else it saw.
public enum SourceScorer {
    public enum Weights {
        public static let start = 15.0, flow = 20.0, continuity = 10.0, livepos = 5.0
        public static let peers = 10.0, speed = 15.0
        public static let resolution = 10.0, fps = 5.0, codec = 3.0, bitrate = 7.0
    }

    public static func score(_ m: SourceMeasurement) -> SourceScore {
        if let failure = m.failure {
            return SourceScore(total: 0, components: .init(), failure: failure)
        }
        var c = SourceScore.Components()
        if let ttfb = m.timeToFirstByte {
            c.start = Weights.start * clamp((10 - ttfb) / 8)
        } else {
            c.start = Weights.start
        }
        let covered = max(m.measuredSeconds, 1)
        c.flow = Weights.flow * clamp(1 - 2 * m.stallSeconds / covered)
        let errorsPerMinute = Double(m.continuityErrors) * 60 / covered
        c.continuity = Weights.continuity * clamp(1 - errorsPerMinute / 10)
        switch m.liveposAdvancing {
        case true?: c.livepos = Weights.livepos
        case false?: c.livepos = 0
        case nil: c.livepos = Weights.livepos / 2
        }
        if let peers = m.peers {
            c.peers = Weights.peers * clamp(Double(peers) / 20)
        } else {
            c.peers = Weights.peers / 2
        }
        let effectiveKbps = m.bitrateKbps.map { Double($0) * (1 - clamp(m.nullPacketShare)) }
        if let down = m.speedDownKBps, let kbps = m.bitrateKbps, kbps > 0 {
            // The engine reports KB/s; the stream's rate is kbit/s.
            let ratio = Double(down) * 8 / Double(kbps)
            c.speed = Weights.speed * clamp((ratio - 0.8) / 0.7)
        } else {
            c.speed = Weights.speed / 2
        }
        if let height = m.facts.height {
            c.resolution = Weights.resolution * (height >= 1080 ? 1 : height >= 720 ? 0.7 : height >= 576 ? 0.5 : 0.3)
        }
        if let fps = m.facts.fps {
            c.fps = Weights.fps * clamp(fps / 50)
        }
        switch m.facts.videoCodec {
        case .hevc?: c.codec = Weights.codec
        case .h264?: c.codec = Weights.codec * 0.8
        case .some: c.codec = Weights.codec * 0.5
        case nil: c.codec = 0
        }
        if let kbps = effectiveKbps {
            c.bitrate = Weights.bitrate * clamp(kbps / 8000)
        }
        return SourceScore(total: Int(c.sum.rounded()), components: c, failure: nil)
    }

    private static func clamp(_ value: Double) -> Double { min(max(value, 0), 1) }
}
