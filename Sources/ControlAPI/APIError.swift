import EngineFleet
import Streams
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error the control API answers with, in the orchestrator's shapes:
/// `{"detail":"<message>"}` for most, `{"detail":{code,message,...}}` for a
/// refused provisioning (503) and a looping stream (422). Handlers throw it;
/// Hummingbird renders it through `response(from:context:)`.
public struct APIError: HTTPResponseError, Sendable {
    /// What goes under `detail`.
    enum Detail: Sendable {
        case message(String)
        case provisioning(ProvisioningError)
        case looping(message: String)
    }

    public let status: HTTPResponse.Status
    let detail: Detail
    let headers: HTTPFields

    init(_ status: HTTPResponse.Status, _ detail: Detail, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    /// 401: a protected route called without a key.
    static var missingToken: APIError {
        APIError(.unauthorized, .message("missing bearer token"), headers: [.wwwAuthenticate: "Bearer"])
    }

    /// 403: a key that is not `API_KEY`.
    static var invalidToken: APIError { APIError(.forbidden, .message("invalid token")) }

    static func notFound(_ message: String) -> APIError { APIError(.notFound, .message(message)) }
    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, .message(message)) }
    static func unavailable(_ message: String) -> APIError { APIError(.serviceUnavailable, .message(message)) }
    static func badGateway(_ message: String) -> APIError { APIError(.badGateway, .message(message)) }

    /// 503 with the structured reason, and `Retry-After` when it says when to retry.
    static func provisioning(_ error: ProvisioningError) -> APIError {
        APIError(.serviceUnavailable, .provisioning(error), headers: [.retryAfter: String(max(error.recoveryETASeconds, 1))])
    }

    /// 422: a content refused because its broadcast loops.
    static func looping(_ message: String) -> APIError {
        APIError(.init(code: 422, reasonPhrase: "Unprocessable Entity"), .looping(message: message))
    }

    /// The JSON object `detail` holds.
    var detailValue: Any {
        switch detail {
        case .message(let message): message
        case .provisioning(let error): Self.structured(error)
        case .looping(let message): ["error": "stream_blacklisted", "code": "looping_stream", "message": message]
        }
    }

    /// A provisioning refusal as the orchestrator's `blocked_reason_details`.
    static func structured(_ error: ProvisioningError) -> [String: Any] {
        ["code": error.code, "message": error.message, "recovery_eta_seconds": error.recoveryETASeconds,
         "can_retry": error.canRetry, "should_wait": error.shouldWait]
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response.rawJSON(["detail": detailValue], status: status, headers: headers)
    }
}

/// Renders every other error the router throws (an unknown path, a body too
/// large, a malformed parameter) as `{"detail": ...}` too, so clients parse one shape.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            // FastAPI's wording for the cases a router meets, e.g. {"detail":"Not Found"}.
            throw APIError(error.status, .message(error.body ?? error.status.reasonPhrase), headers: error.headers)
        }
    }
}
