import EngineFleet
import Streams
import Foundation
import Hummingbird

/// `GET /looping-streams`, (key) `DELETE /looping-streams/{id}`, (key)
/// `POST /looping-streams/clear`, and `GET`/(key) `POST /stream-loop-detection/config`.
struct LoopingStreamsController: APIController {
    let plane: ControlPlane

    func register(open: RouterGroup<APIContext>, protected: RouterGroup<APIContext>) {
        open.get("looping-streams") { _, _ in try loopingStreams() }
        protected.delete("looping-streams/:id") { _, context in try await removeLooping(id: context.parameters.require("id")) }
        protected.post("looping-streams/clear") { _, _ in try await clearLooping() }
        open.get("stream-loop-detection/config") { _, _ in try Response.json(detector().config) }
        protected.post("stream-loop-detection/config") { request, _ in try await updateConfig(request) }
    }

    private func detector() throws -> LoopDetector {
        guard let loops = plane.loops else { throw APIError.unavailable("loop detection is not running") }
        return loops
    }

    func loopingStreams() throws -> Response {
        let loops = try detector()
        let looping = loops.looping
        let formatter = ISO8601DateFormatter()
        return .rawJSON(["stream_ids": looping.keys.sorted(),
                         "streams": looping.mapValues { formatter.string(from: $0) },
                         "retention_minutes": loops.config.retentionMinutes])
    }

    func removeLooping(id: String) async throws -> Response {
        guard try await detector().remove(id) else { throw APIError.notFound("\(id) is not in the looping list") }
        return .rawJSON(["message": "Stream removed from looping list", "stream_id": id])
    }

    func clearLooping() async throws -> Response {
        try await detector().clear()
        return .rawJSON(["message": "All looping streams cleared"])
    }

    /// Takes the settings as query parameters, as the orchestrator does.
    func updateConfig(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let loops = try detector()
        var config = loops.config
        if let text = query.get("enabled") {
            switch text.lowercased() {
            case "true", "1", "yes": config.enabled = true
            case "false", "0", "no": config.enabled = false
            default: throw APIError.badRequest("enabled must be true or false")
            }
        }
        for (name, minimum, path) in [("threshold_seconds", 60, \LoopDetectionConfig.thresholdSeconds),
                                      ("check_interval_seconds", 5, \LoopDetectionConfig.checkIntervalSeconds),
                                      ("retention_minutes", 0, \LoopDetectionConfig.retentionMinutes)] {
            guard let text = query.get(name) else { continue }
            guard let value = Int(text), value >= minimum else {
                throw APIError.badRequest("\(name) must be a whole number of at least \(minimum)")
            }
            config[keyPath: path] = value
        }
        try await loops.update(config)
        return .json(config)
    }
}
