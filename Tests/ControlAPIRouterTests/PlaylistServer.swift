// The canned HTTP server lives in TestSupport (`LoopbackServer`), shared with the other
// test targets; re-exported so every file here sees it.
@_exported import TestSupport

/// The playlist fetches' server (`POST /channels/import` by URL, `/modify_m3u`):
/// every request gets the same answer.
typealias PlaylistServer = LoopbackServer

extension LoopbackServer {
    /// Answers `status` with `headers` (whole lines) and `body` (with its Content-Length).
    convenience init(status: Int = 200, headers: [String] = [], body: [UInt8]) throws {
        try self.init(.answer(status: status, headers: headers, body: body))
    }

    convenience init(status: Int = 200, headers: [String] = [], text: String) throws {
        try self.init(status: status, headers: headers, body: Array(text.utf8))
    }

    /// The playlist's URL.
    var url: String { baseURL + "/playlist.m3u" }
}
