import Foundation
import Logging

/// The engine's HTTP API, plus the `/sim/...` control surface.
extension EngineSimulator {
    /// What happens to a connection after a response.
    enum Disposition {
        /// Read the next request.
        case keepAlive
        /// Close it.
        case close
    }

    /// Serves requests on one connection until it closes; runs on the connection's own thread.
    func serve(_ connection: ClientConnection) {
        defer { connections.release(connection) }
        var reader = HTTPRequestReader()
        while !connection.aborted {
            switch reader.next(from: connection) {
            case .closed:
                return
            case .malformed:
                _ = connection.sendAll(Self.textResponse(400, "bad request", keepAlive: false, headOnly: false))
                return
            case .tooLarge:
                _ = connection.sendAll(Self.textResponse(431, "request too large", keepAlive: false, headOnly: false))
                return
            case let .request(request):
                guard handle(request, on: connection) == .keepAlive, request.keepAlive else { return }
            }
        }
    }

    private func handle(_ request: HTTPRequest, on connection: ClientConnection) -> Disposition {
        guard request.method == "GET" || request.method == "HEAD" else {
            return send(Self.textResponse(405, "method not allowed", keepAlive: request.keepAlive,
                                          headOnly: false, extraFields: [("Allow", "GET, HEAD")]),
                        for: request, on: connection)
        }
        let parts = request.pathComponents
        if parts.count == 4, parts[0] == "ace", ["r", "stat", "cmd"].contains(parts[1]) {
            let infohash = parts[2].lowercased()
            let sessionID = parts[3].lowercased()
            switch parts[1] {
            case "r": return playback(infohash: infohash, sessionID: sessionID, request: request, on: connection)
            case "stat": return stat(infohash: infohash, sessionID: sessionID, request: request, on: connection)
            default: return command(infohash: infohash, sessionID: sessionID, request: request, on: connection)
            }
        }
        switch parts {
        case ["ace", "getstream"]: return getstream(request, on: connection)
        case ["server", "api"]: return serverAPI(request, on: connection)
        case ["webui", "api", "service"]: return webUIService(request, on: connection)
        case ["sim", "counters"]: return simCounters(request, on: connection)
        case ["sim", "fault"]: return simFault(request, on: connection)
        default:
            return send(Self.textResponse(404, "not found", keepAlive: request.keepAlive, headOnly: request.isHead),
                        for: request, on: connection)
        }
    }

    // MARK: Sessions

    /// `/ace/getstream`: opens (or returns) the content's session, as JSON or, without
    /// `format=json`, as the stream itself.
    private func getstream(_ request: HTTPRequest, on connection: ClientConnection) -> Disposition {
        let wantsJSON = request.query["format"] == "json"
        let content: (name: String, infohash: String)
        switch Self.contentSelector(in: request.query) {
        case let .success(selected):
            content = selected
        case let .failure(problem):
            return wantsJSON
                ? sendJSON(Self.engineError(problem.message), for: request, on: connection)
                : send(Self.textResponse(400, problem.message, keepAlive: request.keepAlive, headOnly: request.isHead),
                       for: request, on: connection)
        }
        state.withLock { state in
            state.count(content.infohash) { $0.getstreamRequests += 1 }
            if state.contentNames[content.infohash] == nil { state.contentNames[content.infohash] = content.name }
        }
        guard waitWhileHung(content.infohash, on: connection) else { return .close }
        if state.withLock({ $0.faults.failsToLoad(content.infohash) }) {
            let message = "failed to load content"
            return wantsJSON
                ? sendJSON(Self.engineError(message), for: request, on: connection)
                : send(Self.textResponse(500, message, keepAlive: request.keepAlive, headOnly: request.isHead),
                       for: request, on: connection)
        }

        let session = openSession(infohash: content.infohash, playerID: request.query["pid"] ?? "")
        if session.isNew {
            var metadata: Logger.Metadata = ["sim.content": "\(content.name)", "sim.session": "\(session.id)"]
            if let replaced = session.replaced { metadata["sim.replaced_session"] = "\(replaced)" }
            logger.debug("engine simulator session started", metadata: metadata)
        }
        guard wantsJSON else {
            state.withLock { $0.count(content.infohash) { $0.playbackConnections += 1 } }
            return streamPlayback(sessionID: session.id, request: request, on: connection)
        }
        let authority = "\(configuration.advertisedHost):\(configuration.advertisedPort ?? port)"
        let base = switch configuration.advertisedURLStyle {
        case .absolute: "http://\(authority)"
        case .schemeLess: authority
        case .relative: ""
        }
        let suffix = "\(content.infohash)/\(session.id)"
        return sendJSON(.object([
            ("response", .object([
                ("playback_url", .string("\(base)/ace/r/\(suffix)")),
                ("stat_url", .string("\(base)/ace/stat/\(suffix)")),
                ("command_url", .string("\(base)/ace/cmd/\(suffix)")),
                ("infohash", .string(content.infohash)),
                ("playback_session_id", .string(session.id)),
                ("is_live", 1),
                ("is_encrypted", 0),
                ("client_session_id", -1),
            ])),
            ("error", .null),
        ]), for: request, on: connection)
    }

