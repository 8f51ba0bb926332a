// `TestPlayer`, `TestHTTPConnection`, `ChildProcess`, `TestDirectory`, `Loopback` and
// `eventually` live in TestSupport, shared with the other test targets; re-exported so
// every file here sees them.
@_exported import TestSupport

typealias TestError = TestFailure
