// The canned HTTP server these tests talk to lives in TestSupport (`LoopbackServer`),
// shared with the other test targets; re-exported so every file here sees it.
@_exported import TestSupport

extension LoopbackServer {
    /// `http://127.0.0.1:<port>`.
    var url: String { baseURL }
}
