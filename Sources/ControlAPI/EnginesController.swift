import EngineFleet
import Streams
import Foundation
import Hummingbird
import Store

/// `GET /engines` and `GET /engines/{container_id}`.
struct EnginesController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("engines") { _, _ in try await engines() }
        open.get("engines/:id") { _, context in try await engine(id: Request.decoded(context.parameters.require("id"))) }
    }

    func engines() async throws -> Response {
        let started = try await plane.store.streams(status: .started)
        let latest = try await plane.store.latestSamples(streamIDs: started.map(\.id), as: StatSample.self)
        let lastStarts = try await plane.store.lastStreamStarts()
        return .json(plane.fleet.engines.map { engine in
            EngineJSON(engine: engine, streams: started.filter { $0.containerID == engine.id }, latest: latest,
                       lastStreamStart: lastStarts[engine.id])
        })
    }

    func engine(id: String) async throws -> Response {
        guard let engine = plane.fleet.engine(id: id) else { throw APIError.notFound("no engine with container id \(id)") }
        let streams = try await plane.store.streams(status: .started, containerID: id)
        let latest = try await plane.store.latestSamples(streamIDs: streams.map(\.id), as: StatSample.self)
        let lastStarts = try await plane.store.lastStreamStarts()
        struct Body: Encodable { var engine: EngineJSON; var streams: [StreamJSON] }
        return .json(Body(engine: EngineJSON(engine: engine, streams: streams, latest: latest, lastStreamStart: lastStarts[id]),
                          streams: streams.map { StreamJSON(stream: $0, sample: latest[$0.id]) }))
    }
}
