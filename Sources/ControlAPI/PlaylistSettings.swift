/// How the playlist routes reach out and point back.
public struct PlaylistSettings: Sendable, Equatable {
    /// `ACERELAY_PUBLIC_URL`, e.g. `http://tv.example:8080`: the origin written
    /// into `/channels.m3u`; nil uses the request's host and the stream port.
    public var publicURL: String?
    /// `M3U_TIMEOUT`: the time limit for fetching a playlist (import and `/modify_m3u`).
    public var fetchTimeout: Duration

    public init(publicURL: String? = nil, fetchTimeout: Duration = .seconds(15)) {
        self.publicURL = publicURL
        self.fetchTimeout = fetchTimeout
    }
}
