import EngineFleet
import Streams
import Foundation
import Hummingbird
import RelayCore
import Store

/// `GET /streams`, `GET /streams/{id}/stats` and (key) `DELETE /streams/{id}`.
struct StreamsController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("streams") { request, _ in
            try await streams(status: request.uri.queryParameters.get("status"),
                              containerID: request.uri.queryParameters.get("container_id"))
        }
        open.get("streams/:id/stats") { request, context in
            try await stats(id: Request.decoded(context.parameters.require("id")), since: request.uri.queryParameters.get("since"))
        }
        protected.delete("streams/:id") { _, context in
            try await stopStream(id: Request.decoded(context.parameters.require("id")))
        }
    }

    /// Streams read from the store per page of the answer (see `streams`).
    static let pageSize = 200

    /// The listing, written page by page as it is read. Ended streams stay for
    /// the stats retention (an hour by default), so a busy relay's listing reaches
    /// thousands of rows; built whole, each poll held megabytes of short-lived
    /// objects among the hubs' long-lived ones and the heap fragmented (the soak's
    /// RSS grew 11 % in an hour with live memory flat). A page is read before the
    /// status line goes out, so a store that cannot be read still answers 503;
    /// a later page that fails cuts the answer short, which a client sees as
    /// invalid JSON rather than as a shorter, wrong list.
    func streams(status text: String?, containerID: String?) async throws -> Response {
        var status: StreamStatus?
        if let text {
            guard let parsed = StreamStatus(rawValue: text) else { throw APIError.badRequest("status must be started or ended") }
            status = parsed
        }
        let listing = StreamListing(controller: self, status: status, containerID: containerID, hubs: openHubs())
        let first = try await listing.page(after: nil)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody { writer in
            try await listing.write(from: first, to: &writer)
        })
    }

    /// For a stream another proxy reported: why its URLs are not called, if they are not.
    func urlRefusal(_ stream: StreamRecord) -> String? {
        guard stream.origin == .external else { return nil }
        for (name, url) in [("stat_url", stream.statURL), ("command_url", stream.commandURL)] {
            if let url, !url.isEmpty, let refusal = plane.engineURLs.refusal(for: url) { return "\(name) not called: \(refusal)" }
        }
        return nil
    }

    /// The relay's open hubs by the stream id their session has.
    func openHubs() -> [String: HubSnapshot] {
        guard let relay = plane.relay else { return [:] }
        var hubs: [String: HubSnapshot] = [:]
        for hub in relay.status().hubs {
            if let session = hub.playbackSessionID { hubs[StreamRecord.streamID(key: hub.contentKey, playbackSessionID: session)] = hub }
        }
        return hubs
    }

    func stats(id: String, since: String?) async throws -> Response {
        var from: Date?
        if let since {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let parsed = formatter.date(from: since) ?? ISO8601DateFormatter().date(from: since) else {
                throw APIError.badRequest("since must be an ISO 8601 time with a time zone, e.g. 2026-01-01T12:00:00Z")
            }
            from = parsed
        }
        guard try await plane.store.stream(id: id) != nil else { throw APIError.notFound("no stream with id \(id)") }
        return .json(try await plane.store.samples(streamID: id, since: from, as: StatSample.self).map(StatSnapshotJSON.init))
    }

    /// Stops a stream on its engine. A relay stream's hub closes (its players are
    /// disconnected and the engine gets `stop`); another proxy's stream gets `stop`
    /// through its command URL.
    func stopStream(id: String) async throws -> Response {
        guard let stream = try await plane.store.stream(id: id) else { throw APIError.notFound("no stream with id \(id)") }
        guard stream.status == .started else { throw APIError.badRequest("stream \(id) already ended") }
        let refusal = ContentRefusal(status: 410, code: "stream_stopped", message: "the stream was stopped through the API")
        let closed = stream.origin == .relay && stream.contentKey.map { plane.relay?.closeHub(for: $0, refusal: refusal) ?? false } ?? false
        if !closed, let command = stream.commandURL, !command.isEmpty {
            // The relay's own sessions carry URLs already rewritten to their engine; only reported ones are checked.
            if stream.origin == .external, let refusal = plane.engineURLs.refusal(for: command) {
                throw APIError.badGateway("the stream's command_url is not called: \(refusal)")
            }
            if let failure = await EngineCommand.stop(commandURL: command) {
                throw APIError.badGateway("the engine did not stop the stream: \(failure)")
            }
        }
        _ = try await plane.store.endStream(id: id, reason: "stopped through the API")
        return .rawJSON(["message": "Stream stopped successfully", "stream_id": id])
    }
}

/// One `GET /streams` answer: the store's pages, each with its latest samples,
/// encoded as one JSON array.
private struct StreamListing: Sendable {
    let controller: StreamsController
    let status: StreamStatus?
    let containerID: String?
    let hubs: [String: HubSnapshot]

    func page(after cursor: StreamListCursor?) async throws -> [StreamRecord] {
        try await controller.plane.store.streams(status: status, containerID: containerID, after: cursor, limit: StreamsController.pageSize)
    }

    func write(from first: [StreamRecord], to writer: inout any ResponseBodyWriter) async throws {
        let encoder = JSONEncoder.api
        var page = first
        var separator = "["
        while true {
            let latest = try await controller.plane.store.latestSamples(streamIDs: page.map(\.id), as: StatSample.self)
            let rows = page.map { stream in
                StreamJSON(stream: stream, sample: latest[stream.id], hub: stream.status == .started ? hubs[stream.id] : nil,
                           urlRefusal: controller.urlRefusal(stream))
            }
            let elements = try encoder.arrayElements(rows)
            if !elements.isEmpty {
                var buffer = ByteBuffer(string: separator)
                buffer.writeBytes(elements)
                try await writer.write(buffer)
                separator = ","
            }
            guard page.count == StreamsController.pageSize, let last = page.last else { break }
            page = try await self.page(after: StreamListCursor(after: last))
        }
        try await writer.write(ByteBuffer(string: separator == "[" ? "[]" : "]"))
        try await writer.finish(nil)
    }
}
