/// A misbehaviour of a real engine that the simulator can put on, for one content or all.
public enum SimulatorFault: Sendable, Equatable {
    /// Accept connections (getstream, stat, playback, and get_status when engine-wide) and never
    /// answer until cleared or shut down; open playback responses go silent. `/sim/...` still answers.
    case hang
    /// Open playback responses send nothing for this long, then resume where they were: the
    /// media that came due meanwhile follows at once, so no data is lost.
    case stall(seconds: Double)
    /// One open playback response per session ends cleanly (chunked terminator); the session stays
    /// valid and a reconnect to the same playback_url continues the stream. With no response open,
    /// the next one to open ends; set for a content with no session, the content's next session gets it.
    case cleanEOF
    /// Once per session, this many bytes of non-TS garbage (never 0x47) go into the playback
    /// stream in the middle of a packet. Delivered like `cleanEOF`.
    case garbage(bytes: Int)
    /// stat's livepos (`live_last`, `last_ts`, `last`, `pos`, and the window behind them) stops advancing.
    case frozenLiveLast
    /// getstream answers `{"response":null,"error":"failed to load content"}`.
    case loadError
    /// The engine is gone: the listener and every connection close and every session ends, so
    /// connections are refused until the fault is cleared; then it listens again on the same port.
    /// Always engine-wide, whatever content it is set for; clearing any scope revives it.
    case die
}
