import HTTPTypes
import Hummingbird

/// Guards the protected route group: with `API_KEY` set, a request needs
/// `Authorization: Bearer <key>` or `X-API-Key: <key>`; else 401 (none given)
/// or 403 (a wrong one), in the orchestrator's words.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let check: APIKeyCheck

    static var apiKeyHeader: HTTPField.Name { HTTPField.Name("X-API-Key")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch check.check(authorization: request.headers[.authorization], apiKeyHeader: request.headers[Self.apiKeyHeader]) {
        case .allowed: return try await next(request, context)
        case .missing: throw APIError.missingToken
        case .invalid: throw APIError.invalidToken
        }
    }
}
