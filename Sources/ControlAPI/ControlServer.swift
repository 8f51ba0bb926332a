import EngineFleet
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RelayCore
import Store
import Streams
import Synchronization

/// What the control API reads and drives. Plain values and the control-plane
/// objects the app composed; any of the optional parts may be absent (no
/// Docker: no provisioning).
public struct ControlPlane: Sendable {
    public var fleet: EngineFleet
    public var provisioner: EngineProvisioner?
    public var store: Store
    public var relay: RelayServer?
    /// Loop detection; nil when the app runs without it.
    public var loops: LoopDetector?
    /// Prometheus metrics; nil serves no `/metrics`.
    public var metrics: MetricsExporter?
    /// `API_KEY`; nil or empty turns authentication off.
    public var apiKey: String?
    public var version: String
    /// Stream port players use, for the `/ace/getstream` redirect.
    public var streamPort: @Sendable () -> UInt16

    public init(fleet: EngineFleet, provisioner: EngineProvisioner?, store: Store, relay: RelayServer?, loops: LoopDetector? = nil,
                metrics: MetricsExporter? = nil, apiKey: String?, version: String, streamPort: @escaping @Sendable () -> UInt16) {
        self.fleet = fleet
        self.loops = loops
        self.metrics = metrics
        self.provisioner = provisioner
        self.store = store
        self.relay = relay
        self.apiKey = apiKey
        self.version = version
        self.streamPort = streamPort
    }
}

/// The control port: the orchestrator's REST API (every route also under
/// `/api/v1`), JSON errors as `{"detail": ...}`, and a redirect of
/// `/ace/getstream` to the stream port for playlists that point here.
public enum ControlServer {
    /// Builds the HTTP application; run it as a service. `onListening` gets the bound port.
    public static func application(plane: ControlPlane, host: String, port: Int, logger: Logger,
                                   onListening: @escaping @Sendable (Int) -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        let api = Routes(plane: plane, auth: APIKeyCheck(key: plane.apiKey))
        for prefix in ["", "/api/v1"] { api.register(on: router, prefix: prefix) }
        router.get("/metrics") { _, _ in await api.metrics() }
        router.get("/ace/getstream") { request, _ in api.redirectToStreamPort(request) }
        router.head("/ace/getstream") { request, _ in api.redirectToStreamPort(request) }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "acerelay"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}

/// The route handlers, grouped so both prefixes share them.
struct Routes: Sendable {
    let plane: ControlPlane
    let auth: APIKeyCheck

    func register(on router: Router<BasicRequestContext>, prefix: String) {
        router.get("\(prefix)/engines") { _, _ in try await engines() }
        router.get("\(prefix)/engines/:id") { _, context in try await engine(id: context.parameters.require("id")) }
        router.get("\(prefix)/streams") { request, _ in
            try await streams(status: request.uri.queryParameters.get("status"),
                              containerID: request.uri.queryParameters.get("container_id"))
        }
        router.get("\(prefix)/streams/:id/stats") { request, context in
            // Stream ids hold a "|", which clients send percent-encoded.
            let id = try context.parameters.require("id")
            return try await stats(id: id.removingPercentEncoding ?? id, since: request.uri.queryParameters.get("since"))
        }
        router.delete("\(prefix)/streams/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await authorized(request) { try await stopStream(id: id.removingPercentEncoding ?? id) }
        }
        router.get("\(prefix)/orchestrator/status") { _, _ in try await orchestratorStatus() }
        router.get("\(prefix)/health/status") { _, _ in healthStatus() }
        router.get("\(prefix)/version") { _, _ in
            json(["version": plane.version, "name": "acerelay", "api": "acestream-orchestrator-compatible"])
        }
        router.post("\(prefix)/events/stream_started") { request, _ in
            try await authorized(request) { try await streamStarted(request) }
        }
        router.post("\(prefix)/events/stream_ended") { request, _ in
            try await authorized(request) { try await streamEnded(request) }
        }
        router.post("\(prefix)/provision/acestream") { request, _ in
            try await authorized(request) { try await provision(request) }
        }
        router.post("\(prefix)/provision") { request, _ in
            try await authorized(request) { try await provision(request) }
        }
        router.get("\(prefix)/looping-streams") { _, _ in loopingStreams() }
        router.delete("\(prefix)/looping-streams/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await authorized(request) { await removeLooping(id: id) }
        }
        router.post("\(prefix)/looping-streams/clear") { request, _ in
            try await authorized(request) { await clearLooping() }
        }
        router.get("\(prefix)/stream-loop-detection/config") { _, _ in loopConfig() }
        router.post("\(prefix)/stream-loop-detection/config") { request, _ in
            try await authorized(request) { try await updateLoopConfig(request) }
        }
        router.delete("\(prefix)/containers/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await authorized(request) { try await removeContainer(id: id) }
        }
    }

