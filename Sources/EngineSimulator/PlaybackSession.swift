/// One engine playback session: one content served to one player id.
struct PlaybackSession {
    /// playback_session_id, also the last component of the session's URLs.
    let id: String
    /// The content's infohash.
    let infohash: String
    /// The pid the session was opened for.
    let playerID: String
    /// When getstream created it (monotonic ns).
    let createdAt: UInt64
    /// When its playback first opened (monotonic ns): time zero of its stream, nil until then.
    var clockStart: UInt64?
    /// Bytes of the endless stream already sent; a reconnect resumes here.
    var deliveredPosition: Int64 = 0
    /// Media bytes sent on all its connections (stat's `downloaded`).
    var bytesSent: Int64 = 0
    /// A `cleanEOF` fault waiting to end one of its responses.
    var pendingCleanEOF = false
    /// A `garbage` fault waiting to be injected: the byte count, 0 for none.
    var pendingGarbageBytes = 0
}
