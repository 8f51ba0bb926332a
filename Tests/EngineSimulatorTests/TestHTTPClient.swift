// The raw-socket HTTP client these tests use (`TestHTTPConnection`, `TestHTTP`,
// `TestHTTPResponse`, `TestHTTPError`, `TestPlaybackStream`) lives in TestSupport,
// shared with the other test targets; re-exported so every file here sees it.
@_exported import TestSupport