    // MARK: Reading

    private func streamIDs(for engineID: String, in streams: [StreamRecord]) -> [String] {
        streams.filter { $0.containerID == engineID }.map(\.id)
    }

    func engines() async throws -> Response {
        let started = try await plane.store.streams(status: "started")
        let latest = try await plane.store.latestSamples(streamIDs: started.map(\.id), as: StatSample.self)
        return json(plane.fleet.engines.map { engine in
            let ids = streamIDs(for: engine.id, in: started)
            return EngineJSON(engine: engine, streamIDs: ids, samples: ids.compactMap { latest[$0] })
        })
    }

    func engine(id: String) async throws -> Response {
        guard let engine = plane.fleet.engine(id: id) else {
            return detail(.notFound, "no engine with container id \(id)")
        }
        let streams = try await plane.store.streams(status: "started", containerID: id)
        let latest = try await plane.store.latestSamples(streamIDs: streams.map(\.id), as: StatSample.self)
        struct Body: Encodable { var engine: EngineJSON; var streams: [StreamJSON] }
        return json(Body(engine: EngineJSON(engine: engine, streamIDs: streams.map(\.id), samples: streams.compactMap { latest[$0.id] }),
                         streams: streams.map { StreamJSON(stream: $0, sample: latest[$0.id]) }))
    }

    func streams(status: String?, containerID: String?) async throws -> Response {
        if let status, status != "started", status != "ended" {
            return detail(.badRequest, "status must be started or ended")
        }
        let streams = try await plane.store.streams(status: status, containerID: containerID)
        let latest = try await plane.store.latestSamples(streamIDs: streams.map(\.id), as: StatSample.self)
        let hubs = openHubs()
        return json(streams.map { stream in
            StreamJSON(stream: stream, sample: latest[stream.id],
                       hub: stream.status == "started" ? hubs[stream.key + "|" + stream.playbackSessionID] : nil)
        })
    }

    /// The relay's open hubs by `"<key>|<playback_session_id>"`, the stream id's shape.
    private func openHubs() -> [String: HubSnapshot] {
        guard let relay = plane.relay else { return [:] }
        var hubs: [String: HubSnapshot] = [:]
        for hub in relay.status().hubs {
            if let session = hub.playbackSessionID { hubs[hub.contentKey + "|" + session] = hub }
        }
        return hubs
    }

    func stats(id: String, since: String?) async throws -> Response {
        var from: Date?
        if let since {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let parsed = formatter.date(from: since) ?? ISO8601DateFormatter().date(from: since) else {
                return detail(.badRequest, "since must be an ISO 8601 time with a time zone, e.g. 2026-01-01T12:00:00Z")
            }
            from = parsed
        }
        guard try await plane.store.stream(id: id) != nil else { return detail(.notFound, "no stream with id \(id)") }
        return json(try await plane.store.samples(streamID: id, since: from, as: StatSample.self).map(StatSnapshotJSON.init))
    }

