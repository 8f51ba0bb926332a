import Channels
import Foundation
import Hummingbird
import NIOCore
import Store

/// `GET /channels`, `GET /channels/{id}`, `GET /channels/{id}/scores?since=`,
/// and (key) `POST /channels`, `PATCH`/`DELETE /channels/{id}`,
/// `POST /channels/import` (an M3U body, or `{"url": ...}` to fetch one).
struct ChannelsController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("channels") { _, _ in try await list() }
        open.get("channels/:id") { _, context in try await show(id: context.parameters.require("id")) }
        open.get("channels/:id/scores") { request, context in
            try await scores(id: context.parameters.require("id"), since: request.uri.queryParameters.get("since"))
        }
        protected.post("channels") { request, _ in try await create(request) }
        protected.patch("channels/:id") { request, context in try await update(id: context.parameters.require("id"), request) }
        protected.delete("channels/:id") { _, context in try await delete(id: context.parameters.require("id")) }
        protected.post("channels/import") { request, _ in try await importPlaylist(request) }
    }

    /// `POST /channels` and `PATCH /channels/{id}` bodies.
    struct ChannelBody: Decodable {
        var name: String?
        var group: String?
        var tvgID: String?
        var logo: String?
        var sources: [String]?

        enum CodingKeys: String, CodingKey {
            case name, group, tvgID = "tvg_id", logo, sources
        }

        var sourceRecords: [ChannelSourceRecord]? { sources?.map { ChannelSourceRecord(contentID: $0) } }
    }

    struct ImportBody: Decodable {
        var url: String
    }

    private func service() throws -> ChannelService {
        guard let channels = plane.channels else { throw APIError.unavailable("channels are not enabled") }
        return channels
    }

    func list() async throws -> Response {
        ChannelJSON.response(try await service().channels().map { ChannelJSON.channel($0, playback: plane.relay?.channelPlayback($0.id)) })
    }

    func show(id: String) async throws -> Response {
        guard let channel = try await service().channel(id: id) else { throw APIError.notFound("no channel with id \(id)") }
        return ChannelJSON.response(ChannelJSON.channel(channel, playback: plane.relay?.channelPlayback(id)))
    }

    func scores(id: String, since: String?) async throws -> Response {
        var from: Date?
        if let since {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let parsed = formatter.date(from: since) ?? ISO8601DateFormatter().date(from: since) else {
                throw APIError.badRequest("since must be an ISO 8601 time with a time zone, e.g. 2026-01-01T12:00:00Z")
            }
            from = parsed
        }
        guard let history = try await service().history(channelID: id, since: from) else {
            throw APIError.notFound("no channel with id \(id)")
        }
        return ChannelJSON.response(history.map(ChannelJSON.history))
    }

    func create(_ request: Request) async throws -> Response {
        let channels = try service()
        let body = try await request.decodeJSON(ChannelBody.self)
        guard let name = body.name else { throw APIError.badRequest("invalid JSON body: missing field name") }
        do {
            let channel = try await channels.create(ChannelDraft(name: name, groupTitle: body.group, tvgID: body.tvgID, logo: body.logo,
                                                                 origin: .api, sources: body.sourceRecords ?? []))
            return ChannelJSON.response(ChannelJSON.channel(channel), status: .created)
        } catch let error as ChannelValidationError {
            throw APIError.badRequest(error.description)
        }
    }

    func update(id: String, _ request: Request) async throws -> Response {
        let channels = try service()
        let body = try await request.decodeJSON(ChannelBody.self)
        do {
            let patch = ChannelPatch(name: body.name, groupTitle: body.group, tvgID: body.tvgID, logo: body.logo, sources: body.sourceRecords)
            guard let channel = try await channels.update(id: id, patch) else { throw APIError.notFound("no channel with id \(id)") }
            return ChannelJSON.response(ChannelJSON.channel(channel))
        } catch let error as ChannelValidationError {
            throw APIError.badRequest(error.description)
        }
    }

    func delete(id: String) async throws -> Response {
        guard try await service().delete(id: id) else { throw APIError.notFound("no channel with id \(id)") }
        return .rawJSON(["message": "Channel deleted", "id": id])
    }

    /// A JSON body names a playlist to fetch; any other body is the playlist itself.
    func importPlaylist(_ request: Request) async throws -> Response {
        let channels = try service()
        let text: String
        if request.headers[.contentType]?.lowercased().contains("json") == true {
            let body = try await request.decodeJSON(ImportBody.self)
            switch await PlaylistFetcher(timeout: plane.playlists.fetchTimeout).fetch(body.url) {
            case .success(let fetched): text = fetched
            case .failure(let failure):
                // A URL that cannot be fetched is the caller's mistake; a server that answers wrongly is not.
                if case .notHTTP = failure { throw APIError.badRequest(failure.description) }
                throw APIError.badGateway(failure.description)
            }
        } else {
            let buffer: ByteBuffer
            do { buffer = try await request.body.collect(upTo: PlaylistFetcher.maxBytes) } catch {
                throw APIError(.contentTooLarge, .message("the playlist is larger than \(PlaylistFetcher.maxBytes >> 20) MiB"))
            }
            text = String(decoding: buffer.readableBytesView, as: UTF8.self)
        }
        let playlist: M3UImport
        do { playlist = try M3UImport(text: text) } catch { throw APIError.badRequest(error.description) }
        let summary = try await channels.importPlaylist(playlist)
        return ChannelJSON.response([
            "channels_created": summary.channelsCreated, "channels_updated": summary.channelsUpdated,
            "sources_added": summary.sourcesAdded,
            "skipped": summary.skipped.map { ["line": $0.line, "reason": $0.reason] as [String: Any] },
        ])
    }
}