    /// The player-id rule: one session per content; the same pid gets it back, another pid
    /// ends it and gets a new one.
    private func openSession(infohash: String, playerID: String) -> (id: String, isNew: Bool, replaced: String?) {
        let now = monotonicNanoseconds()
        return state.withLock { state in
            var replaced: String?
            if let id = state.liveSessionIDs[infohash], let existing = state.sessions[id] {
                if existing.playerID == playerID { return (id, false, nil) }
                state.endSession(id)
                replaced = id
            }
            var session = PlaybackSession(id: Self.makeSessionID(), infohash: infohash, playerID: playerID,
                                          createdAt: now)
            for fault in state.faults.takeWaiting(for: infohash) { Self.arm(fault, on: &session) }
            state.sessions[session.id] = session
            state.liveSessionIDs[infohash] = session.id
            state.count(infohash) {
                $0.sessionsStarted += 1
                $0.activeSessions += 1
            }
            return (session.id, true, replaced)
        }
    }

    /// `GET <playback_url>`.
    private func playback(
        infohash: String, sessionID: String, request: HTTPRequest, on connection: ClientConnection
    ) -> Disposition {
        if Self.isInfohash(infohash) { state.withLock { $0.count(infohash) { $0.playbackConnections += 1 } } }
        guard waitWhileHung(infohash, on: connection) else { return .close }
        let known = state.withLock { $0.sessions[sessionID]?.infohash == infohash }
        guard known else {
            return send(Self.textResponse(404, "unknown playback session", keepAlive: request.keepAlive,
                                          headOnly: request.isHead), for: request, on: connection)
        }
        return streamPlayback(sessionID: sessionID, request: request, on: connection)
    }

    /// `GET <stat_url>`.
    private func stat(
        infohash: String, sessionID: String, request: HTTPRequest, on connection: ClientConnection
    ) -> Disposition {
        if Self.isInfohash(infohash) { state.withLock { $0.count(infohash) { $0.statRequests += 1 } } }
        guard waitWhileHung(infohash, on: connection) else { return .close }
        let now = monotonicNanoseconds()
        let snapshot = state.withLock { state -> (session: PlaybackSession, flowing: Bool, frozen: Int?)? in
            guard let session = state.sessions[sessionID], session.infohash == infohash else { return nil }
            let flowing = !state.faults.isStalled(infohash, at: now) && !state.faults.isHung(infohash)
            return (session, flowing, state.faults.frozenLivePosition(infohash))
        }
        guard let snapshot else {
            return sendJSON(Self.engineError("unknown playback session id"), for: request, on: connection)
        }
        let session = snapshot.session
        let age = Double(now &- session.createdAt) / 1_000_000_000
        let swarm = configuration.stats(forInfohash: infohash)
        let speedDown = snapshot.flowing ? swarm.speedDownKBps ?? Int(media(forInfohash: infohash).bytesPerSecond / 1024) : 0
        let speedUp = snapshot.flowing ? swarm.speedUpKBps ?? speedDown / 8 : 0
        let last = snapshot.frozen ?? Int(Date().timeIntervalSince1970)
        let (downKey, upKey) = configuration.camelCaseStats ? ("speedDown", "speedUp") : ("speed_down", "speed_up")
        return sendJSON(.object([
            ("response", .object([
                ("uploaded", .int(Int(session.bytesSent / 8))),
                (downKey, .int(speedDown)),
                (upKey, .int(speedUp)),
                ("downloaded", .int(Int(session.bytesSent))),
                ("peers", .int(swarm.peers)),
                ("status", age < configuration.prebufferSeconds ? "prebuf" : "dl"),
                ("total_progress", 0),
                ("playback_session_id", .string(session.id)),
                ("infohash", .string(infohash)),
                ("is_live", 1),
                ("livepos", .object([
                    ("last", .string(String(last))),
                    ("live_first", .string(String(last - 1800))),
                    ("pos", .string(String(last))),
                    ("first_ts", .string(String(last - 1800))),
                    ("last_ts", .string(String(last))),
                    ("is_live", "1"),
                    ("live_last", .string(String(last))),
                    ("buffer_pieces", "30"),
                ])),
            ])),
            ("error", .null),
        ]), for: request, on: connection)
    }