    func healthStatus() -> Response {
        let engines = plane.fleet.engines
        func count(_ health: EngineHealth) -> Int { engines.filter { $0.health.status == health }.count }
        struct EngineHealthJSON: Encodable {
            var container_id: String
            var health_status: String
            var last_health_check: Date?
            var consecutive_failures: Int
        }
        struct Body: Encodable {
            var total: Int, healthy: Int, unhealthy: Int, unknown: Int
            var engines: [EngineHealthJSON]
        }
        return json(Body(total: engines.count, healthy: count(.healthy), unhealthy: count(.unhealthy), unknown: count(.unknown),
                         engines: engines.map { EngineHealthJSON(container_id: $0.id, health_status: $0.health.status.rawValue,
                                                                  last_health_check: $0.health.lastCheck,
                                                                  consecutive_failures: $0.health.consecutiveFailures) }))
    }

    func orchestratorStatus() async throws -> Response {
        let engines = plane.fleet.engines
        let active = try await plane.store.streams(status: "started").count
        let total = try await plane.store.streams().count
        let healthy = engines.filter { $0.health.status == .healthy }.count
        let unhealthy = engines.filter { $0.health.status == .unhealthy }.count
        let perEngine = plane.provisioner?.configuration.maxStreamsPerEngine ?? 0
        let capacity = perEngine > 0 ? engines.filter { $0.health.status != .unhealthy }.count * perEngine : 0
        let used = engines.reduce(0) { $0 + $1.load }
        let provisioning = plane.provisioner?.status()
        let blocked = provisioning?.blocked ?? (plane.provisioner == nil
            ? ProvisioningError(code: "general_error", message: "no Docker daemon configured: engines are static", recoveryETASeconds: 0, canRetry: false, shouldWait: false)
            : nil)
        let state = engines.isEmpty ? "unavailable" : (healthy == engines.count ? "healthy" : (healthy > 0 ? "degraded" : "unavailable"))
        let body: [String: Any] = [
            "status": state,
            "engines": ["total": engines.count, "running": engines.count, "healthy": healthy, "unhealthy": unhealthy],
            "streams": ["active": active, "total": total],
            "capacity": ["total": capacity, "used": used, "available": max(capacity - used, 0),
                         "max_replicas": plane.provisioner?.configuration.maxReplicas ?? engines.count,
                         "min_replicas": plane.provisioner?.configuration.minReplicas ?? 0],
            "vpn": ["enabled": false, "connected": false, "health": "unknown", "container": NSNull(), "forwarded_port": NSNull()],
            "provisioning": [
                "can_provision": provisioning?.canProvision ?? false,
                "circuit_breaker": provisioning?.breaker.rawValue ?? "closed",
                "blocked_reason": blocked?.message ?? NSNull(),
                "blocked_reason_details": blocked.map { structured($0) } ?? NSNull(),
            ],
            "timestamp": ISO8601DateFormatter().string(from: Date()),
        ]
        return rawJSON(body)
    }

    // MARK: Changing

    /// A decoded body, or the 400 to answer instead.
    enum Decoded<Body> {
        case success(Body)
        case failure(Response)
    }

