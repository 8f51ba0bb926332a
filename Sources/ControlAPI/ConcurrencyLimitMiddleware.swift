import HTTPTypes
import Hummingbird
import Synchronization

/// Bounds the control API's requests in progress: one more than `limit` is
/// answered `503` with `Retry-After` at once instead of queueing without end
/// behind slow ones (a body that trickles in, a store that is busy).
///
/// A streaming response (the panel's `/events/live`) holds its slot only until
/// its head is returned, so long-lived subscribers do not use the bound up.
struct ConcurrencyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int
    let inFlight: InFlightRequests

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard inFlight.enter(limit: limit) else {
            throw APIError(.serviceUnavailable, .message("the control API has \(limit) requests in progress; retry in a second"),
                           headers: [.retryAfter: "1"])
        }
        defer { inFlight.leave() }
        return try await next(request, context)
    }
}

/// The control API's requests in progress, and those turned away, since start.
final class InFlightRequests: Sendable {
    private let count = Atomic<Int>(0)
    private let refused = Atomic<UInt64>(0)

    /// Takes a slot; false (counted) when `limit` are taken.
    func enter(limit: Int) -> Bool {
        if count.add(1, ordering: .relaxed).newValue <= limit { return true }
        count.subtract(1, ordering: .relaxed)
        refused.add(1, ordering: .relaxed)
        return false
    }

    func leave() { count.subtract(1, ordering: .relaxed) }

    /// Requests answered 503 for being over the bound.
    var refusedTotal: UInt64 { refused.load(ordering: .relaxed) }
}
