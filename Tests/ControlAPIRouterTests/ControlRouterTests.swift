import EngineFleet
import Streams
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RelayCore
import Store
import Testing
@testable import ControlAPI

/// The control API's router driven in-process (no socket): auth, error shapes,
/// every route under both prefixes, and what `stream_started` accepts.
@Suite struct ControlRouterTests {
    /// A control plane over a real store in a temp directory and one static engine at 127.0.0.1:6878.
    struct Rig {
        let plane: ControlPlane
        let directory: String
        static let engineURL = "http://127.0.0.1:6878"

        init(apiKey: String? = "s3cret") throws {
            directory = TestDirectory.path("router")
            let store = try Store(directory: directory)
            let logger = Logger(label: "test")
            let fleet = EngineFleet(maxStreamsPerEngine: 3, startupTimeout: 5, failureThreshold: 3, logger: logger)
            fleet.register(FleetEngine(endpoint: EngineEndpoint(id: Self.engineURL, baseURL: Self.engineURL), name: "engine-1",
                                       host: "127.0.0.1", port: 6878, managed: false, failureThreshold: 3, now: Date()))
            let loops = LoopDetector(store: store, config: LoopDetectionConfig(), logger: logger,
                                     stopExternal: { _ in }) { _, _ in }
            plane = ControlPlane(fleet: fleet, provisioner: nil, store: store, relay: nil, loops: loops, metrics: MetricsExporter(),
                                 apiKey: apiKey, version: "test", streamPort: { 8080 })
        }

        func run(_ test: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await Application(router: ControlServer.router(plane: plane)).test(.router, test)
        }
    }

    static let hex = "0123456789abcdef0123456789abcdef01234567"

    /// A `stream_started` body; `containerID` nil leaves the field out, as the acexy fork does.
    static func started(containerID: String? = nil, host: String = "127.0.0.1", port: Int = 6878, keyType: String = "content_id",
                        key: String = hex, session: String = "s1", statURL: String = "http://127.0.0.1:6878/ace/stat/x/s1") -> ByteBuffer {
        var object: [String: Any] = [
            "engine": ["host": host, "port": port],
            "stream": ["key_type": keyType, "key": key, "file_indexes": "0", "seekback": 0],
            "session": ["playback_session_id": session, "stat_url": statURL, "command_url": "http://127.0.0.1:6878/ace/cmd/x/s1", "is_live": 1],
        ]
        if let containerID { object["container_id"] = containerID }
        return ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
    }

