import Foundation

/// `API_KEY`, and the one rule for comparing what a caller presents with it, shared by
/// the control API's middleware and the stream port's `/ace/status`.
public struct APIKey: Sendable, Equatable {
    private let bytes: [UInt8]

    /// Nil for an empty key: authentication is off.
    public init?(_ key: String?) {
        guard let key, !key.isEmpty else { return nil }
        bytes = Array(key.utf8)
    }

    /// Whether `presented` is the key; compared without returning early, so timing does
    /// not reveal how much of the key matched.
    public func matches(_ presented: String) -> Bool {
        let given = Array(presented.utf8)
        var difference = UInt8(truncatingIfNeeded: given.count ^ bytes.count)
        for i in 0..<max(given.count, bytes.count) {
            difference |= (i < given.count ? given[i] : 0) ^ (i < bytes.count ? bytes[i] : 0)
        }
        return difference == 0
    }
}

extension APIKey {
    /// Whether a request on the stream port presents the key: `X-API-Key`, `?api_key=`, or
    /// `Authorization: Bearer`, as the control API takes it.
    func admits(_ head: HTTPRequestHead) -> Bool {
        var presented: [String] = []
        if let header = head.header("x-api-key") { presented.append(header) }
        if let query = head.query("api_key") { presented.append(query) }
        if let authorization = head.header("authorization") {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { presented.append(String(parts[1])) }
        }
        return presented.contains { matches($0.trimmingCharacters(in: .whitespaces)) }
    }
}