    /// `GET <command_url>?method=stop`.
    private func command(
        infohash: String, sessionID: String, request: HTTPRequest, on connection: ClientConnection
    ) -> Disposition {
        guard waitWhileHung(infohash, on: connection) else { return .close }
        guard request.query["method"] == "stop" else {
            return sendJSON(Self.engineError("unknown method"), for: request, on: connection)
        }
        let stopped = state.withLock { state -> Bool in
            guard state.sessions[sessionID]?.infohash == infohash else { return false }
            state.endSession(sessionID)
            state.count(infohash) { $0.stops += 1 }
            return true
        }
        guard stopped else {
            return sendJSON(Self.engineError("unknown playback session id"), for: request, on: connection)
        }
        logger.debug("engine simulator session stopped", metadata: ["sim.session": "\(sessionID)"])
        return sendJSON(.object([("response", "ok"), ("error", .null)]), for: request, on: connection)
    }

    // MARK: Engine status

    /// `/server/api?api_version=3&method=...`.
    private func serverAPI(_ request: HTTPRequest, on connection: ClientConnection) -> Disposition {
        guard waitWhileHung(nil, on: connection) else { return .close }
        let result: JSONValue
        switch request.query["method"] {
        case "get_status":
            result = .object([("result", .object([("playlist_loaded", true), ("version", versionObject)])),
                              ("error", .null)])
        case "get_network_connection_status":
            result = .object([("result", .object([("connected", true)])), ("error", .null)])
        default:
            result = .object([("result", .null), ("error", "unknown method")])
        }
        return sendJSON(result, for: request, on: connection)
    }

    /// `/webui/api/service?method=get_version`.
    private func webUIService(_ request: HTTPRequest, on connection: ClientConnection) -> Disposition {
        guard waitWhileHung(nil, on: connection) else { return .close }
        let result: JSONValue = request.query["method"] == "get_version"
            ? .object([("result", versionObject), ("error", .null)])
            : .object([("result", .null), ("error", "unknown method")])
        return sendJSON(result, for: request, on: connection)
    }

    /// `{"code":3017000,"platform":"linux","version":"3.1.70"}` for the configured version.
    private var versionObject: JSONValue {
        let numbers = configuration.version.split(separator: ".").map { Int($0) ?? 0 } + [0, 0, 0]
        let code = numbers[0] * 1_000_000 + numbers[1] * 10_000 + numbers[2] * 100
        return .object([("code", .int(code)), ("platform", "linux"), ("version", .string(configuration.version))])
    }

    // MARK: Control surface

    /// `GET /sim/counters`: `SimulatorCountersReport` as JSON.
    private func simCounters(_ request: HTTPRequest, on connection: ClientConnection) -> Disposition {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(countersReport)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return send(HTTPResponse.complete(status: 200, reason: "OK", contentType: "application/json", body: body,
                                          keepAlive: request.keepAlive, headOnly: request.isHead),
                    for: request, on: connection)
    }

