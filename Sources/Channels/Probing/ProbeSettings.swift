/// How the prober measures sources nobody watches.
public struct ProbeSettings: Sendable, Equatable {
    /// Seconds a probe holds a source (`CHANNEL_PROBE_SECONDS`).
    public var probeSeconds: Double
    /// Seconds between measurements of one source (`CHANNEL_PROBE_INTERVAL_S`); also the
    /// window over which a watched source's hub is summed into one measurement.
    public var interval: Double
    /// Probes at once at most (`CHANNEL_PROBE_CONCURRENCY`).
    public var concurrency: Int
    /// The relay's start timeout: a probe that saw no bytes waits this long from its start
    /// before it counts the source as giving no data.
    public var startTimeout: Double
    /// Seconds between rounds that ask the catalog what is due.
    public var roundInterval: Double
    /// A source first seen waits a random delay up to this, so sources known at start-up
    /// are not all probed at once; later measurements are spread by up to a tenth of `interval`.
    public var startSpread: Double
    /// Seconds without data at the end of a measurement that make it `stalled`.
    public var stalledAfter: Double

    public init(probeSeconds: Double = 20, interval: Double = 300, concurrency: Int = 2, startTimeout: Double = 25,
                roundInterval: Double = 5, startSpread: Double = 60, stalledAfter: Double = 3) {
        self.probeSeconds = probeSeconds
        self.interval = interval
        self.concurrency = max(concurrency, 1)
        self.startTimeout = startTimeout
        self.roundInterval = roundInterval
        self.startSpread = startSpread
        self.stalledAfter = stalledAfter
    }
}