    private func decode<Body: Decodable>(_ type: Body.Type, from request: Request) async throws -> Decoded<Body> {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        do {
            return .success(try JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)))
        } catch let error as DecodingError {
            return .failure(detail(.badRequest, "invalid JSON body: \(Self.describe(error))"))
        } catch {
            return .failure(detail(.badRequest, "invalid JSON body"))
        }
    }

    func streamStarted(_ request: Request) async throws -> Response {
        let body: StreamStartedBody
        switch try await decode(StreamStartedBody.self, from: request) {
        case .success(let decoded): body = decoded
        case .failure(let response): return response
        }
        let id = body.labels?["stream_id"] ?? "\(body.stream.key)|\(body.session.playbackSessionID)"
        let record = StreamRecord(id: id, keyType: body.stream.keyType, key: body.stream.key, containerID: body.containerID,
                                  containerName: plane.fleet.engine(id: body.containerID)?.name,
                                  playbackSessionID: body.session.playbackSessionID, statURL: body.session.statURL,
                                  commandURL: body.session.commandURL, isLive: (body.session.isLive ?? 1) != 0, origin: "api")
        try await plane.store.saveStream(record)
        return json(StreamJSON(stream: record))
    }

    func streamEnded(_ request: Request) async throws -> Response {
        let body: StreamEndedBody
        switch try await decode(StreamEndedBody.self, from: request) {
        case .success(let decoded): body = decoded
        case .failure(let response): return response
        }
        guard let stream = try await plane.store.endStream(id: body.streamID, reason: body.reason) else {
            return detail(.notFound, "no stream with id \(body.streamID)")
        }
        struct Ended: Encodable { var updated: Bool; var stream: StreamJSON }
        return json(Ended(updated: true, stream: StreamJSON(stream: stream)))
    }

    func provision(_ request: Request) async throws -> Response {
        guard let provisioner = plane.provisioner else {
            return rawJSON(["detail": structured(ProvisioningError(code: "general_error", message: "no Docker daemon configured: set DOCKER_HOST to provision engines", recoveryETASeconds: 0, canRetry: false, shouldWait: false))], status: .serviceUnavailable)
        }
        let body: ProvisionBody
        switch try await decode(ProvisionBody.self, from: request) {
        case .success(let decoded): body = decoded
        case .failure(let response): return response
        }
        do {
            let engine = try await provisioner.provision(labels: body.labels ?? [:], environment: body.env ?? [:],
                                                         hostPort: body.hostPort, image: body.image)
            return rawJSON(["container_id": engine.containerID, "container_name": engine.containerName,
                            "host_http_port": engine.hostHTTPPort, "container_http_port": engine.containerHTTPPort,
                            "container_https_port": engine.containerHTTPSPort.map { $0 as Any } ?? NSNull()])
        } catch {
            return rawJSON(["detail": structured(error)], status: .serviceUnavailable,
                           headers: [.retryAfter: String(max(error.recoveryETASeconds, 1))])
        }
    }

    func removeContainer(id: String) async throws -> Response {
        guard let provisioner = plane.provisioner else {
            return detail(.serviceUnavailable, "no Docker daemon configured: set DOCKER_HOST to manage containers")
        }
        guard plane.fleet.engine(id: id)?.managed ?? true else {
            return detail(.badRequest, "\(id) is a static engine, not a container acerelay manages")
        }
        do {
            try await provisioner.remove(containerID: id, reason: "removed through the API")
        } catch {
            return detail(.serviceUnavailable, error.description)
        }
        return json(["message": "Container stopped and removed", "container_id": id])
    }

    /// Stops a stream on its engine. A relay stream's hub closes (its players are
    /// disconnected and the engine gets `stop`); another proxy's stream gets `stop`
    /// through its command URL.
    func stopStream(id: String) async throws -> Response {
        guard let stream = try await plane.store.stream(id: id) else { return detail(.notFound, "no stream with id \(id)") }
        guard stream.status == "started" else { return detail(.badRequest, "stream \(id) already ended") }
        let key = ContentKey(kind: stream.keyType == ContentKey.Kind.infohash.rawValue ? .infohash : .contentID, value: stream.key)
        let closed = stream.origin == "relay" && key.map {
            plane.relay?.closeHub(for: $0, refusal: ContentRefusal(status: 410, code: "stream_stopped", message: "the stream was stopped through the API")) ?? false
        } ?? false
        if !closed, let command = stream.commandURL, !command.isEmpty {
            let answer = await EngineCommand.stop(commandURL: command)
            if let failure = answer { return detail(.badGateway, "the engine did not stop the stream: \(failure)") }
        }
        _ = try await plane.store.endStream(id: id, reason: "stopped through the API")
        return rawJSON(["message": "Stream stopped successfully", "stream_id": id])
    }

    func metrics() async -> Response {
        guard let exporter = plane.metrics else { return detail(.notFound, "metrics are not enabled") }
        let text = await exporter.render(plane: plane)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }

    // MARK: Loop detection

    private var noLoopDetection: Response { detail(.serviceUnavailable, "loop detection is not running") }

    func loopingStreams() -> Response {
        guard let loops = plane.loops else { return noLoopDetection }
        let looping = loops.looping
        let formatter = ISO8601DateFormatter()
        return rawJSON(["stream_ids": looping.keys.sorted(),
                        "streams": looping.mapValues { formatter.string(from: $0) },
                        "retention_minutes": loops.config.retentionMinutes])
    }

    func removeLooping(id: String) async -> Response {
        guard let loops = plane.loops else { return noLoopDetection }
        guard await loops.remove(id) else { return detail(.notFound, "\(id) is not in the looping list") }
        return rawJSON(["message": "Stream removed from looping list", "stream_id": id])
    }

    func clearLooping() async -> Response {
        guard let loops = plane.loops else { return noLoopDetection }
        await loops.clear()
        return rawJSON(["message": "All looping streams cleared"])
    }

    func loopConfig() -> Response {
        guard let loops = plane.loops else { return noLoopDetection }
        return json(loops.config)
    }

    /// Takes the settings as query parameters, as the orchestrator does.
    func updateLoopConfig(_ request: Request) async throws -> Response {
        guard let loops = plane.loops else { return noLoopDetection }
        var config = loops.config
        let query = request.uri.queryParameters
        if let text = query.get("enabled") {
            switch text.lowercased() {
            case "true", "1", "yes": config.enabled = true
            case "false", "0", "no": config.enabled = false
            default: return detail(.badRequest, "enabled must be true or false")
            }
        }
        for (name, minimum, path) in [("threshold_seconds", 60, \LoopDetectionConfig.thresholdSeconds),
                                      ("check_interval_seconds", 5, \LoopDetectionConfig.checkIntervalSeconds),
                                      ("retention_minutes", 0, \LoopDetectionConfig.retentionMinutes)] {
            guard let text = query.get(name) else { continue }
            guard let value = Int(text), value >= minimum else {
                return detail(.badRequest, "\(name) must be a whole number of at least \(minimum)")
            }
            config[keyPath: path] = value
        }
        try await loops.update(config)
        return json(config)
    }

    func redirectToStreamPort(_ request: Request) -> Response {
        let host = request.head.authority.map { authority -> String in
            if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") { return String(authority[...end]) }
            return authority.split(separator: ":").first.map(String.init) ?? authority
        } ?? "127.0.0.1"
        let target = "http://\(host):\(plane.streamPort())\(request.uri.string)"
        return Response(status: .temporaryRedirect, headers: [.location: target])
    }

    // MARK: Helpers

    func authorized(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        let apiKeyName = HTTPField.Name("X-API-Key")!
        switch auth.check(authorization: request.headers[.authorization], apiKeyHeader: request.headers[apiKeyName]) {
        case .allowed: return try await body()
        case .missing: return detail(.unauthorized, "missing bearer token", headers: [.wwwAuthenticate: "Bearer"])
        case .invalid: return detail(.forbidden, "invalid token")
        }
    }

    private func structured(_ error: ProvisioningError) -> [String: Any] {
        ["code": error.code, "message": error.message, "recovery_eta_seconds": error.recoveryETASeconds,
         "can_retry": error.canRetry, "should_wait": error.shouldWait]
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): return "missing field \(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case .dataCorrupted: return "not valid JSON"
        @unknown default: return "not valid JSON"
        }
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func rawJSON(_ object: [String: Any], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    var fields = headers
    fields[.contentType] = "application/json"
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func detail(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
    rawJSON(["detail": message], status: status, headers: headers)
}
