/// Why an HTTP request got no usable answer: the one outcome every client in
/// acerelay reports, so callers react per case instead of reading curl codes.
public enum HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing accepted the connection: refused, no such socket, unknown host, unreachable.
    /// `reason` is the socket error when the system gave one ("connection refused").
    case couldNotConnect(reason: String)
    /// The connect timeout, the total timeout or the low-speed limit ran out.
    case timedOut(reason: String)
    /// The response body is longer than the request's `maxBodyBytes`; what had
    /// arrived is dropped.
    case bodyTooLarge(limit: Int)
    /// The response's header lines are longer than the request's `maxHeaderBytes`.
    case headersTooLarge(limit: Int)
    /// The URL, or a redirect, names a scheme other than http and https.
    case protocolNotAllowed(reason: String)
    /// The request body file could not be opened.
    case unreadableFile(path: String, reason: String)
    /// The caller's task was cancelled, or the client was shut down.
    case cancelled
    /// Any other failure: curl's code, and the socket error or curl's text.
    case other(code: Int, message: String)

    /// One line saying what went wrong.
    public var description: String {
        switch self {
        case .couldNotConnect(let reason): "could not connect: \(reason)"
        case .timedOut(let reason): "timed out: \(reason)"
        case .bodyTooLarge(let limit): "the response body is larger than \(limit) bytes"
        case .headersTooLarge(let limit): "the response headers are larger than \(limit) bytes"
        case .protocolNotAllowed(let reason): "only http and https are allowed: \(reason)"
        case .unreadableFile(let path, let reason): "cannot read \(path): \(reason)"
        case .cancelled: "request cancelled"
        case .other(let code, let message): "\(message) (curl code \(code))"
        }
    }
}
