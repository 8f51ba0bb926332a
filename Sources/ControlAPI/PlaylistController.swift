import Channels
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /channels.m3u`: every channel as a playlist pointing at the relay
/// (`?format=hls`: at its `.m3u8` form); and
/// the orchestrator's `GET /modify_m3u?m3u_url=&host=&port=&mode=&timeout=`,
/// which fetches a playlist and rewrites its engine URLs. Both open, as the
/// orchestrator's is.
struct PlaylistController: APIController {
    let plane: ControlPlane

    static let contentType = "audio/x-mpegurl"

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("channels.m3u") { request, _ in try await channelsPlaylist(request) }
        // Players and playlist tools send HEAD first; answer it with the same headers.
        open.head("channels.m3u") { request, _ in
            let full = try await channelsPlaylist(request)
            return Response(status: full.status, headers: full.headers)
        }
        open.get("modify_m3u") { request, _ in try await modify(request) }
    }

    func channelsPlaylist(_ request: Request) async throws -> Response {
        guard let channels = plane.channels else { throw APIError.unavailable("channels are not enabled") }
        let origin = relayOrigin(request)
        // TS by default; HLS-only players (Apple devices, browsers) ask for the `.m3u8` form.
        let suffix = request.uri.queryParameters.get("format") == "hls" ? ".m3u8" : ""
        let items = try await channels.channels().compactMap { channel -> M3UWriter.Item? in
            // The channel, not its best source: the relay fails over between its sources on the same connection.
            guard !channel.sources.isEmpty else { return nil }
            return M3UWriter.Item(name: channel.record.name, url: origin + "/ace/channel/" + channel.id + suffix, tvgID: channel.record.tvgID,
                                  tvgLogo: channel.record.logo, groupTitle: channel.record.groupTitle)
        }
        return playlist(M3UWriter.render(items), filename: "channels.m3u")
    }

    /// `ACERELAY_PUBLIC_URL`, else `http://<the request's host>:<stream port>`.
    func relayOrigin(_ request: Request) -> String {
        if let configured = plane.playlists.publicURL, !configured.isEmpty {
            var origin = configured
            while origin.hasSuffix("/") { origin.removeLast() }
            return origin
        }
        let host = request.head.authority.map { authority -> String in
            if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") { return String(authority[...end]) }
            return authority.split(separator: ":").first.map(String.init) ?? authority
        } ?? "127.0.0.1"
        return "http://\(host):\(plane.streamPort())"
    }

    /// Checks the parameters in the orchestrator's order and with its messages.
    func modify(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let missing = ["m3u_url", "host", "port"].filter { query.get($0) == nil }
        if !missing.isEmpty {
            // FastAPI's answer to a missing required query parameter.
            let detail = missing.map { ["type": "missing", "loc": ["query", $0], "msg": "Field required", "input": NSNull()] as [String: Any] }
            return .rawJSON(["detail": detail], status: .init(code: 422, reasonPhrase: "Unprocessable Entity"))
        }
        let mode = query.get("mode") ?? "default"
        guard M3URewriter.Mode(rawValue: mode) != nil else {
            throw APIError.badRequest("Parameter 'mode' must be 'default' or 'proxy'.")
        }
        var timeout = plane.playlists.fetchTimeout
        if let text = query.get("timeout") {
            guard let seconds = Double(text), seconds > 0, seconds.isFinite else {
                throw APIError.badRequest("Parameter 'timeout' must be a positive number.")
            }
            // A caller may shorten the wait, not hold a fetch open for longer than the operator allows.
            timeout = min(.milliseconds(Int64(seconds * 1000)), timeout)
        }
        let rewriter: M3URewriter
        do {
            rewriter = try M3URewriter(host: (query.get("host") ?? "").trimmingCharacters(in: .whitespaces),
                                       port: (query.get("port") ?? "").trimmingCharacters(in: .whitespaces), mode: mode)
        } catch {
            throw APIError.badRequest(error.description)
        }
        switch await PlaylistFetcher(timeout: timeout).fetch(query.get("m3u_url") ?? "") {
        case .success(let text):
            return playlist(rewriter.rewrite(text), filename: "modified_playlist.m3u")
        case .failure(let failure):
            throw APIError.badRequest("Failed to download the M3U file. \(failure.description)")
        }
    }

    private func playlist(_ text: String, filename: String) -> Response {
        Response(status: .ok, headers: [.contentType: Self.contentType, .contentDisposition: "attachment; filename=\"\(filename)\""],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
