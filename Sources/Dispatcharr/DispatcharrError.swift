import Foundation

/// Why a Dispatcharr request did not succeed, one case per way callers react.
public enum DispatcharrError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing answered at the base URL (refused, unknown host, no route).
    case unreachable(reason: String)
    /// Dispatcharr did not answer within the request's time limit.
    case timedOut(reason: String)
    /// The credentials were refused (after one token refresh and one login at most).
    case unauthorized(detail: String)
    /// Dispatcharr (or the login throttle acerelay keeps in step with it) asks to wait
    /// `retryAfter` before the next login or request.
    case throttled(retryAfter: Duration)
    /// Any other error status, with Dispatcharr's `detail` or the start of its body.
    case http(status: Int, detail: String)
    /// An answer that is not what the API documents (not JSON, missing fields, too large).
    case badResponse(reason: String)
    /// A request acerelay refuses to send because Dispatcharr would fail on it
    /// (duplicate stream ids answer 500 there); nothing was sent.
    case invalidRequest(reason: String)

    /// One line saying what went wrong and, where it helps, what to do.
    public var description: String {
        switch self {
        case .unreachable(let reason):
            "Dispatcharr is unreachable: \(reason); check DISPATCHARR_BASE_URL and that Dispatcharr runs"
        case .timedOut(let reason):
            "Dispatcharr did not answer in time: \(reason)"
        case .unauthorized(let detail):
            "Dispatcharr refused the credentials: \(detail); check DISPATCHARR_USER/DISPATCHARR_PASS, DISPATCHARR_TOKEN or DISPATCHARR_API_KEY"
        case .throttled(let retryAfter):
            "Dispatcharr throttles logins; next attempt in \(Self.seconds(retryAfter)) s"
        case .http(let status, let detail):
            "Dispatcharr answered HTTP \(status): \(detail)"
        case .badResponse(let reason):
            "Dispatcharr sent an unexpected answer: \(reason)"
        case .invalidRequest(let reason):
            "not sent to Dispatcharr: \(reason)"
        }
    }

    /// The metrics label this outcome counts under.
    public var result: DispatcharrRequestResult {
        switch self {
        case .unreachable, .timedOut: .unreachable
        case .unauthorized: .unauthorized
        case .throttled: .throttled
        case .http: .httpError
        case .badResponse, .invalidRequest: .badResponse
        }
    }

    /// Whether trying the same request again later can succeed.
    public var isRetryable: Bool {
        switch self {
        case .unreachable, .timedOut, .throttled: true
        case .unauthorized: false
        case .http(let status, _): status >= 500 || status == 408 || status == 409
        case .badResponse: true
        case .invalidRequest: false
        }
    }

    static func seconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) + (attoseconds > 0 ? 1 : 0)
    }
}
