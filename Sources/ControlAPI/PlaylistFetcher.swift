import CurlHTTP
import Foundation

/// Fetches a playlist someone named by URL (`POST /channels/import`,
/// `/modify_m3u`): http and https only, `M3U_TIMEOUT` in all, at most 8 MiB,
/// and no redirects — a redirect could lead the fetch anywhere, so it is
/// reported with its target for the caller to use directly.
struct PlaylistFetcher: Sendable {
    /// The largest playlist taken; big IPTV lists are a few MiB.
    static let maxBytes = 8 << 20

    let timeout: Duration
    var client: HTTPClient = .shared

    /// Why no playlist came back, in one line.
    enum Failure: Error, Equatable, CustomStringConvertible {
        case notHTTP(String)
        case redirected(status: Int, location: String)
        case status(Int)
        case tooLarge
        case transport(String)

        var description: String {
            switch self {
            case .notHTTP(let url): "the playlist URL must start with http:// or https://, not \"\(url.prefix(60))\""
            case let .redirected(status, location):
                "the playlist server answered \(status) redirecting to \(location.prefix(200)); use that URL instead (redirects are not followed)"
            case .status(let status): "the playlist server answered HTTP \(status)"
            case .tooLarge: "the playlist is larger than \(PlaylistFetcher.maxBytes >> 20) MiB"
            case .transport(let reason): "cannot fetch the playlist: \(reason)"
            }
        }
    }

    /// The playlist's text (invalid UTF-8 replaced), or why not.
    func fetch(_ url: String) async -> Result<String, Failure> {
        let trimmed = url.trimmingCharacters(in: .whitespaces)
        let scheme = trimmed.split(separator: ":", maxSplits: 1).first?.lowercased()
        guard scheme == "http" || scheme == "https", trimmed.contains("://") else { return .failure(.notHTTP(trimmed)) }
        let request = HTTPRequest(url: trimmed, connectTimeout: min(timeout, .seconds(5)), timeout: timeout,
                                  maxBodyBytes: Self.maxBytes, maxRedirects: 0, userAgent: "acerelay")
        switch await client.send(request) {
        case .success(let response):
            if (300..<400).contains(response.status) {
                return .failure(.redirected(status: response.status, location: response.header("Location") ?? "(no Location)"))
            }
            guard (200..<300).contains(response.status) else { return .failure(.status(response.status)) }
            return .success(String(decoding: response.body, as: UTF8.self))
        case .failure(.bodyTooLarge):
            return .failure(.tooLarge)
        case .failure(let error):
            return .failure(.transport(error.description))
        }
    }
}