    /// `GET /sim/fault?id=<content or empty>&kind=...&seconds=N&bytes=N`.
    ///
    /// `die` needs `seconds`: the engine revives itself after that long, since nothing could
    /// reach it over HTTP to clear the fault.
    private func simFault(_ request: HTTPRequest, on connection: ClientConnection) -> Disposition {
        let contentID = request.query["id"].flatMap { $0.isEmpty ? nil : $0 }
        let seconds = request.query["seconds"].flatMap(Double.init)
        let bytes = request.query["bytes"].flatMap(Int.init)
        let fault: SimulatorFault?
        switch request.query["kind"] {
        case "hang": fault = .hang
        case "eof": fault = .cleanEOF
        case "frozen": fault = .frozenLiveLast
        case "loaderror": fault = .loadError
        case "clear": fault = nil
        case "stall" where seconds != nil: fault = .stall(seconds: seconds!)
        case "garbage" where bytes != nil: fault = .garbage(bytes: bytes!)
        case "die" where seconds != nil:
            let reply = HTTPResponse.complete(status: 200, reason: "OK", contentType: "application/json",
                                              body: #"{"ok":true}"#, keepAlive: false, headOnly: request.isHead)
            _ = connection.sendAll(reply)
            dieThenRevive(after: seconds!)
            return .close
        default:
            let message = "kind must be hang|stall|eof|garbage|frozen|loaderror|die|clear; "
                + "stall and die need seconds=N, garbage needs bytes=N"
            let body = JSONValue.object([("ok", false), ("error", .string(message))]).rendered
            return send(HTTPResponse.complete(status: 400, reason: "Bad Request", contentType: "application/json",
                                              body: body, keepAlive: request.keepAlive, headOnly: request.isHead),
                        for: request, on: connection)
        }
        setFault(fault, for: contentID)
        return send(HTTPResponse.complete(status: 200, reason: "OK", contentType: "application/json",
                                          body: #"{"ok":true}"#, keepAlive: request.keepAlive, headOnly: request.isHead),
                    for: request, on: connection)
    }

    private func dieThenRevive(after seconds: Double) {
        setFault(.die)
        Thread.detachNewThread { [self] in
            let deadline = Date().addingTimeInterval(seconds)
            // Short sleeps, so a shutdown meanwhile is not held up by this thread.
            while Date() < deadline {
                if case .stopped = state.withLock({ $0.lifecycle }) { return }
                usleep(20_000)
            }
            revive()
        }
    }

    // MARK: Helpers

    /// Holds a request while a hang fault covers it. Returns false when the client went away
    /// or the connection was aborted meanwhile.
    func waitWhileHung(_ infohash: String?, on connection: ClientConnection) -> Bool {
        while state.withLock({ $0.faults.isHung(infohash) }) {
            if connection.peerHasGone(waitingMilliseconds: Self.playbackTickMilliseconds) { return false }
        }
        return !connection.aborted
    }

    private func send(_ response: [UInt8], for request: HTTPRequest, on connection: ClientConnection) -> Disposition {
        connection.sendAll(response) && request.keepAlive ? .keepAlive : .close
    }

    private func sendJSON(_ value: JSONValue, for request: HTTPRequest, on connection: ClientConnection) -> Disposition {
        send(HTTPResponse.complete(status: 200, reason: "OK", contentType: "application/json", body: value.rendered,
                                   keepAlive: request.keepAlive, headOnly: request.isHead),
             for: request, on: connection)
    }

    /// A plain-text response with the right reason phrase.
    static func textResponse(
        _ status: Int, _ text: String, keepAlive: Bool, headOnly: Bool, extraFields: [(String, String)] = []
    ) -> [UInt8] {
        let reason = switch status {
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        default: "Error"
        }
        return HTTPResponse.complete(status: status, reason: reason, contentType: "text/plain; charset=utf-8",
                                     body: text + "\n", keepAlive: keepAlive, headOnly: headOnly,
                                     extraFields: extraFields)
    }

    /// `{"response":null,"error":"<message>"}`: how the engine reports a failure, with status 200.
    static func engineError(_ message: String) -> JSONValue {
        .object([("response", .null), ("error", .string(message))])
    }

    /// Why a getstream named no usable content.
    struct SelectorProblem: Error {
        let message: String
    }

    /// The content a getstream names: `id`, `content_id` (an id; its infohash is derived) or
    /// `infohash`, each 40 hex digits.
    static func contentSelector(
        in query: [String: String]
    ) -> Result<(name: String, infohash: String), SelectorProblem> {
        if let id = query["id"] ?? query["content_id"] {
            let name = id.lowercased()
            guard isInfohash(name) else { return .failure(SelectorProblem(message: "invalid content id")) }
            return .success((name, infohash(forContentID: name)))
        }
        if let given = query["infohash"] {
            let name = given.lowercased()
            guard isInfohash(name) else { return .failure(SelectorProblem(message: "invalid infohash")) }
            return .success((name, name))
        }
        return .failure(SelectorProblem(message: "missing content id"))
    }

    /// Whether `text` is 40 lowercase hex digits, the form of content ids and infohashes.
    static func isInfohash(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// 32 random hex digits.
    static func makeSessionID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let digits = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }.joined()
    }
}
