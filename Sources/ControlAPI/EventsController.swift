import EngineFleet
import Streams
import Foundation
import Hummingbird
import Store

/// (key) `POST /events/stream_started` and `POST /events/stream_ended`: the
/// engine sessions other proxies open and close, recorded as streams.
struct EventsController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        protected.post("events/stream_started") { request, _ in
            try await streamStarted(request.decodeJSON(StreamStartedBody.self))
        }
        protected.post("events/stream_ended") { request, _ in
            try await streamEnded(request.decodeJSON(StreamEndedBody.self))
        }
    }

    func streamStarted(_ body: StreamStartedBody) async throws -> Response {
        try body.validate()
        let engine = engine(for: body)
        // As the orchestrator: a known engine's id, else what the proxy gave, else host:port.
        let containerID = engine?.id ?? body.containerID.flatMap { $0.isEmpty ? nil : $0 }
            ?? body.engine.map { "\($0.host):\($0.port)" } ?? ""
        let id = body.labels?["stream_id"]
            ?? StreamRecord.streamID(key: body.stream.key, playbackSessionID: body.session.playbackSessionID)
        let record = StreamRecord(id: id, keyType: body.stream.keyType, key: body.stream.key, containerID: containerID,
                                  containerName: engine?.name, playbackSessionID: body.session.playbackSessionID,
                                  statURL: body.session.statURL, commandURL: body.session.commandURL,
                                  isLive: (body.session.isLive ?? 1) != 0, origin: .external)
        try await plane.store.saveStream(record)
        return .json(StreamJSON(stream: record, urlRefusal: StreamsController(plane: plane).urlRefusal(record)))
    }

    /// The fleet engine the event is about: by `container_id` when that is an
    /// engine's, else by `engine.host` and `engine.port` (proxies often put
    /// their own name in `container_id`, or leave it out).
    private func engine(for body: StreamStartedBody) -> FleetEngine? {
        if let id = body.containerID, let engine = plane.fleet.engine(id: id) { return engine }
        guard let address = body.engine else { return nil }
        return plane.fleet.engines.first { $0.port == address.port && $0.host.lowercased() == address.host.lowercased() }
    }

    func streamEnded(_ body: StreamEndedBody) async throws -> Response {
        guard let stream = try await plane.store.endStream(id: body.streamID, reason: body.reason) else {
            throw APIError.notFound("no stream with id \(body.streamID)")
        }
        struct Ended: Encodable { var updated: Bool; var stream: StreamJSON }
        return .json(Ended(updated: true, stream: StreamJSON(stream: stream)))
    }
}
