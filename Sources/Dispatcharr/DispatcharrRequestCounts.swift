import Locking

/// The outcome label of one exchange with Dispatcharr, for
/// `acerelay_dispatcharr_requests_total{result}`: a bounded set, no ids or URLs.
public enum DispatcharrRequestResult: String, Sendable, CaseIterable {
    /// A 2xx answer.
    case ok
    /// Any error status other than 401 and 429.
    case httpError = "http_error"
    /// A 401, or a login refused locally after a refused password.
    case unauthorized
    /// A 429, or a login held back until Retry-After has passed.
    case throttled
    /// Also counts time-outs: for an operator both mean "Dispatcharr did not answer".
    case unreachable
    /// An answer that is not the documented JSON, or too large.
    case badResponse = "bad_response"
}

/// Exchanges with Dispatcharr counted by outcome; read at scrape time.
///
/// Every HTTP exchange counts once (logins and refreshes included), and so does a
/// login refused locally because Dispatcharr's throttle has not yet expired.
public final class DispatcharrRequestCounts: Sendable {
    // A lock, not atomics: a few requests a minute, and a fixed array of atomics is not expressible.
    private let counts = Locked([Int](repeating: 0, count: DispatcharrRequestResult.allCases.count))

    /// All counts at zero.
    public init() {}

    /// Adds one exchange with `result`.
    public func record(_ result: DispatcharrRequestResult) {
        counts.withLock { $0[Self.index(result)] += 1 }
    }

    /// The number of exchanges that ended with `result`.
    public func count(_ result: DispatcharrRequestResult) -> Int {
        counts.withLock { $0[Self.index(result)] }
    }

    /// Every label with its count, in `DispatcharrRequestResult.allCases` order.
    public func snapshot() -> [(result: DispatcharrRequestResult, count: Int)] {
        DispatcharrRequestResult.allCases.map { ($0, count($0)) }
    }

    private static func index(_ result: DispatcharrRequestResult) -> Int {
        DispatcharrRequestResult.allCases.firstIndex(of: result)!
    }
}
