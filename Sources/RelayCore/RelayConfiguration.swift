/// Everything the relay core needs to know, as plain values. The app fills it
/// from flags and environment; tests set what they exercise.
public struct RelayConfiguration: Sendable {
    /// Address of the stream port.
    public var listenHost = "0.0.0.0"
    /// 0 picks a free port (tests); read it back from `RelayServer.port`.
    public var listenPort: UInt16 = 8080
    /// Event-loop threads, each accepting on its own SO_REUSEPORT listener.
    public var workers = 1
    /// Seconds a hub without players keeps its engine session, so zapping back reuses it.
    public var gracePeriod: Double = 30
    /// Seconds of stream kept for joining and lagging players...
    public var historySeconds: Double = 45
    /// ...but never more than this many bytes per hub.
    public var historyMaxBytes: UInt64 = 64 << 20
    /// An engine must deliver the first bytes this long after a hub starts, or the start failed.
    public var startTimeout: Double = 25
    /// A player still waiting this long for a starting hub gets `200` and null packets, so it does not time out.
    public var earlyHeadAfter: Double = 5
    /// No bytes from the engine for this long: reconnect.
    public var silenceTimeout: Double = 15
    /// Reconnecting longer than this gives up and closes the hub's players.
    public var reconnectTimeout: Double = 60
    /// Time limit for `getstream`, `stop` and other engine API calls.
    public var engineRequestTimeout: Double = 10
    /// A player must complete its request head within this time.
    public var requestTimeout: Double = 10
    /// Largest request head accepted.
    public var requestHeadLimit = 8 * 1024
    /// A player further behind live than this skips forward to a join point.
    public var clientMaxLagSeconds: Double = 10
    /// A player that skips this many times within `skipWindow` seconds is dropped.
    public var clientSkipLimit = 3
    public var skipWindow: Double = 60
    /// Players are written when this many bytes are pending...
    public var sendBlockBytes = 16 * 1024
    /// ...or this many seconds passed since new bytes arrived.
    public var sendFlushInterval: Double = 0.02
    /// Bytes per sendfile call, so one fast player cannot hog its loop.
    public var sendChunkBytes = 256 * 1024
    /// User-Agent sent to engines; engines and proxies in the field expect VLC's.
    public var engineUserAgent = "VLC/3.0.21 LibVLC/3.0.21"

    /// `CHANNEL_FAILOVER_AFTER_S`: a channel player whose source sent no packet this long
    /// (an EOF the same-session reconnect did not cure, or a stall) moves to the next source.
    public var channelFailoverAfter: Double = 4
    /// `CHANNEL_MAX_SWITCHES_PER_MIN`: source switches one channel player may make in any minute.
    public var channelMaxSwitchesPerMinute = 6
    /// `CHANNEL_WARM_STANDBY`: keep a playing channel's next source open without players.
    public var channelWarmStandby = true
    /// Connections the stream port holds at once (players and heads still arriving);
    /// beyond it a connection gets `503` with `Retry-After` at once. 0 for no bound.
    public var maxPlayers = 0
    /// Hubs one player address may have open at once (`--max-contents-per-address`);
    /// a new content beyond it is a `429` with `Retry-After`, joining an open hub is
    /// always allowed. The address is the proxied one with `--proxy-protocol`. 0 for no bound.
    public var maxContentsPerAddress = 0
    /// Bytes of memfd history all hubs together may hold (`--history-budget`); past
    /// it every hub keeps the same, shorter window. 0 for no budget.
    public var historyBudget: UInt64 = 0

    /// Accept a PROXY protocol v1/v2 header before each request (`--proxy-protocol`):
    /// the player's address is the one the proxy names. Off, such a header is a 400.
    public var proxyProtocol = false
    /// `API_KEY`: when set, `/ace/status` lists players' addresses and user agents only to
    /// a caller presenting it; others see counts.
    public var statusKey: APIKey?
    /// Test-only (`ACERELAY_TEST_STALL_LOOP_AFTER_S`, undocumented for users): after
    /// this many seconds relay loop 0 blocks for good, so tests can watch the
    /// systemd watchdog pings stop. Nil in every real configuration.
    public var testStallLoopAfter: Double?

    public init() {}
}