    static func json(_ response: TestResponse) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
    }

    static func list(_ response: TestResponse) -> [[String: Any]]? {
        try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [[String: Any]]
    }

    static let apiKey = HTTPField.Name("X-API-Key")!

    @Test func theKeyIsCheckedAsTheOrchestratorDoesAndAnEmptyHeaderCountsAsAbsent() async throws {
        try await Rig().run { client in
            func post(_ headers: HTTPFields) async throws -> TestResponse {
                try await client.execute(uri: "/events/stream_started", method: .post, headers: headers, body: Self.started())
            }
            let missing = try await post([:])
            #expect(missing.status == .unauthorized)
            #expect(Self.json(missing)?["detail"] as? String == "missing bearer token")
            #expect(missing.headers[.wwwAuthenticate] == "Bearer")
            let empty = try await post([Self.apiKey: ""])
            #expect(empty.status == .unauthorized)
            #expect(Self.json(empty)?["detail"] as? String == "missing bearer token")
            let wrongBearer = try await post([.authorization: "Bearer nope"])
            #expect(wrongBearer.status == .forbidden)
            #expect(Self.json(wrongBearer)?["detail"] as? String == "invalid token")
            #expect(try await post([Self.apiKey: "nope"]).status == .forbidden)
            #expect(try await post([Self.apiKey: "s3cret"]).status == .ok)
            #expect(try await post([.authorization: "Bearer s3cret"]).status == .ok)
            // The bug: an empty X-API-Key hid a valid bearer token.
            #expect(try await post([Self.apiKey: "", .authorization: "Bearer s3cret"]).status == .ok)
            #expect(try await post([Self.apiKey: "  ", .authorization: "Bearer s3cret"]).status == .ok)
            // Reads stay open.
            #expect(try await client.execute(uri: "/streams", method: .get).status == .ok)
        }
    }

    @Test func withoutAnAPIKeyConfiguredAuthIsOff() async throws {
        try await Rig(apiKey: nil).run { client in
            let started = try await client.execute(uri: "/events/stream_started", method: .post, body: Self.started())
            #expect(started.status == .ok)
            let cleared = try await client.execute(uri: "/looping-streams/clear", method: .post)
            #expect(cleared.status == .ok)
        }
    }

    @Test func unknownThingsAre404WithADetail() async throws {
        try await Rig().run { client in
            for uri in ["/nope", "/api/v1/nope", "/api/v2/engines"] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .notFound, "\(uri)")
                #expect(Self.json(response)?["detail"] as? String == "Not Found", "\(uri)")
            }
            for uri in ["/engines/nope", "/api/v1/streams/nope/stats"] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .notFound)
                #expect((Self.json(response)?["detail"] as? String)?.contains("nope") == true)
            }
            let stop = try await client.execute(uri: "/streams/nope", method: .delete, headers: [Self.apiKey: "s3cret"])
            #expect(stop.status == .notFound)
            #expect((Self.json(stop)?["detail"] as? String)?.hasPrefix("no stream") == true)
            let bad = try await client.execute(uri: "/streams?status=bogus", method: .get)
            #expect(bad.status == .badRequest)
            #expect(Self.json(bad)?["detail"] as? String == "status must be started or ended")
        }
    }

    /// Every route of the contract this build serves, answered the same under both prefixes.
    static let routes: [(HTTPRequest.Method, String)] = [
        (.get, "/engines"), (.get, "/engines/x"), (.get, "/streams"), (.get, "/streams/x/stats"), (.delete, "/streams/x"),
        (.post, "/events/stream_started"), (.post, "/events/stream_ended"), (.post, "/provision/acestream"), (.post, "/provision"),
        (.delete, "/containers/x"), (.get, "/orchestrator/status"), (.get, "/looping-streams"), (.delete, "/looping-streams/x"),
        (.post, "/looping-streams/clear"), (.get, "/stream-loop-detection/config"), (.post, "/stream-loop-detection/config"),
        (.get, "/health/status"), (.get, "/metrics"), (.get, "/version"), (.get, "/ace/getstream?id=\(hex)"),
        (.head, "/ace/getstream?id=\(hex)"),
    ]

    @Test func everyRouteAlsoExistsUnderAPIv1() async throws {
        try await Rig().run { client in
            for (method, path) in Self.routes {
                var statuses: [HTTPResponse.Status] = []
                for prefix in ["", "/api/v1"] {
                    let response = try await client.execute(uri: prefix + path, method: method, headers: [Self.apiKey: "s3cret"],
                                                            body: method == .post ? ByteBuffer(string: "{}") : nil)
                    let missing = response.status == .notFound && Self.json(response)?["detail"] as? String == "Not Found"
                    #expect(!missing, "\(method) \(prefix)\(path) is not routed")
                    statuses.append(response.status)
                }
                #expect(statuses[0] == statuses[1], "\(method) \(path): \(statuses)")
            }
            // Protected under the prefix too.
            #expect(try await client.execute(uri: "/api/v1/looping-streams/clear", method: .post).status == .unauthorized)
            let redirect = try await client.execute(uri: "/api/v1/ace/getstream?id=\(Self.hex)", method: .get)
            #expect(redirect.headers[.location]?.hasSuffix(":8080/ace/getstream?id=\(Self.hex)") == true)
        }
    }

    @Test func structuredErrorsHaveTheOrchestratorsShapes() async throws {
        try await Rig().run { client in
            let refused = try await client.execute(uri: "/provision/acestream", method: .post, headers: [Self.apiKey: "s3cret"],
                                                   body: ByteBuffer(string: "{}"))
            #expect(refused.status == .serviceUnavailable)
            let detail = try #require(Self.json(refused)?["detail"] as? [String: Any])
            #expect(detail["code"] as? String == "general_error")
            #expect(detail["message"] is String)
            #expect(detail["recovery_eta_seconds"] is Int)
            #expect(detail["can_retry"] as? Bool == false)
            #expect(detail["should_wait"] as? Bool == false)
        }
        let looping = APIError.looping("content x is looping")
        #expect(looping.status.code == 422)
        let detail = try #require(looping.detailValue as? [String: String])
        #expect(detail == ["error": "stream_blacklisted", "code": "looping_stream", "message": "content x is looping"])
    }

    @Test func streamStartedWithoutAContainerIDIsMatchedToItsEngineByHostAndPort() async throws {
        let rig = try Rig()
        try await rig.run { client in
            let auth: HTTPFields = [Self.apiKey: "s3cret"]
            let started = try await client.execute(uri: "/events/stream_started", method: .post, headers: auth, body: Self.started())
            #expect(started.status == .ok)
            #expect(Self.json(started)?["container_id"] as? String == Rig.engineURL)
            #expect(Self.json(started)?["container_name"] as? String == "engine-1")
            #expect(Self.json(started)?["id"] as? String == "\(Self.hex)|s1")
            // A container_id that is no engine's (the proxy's own name) is matched by host and port too.
            let named = try await client.execute(uri: "/events/stream_started", method: .post, headers: auth,
                                                 body: Self.started(containerID: "acexy", session: "s2"))
            #expect(Self.json(named)?["container_id"] as? String == Rig.engineURL)
            // The engine shows both streams, counted, and when it was last used.
            let engine = try #require(Self.list(try await client.execute(uri: "/engines", method: .get))?.first)
            #expect(Set(engine["streams"] as? [String] ?? []) == ["\(Self.hex)|s1", "\(Self.hex)|s2"])
            #expect(engine["stream_count"] as? Int == 2)
            #expect((engine["last_stream_usage"] as? String)?.hasSuffix("Z") == true)
            let one = try #require(Self.json(try await client.execute(uri: "/engines/\(Rig.engineURL.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)", method: .get)))
            #expect((one["engine"] as? [String: Any])?["stream_count"] as? Int == 2)
            // An engine nobody knows keeps what the proxy said, or host:port.
            let elsewhere = try await client.execute(uri: "/events/stream_started", method: .post, headers: auth,
                                                     body: Self.started(host: "other-host", port: 6878, session: "s3"))
            #expect(Self.json(elsewhere)?["container_id"] as? String == "other-host:6878")
            // Ended, the stream leaves the engine's list but the last use stays.
            let ended = try await client.execute(uri: "/events/stream_ended", method: .post, headers: auth,
                                                 body: ByteBuffer(string: "{\"stream_id\":\"\(Self.hex)|s1\"}"))
            #expect(ended.status == .ok)
            let after = try #require(Self.list(try await client.execute(uri: "/engines", method: .get))?.first)
            #expect(after["stream_count"] as? Int == 1)
        }
    }

    @Test(arguments: [
        (ControlRouterTests.started(keyType: "torrent"), "key_type"),
        (ControlRouterTests.started(key: "abc"), "40 hex"),
        (ControlRouterTests.started(keyType: "infohash", key: String(repeating: "g", count: 40)), "40 hex"),
        (ControlRouterTests.started(session: ""), "playback_session_id"),
        (ControlRouterTests.started(session: String(repeating: "s", count: 300)), "playback_session_id"),
        (ControlRouterTests.started(statURL: "file:///etc/passwd"), "stat_url"),
        (ControlRouterTests.started(statURL: "http://x/" + String(repeating: "a", count: 3_000)), "stat_url"),
        (ControlRouterTests.started(keyType: "url", key: String(repeating: "k", count: 5_000)), "stream.key"),
        (ControlRouterTests.started(port: 0), "engine.port"),
        (ByteBuffer(string: "{\"stream\":{\"key_type\":\"content_id\",\"key\":\"\(ControlRouterTests.hex)\"},\"session\":{\"playback_session_id\":\"s\",\"is_live\":1}}"), "engine"),
        (ByteBuffer(string: "{\"engine\":{\"host\":\"h\",\"port\":1}}"), "missing field"),
    ])
    func streamStartedRefusesWhatItCannotStore(body: ByteBuffer, mentions: String) async throws {
        try await Rig().run { client in
            let response = try await client.execute(uri: "/events/stream_started", method: .post, headers: [Self.apiKey: "s3cret"], body: body)
            #expect(response.status == .badRequest)
            let detail = Self.json(response)?["detail"] as? String ?? ""
            #expect(detail.contains(mentions), "\(detail)")
            #expect(Self.list(try await client.execute(uri: "/streams", method: .get))?.isEmpty == true, "nothing stored")
        }
    }

    @Test func theStreamListingIsWholeWhenItSpansPages() async throws {
        let rig = try Rig()
        let count = StreamsController.pageSize * 2 + 37
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        for n in 0..<count {
            // Pairs share a start time, so some page boundaries fall inside a pair.
            try await rig.plane.store.saveStream(StreamRecord(id: "k\(n)|s", keyType: "content_id", key: "k\(n)", containerID: "c",
                                                              playbackSessionID: "s", startedAt: base.addingTimeInterval(Double(n / 2)),
                                                              status: n % 4 == 0 ? .started : .ended))
        }
        // Stored as the collector stores a StatSample: its fields as JSON.
        struct Sample: Encodable { var at: Date; var peers: Int }
        for (id, peers) in [("k0|s", 7), ("k\(count - 1)|s", 9)] {
            try await rig.plane.store.saveSample(streamID: id, at: base, Sample(at: base, peers: peers))
        }
        try await rig.run { client in
            let response = try await client.execute(uri: "/streams", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let rows = try #require(Self.list(response), "one valid JSON array")
            let ids = rows.compactMap { $0["id"] as? String }
            #expect(ids == (try await rig.plane.store.streams().map(\.id)), "every stream once, newest first")
            #expect(rows.first { $0["id"] as? String == "k0|s" }?["peers"] as? Int == 7, "samples on the last page")
            #expect(rows.first { $0["id"] as? String == "k\(count - 1)|s" }?["peers"] as? Int == 9, "samples on the first page")
            let ended = Self.list(try await client.execute(uri: "/streams?status=ended", method: .get))
            #expect(ended?.count == count - (count + 3) / 4)
            #expect(ended?.allSatisfy { $0["status"] as? String == "ended" } == true)
            let none = try await client.execute(uri: "/streams?container_id=nope", method: .get)
            #expect(String(buffer: none.body) == "[]")
        }
    }

    @Test func aMagnetOrURLStreamIsAcceptedWithItsKeyAsGiven() async throws {
        try await Rig().run { client in
            let response = try await client.execute(uri: "/events/stream_started", method: .post, headers: [Self.apiKey: "s3cret"],
                                                    body: Self.started(keyType: "magnet", key: "magnet:?xt=urn:btih:\(Self.hex)"))
            #expect(response.status == .ok)
            #expect(Self.json(response)?["key_type"] as? String == "magnet")
        }
    }
}

@Suite struct JSONNestingTests {
    @Test func sixtyFourLevelsPassAndSixtyFiveDoNot() {
        #expect(!JSONNesting.exceedsLimit(Array((String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).utf8)))
        #expect(JSONNesting.exceedsLimit(Array((String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65)).utf8)))
    }

    @Test func bracketsInsideStringsDoNotCount() {
        let text = "{\"a\":\"" + String(repeating: "[", count: 500) + "\\\"" + String(repeating: "{", count: 500) + "\"}"
        #expect(!JSONNesting.exceedsLimit(Array(text.utf8)))
    }
}
