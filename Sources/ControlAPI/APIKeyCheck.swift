import RelayCore

/// The orchestrator's API key rule: with `API_KEY` set, mutating routes need
/// `Authorization: Bearer <key>` or `X-API-Key: <key>` (the latter first when both are given).
struct APIKeyCheck: Sendable {
    enum Outcome: Equatable { case allowed, missing, invalid }

    let key: String?

    func check(authorization: String?, apiKeyHeader: String?) -> Outcome {
        guard let key, !key.isEmpty else { return .allowed }
        // An empty or blank header is no key at all: it must not mask a valid bearer token.
        var presented = apiKeyHeader.map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        if presented == nil, let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { presented = String(parts[1]).trimmingCharacters(in: .whitespaces) }
        }
        guard let presented, !presented.isEmpty else { return .missing }
        return APIKey(key)?.matches(presented) == true ? .allowed : .invalid
    }
}
