import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// `GET /api/v1/events/live` read directly from a real `acerelay serve` with the engine simulator.
@Suite(.serialized) struct LiveEventsTests {
    @Test func snapshotsArriveAtTheIntervalAndAPlayerJoiningAndLeavingProducesStreamEvents() throws {
        let simulator = try PanelHarness.simulator()
        defer { simulator.shutdown() }
        let serve = try Serve(enginePort: simulator.port, environment: ["SSE_UPDATE_INTERVAL_S": "0.5"])
        let client = try SSEClient(port: serve.apiPort)
        defer { client.close() }
        #expect(client.status == 200)
        #expect(client.headers["content-type"]?.hasPrefix("text/event-stream") == true, "\(client.headers)")

        var snapshots: [SSEClient.Event] = []
        while snapshots.count < 5, let event = client.next(named: "snapshot", timeout: 5) { snapshots.append(event) }
        try #require(snapshots.count == 5, "only \(snapshots.count) snapshots in the first seconds")
        let gaps = zip(snapshots.dropFirst(), snapshots).map { $0.receivedAt.timeIntervalSince($1.receivedAt) }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        #expect(mean > 0.3 && mean < 0.9, "snapshots every \(gaps) s; SSE_UPDATE_INTERVAL_S is 0.5")
        let first = try #require(snapshots.last?.json)
        let kpis = try #require(first["kpis"] as? [String: Any])
        #expect(kpis["engines_total"] as? Int == 1)
        #expect(kpis["players"] as? Int == 0)
        #expect((first["engines"] as? [[String: Any]])?.first?["container_id"] as? String == "http://127.0.0.1:\(simulator.port)")

        let content = PanelHarness.contentID(7)
        let player = try StreamPlayer(port: serve.streamPort, content: content)
        let joined = client.next(named: "stream", timeout: 15) { $0.json?["type"] as? String == "player_joined" }
        #expect(joined?.json?["content_id"] as? String == content)
        #expect(joined?.json?["players"] as? Int == 1)
        let counted = client.next(named: "snapshot", timeout: 10) { (($0.json?["kpis"] as? [String: Any])?["players"] as? Int) == 1 }
        #expect(counted != nil, "no snapshot counted the player")
        let stream = (counted?.json?["streams"] as? [[String: Any]])?.first
        #expect(stream?["key"] as? String == content)
        #expect((stream?["relay"] as? [String: Any])?["players"] as? Int == 1)

        player.close()
        let left = client.next(named: "stream", timeout: 10) { $0.json?["type"] as? String == "player_left" }
        #expect(left?.json?["players"] as? Int == 0)
    }

    /// A client that hangs up is forgotten: its response task ends at the next write, and the count goes back.
    @Test func aClientThatHangsUpIsRemoved() throws {
        let simulator = try PanelHarness.simulator()
        defer { simulator.shutdown() }
        let serve = try Serve(enginePort: simulator.port, environment: ["SSE_UPDATE_INTERVAL_S": "0.2"])
        let watcher = try SSEClient(port: serve.apiPort)
        defer { watcher.close() }
        func clients(_ event: SSEClient.Event) -> Int? { event.json?["live_clients"] as? Int }
        #expect(watcher.next(named: "snapshot", timeout: 5) { clients($0) == 1 } != nil)
        var others = try (0..<3).map { _ in try SSEClient(port: serve.apiPort) }
        #expect(watcher.next(named: "snapshot", timeout: 5) { clients($0) == 4 } != nil)
        for other in others { other.close() }
        others = []
        #expect(watcher.next(named: "snapshot", timeout: 5) { clients($0) == 1 } != nil, "clients that hung up were kept")
    }

    /// An open SSE response must not hold SIGTERM up: the stream ends and the process exits 0 within seconds.
    @Test func sigtermEndsOpenEventStreamsAndExitsPromptly() throws {
        let simulator = try PanelHarness.simulator()
        defer { simulator.shutdown() }
        let serve = try Serve(enginePort: simulator.port)
        let client = try SSEClient(port: serve.apiPort)
        defer { client.close() }
        #expect(client.next(named: "snapshot", timeout: 5) != nil)
        let started = Date()
        kill(serve.process.processIdentifier, SIGTERM)
        #expect(eventually(timeout: 10) { !serve.process.isRunning }, "SIGTERM did not stop acerelay with an SSE client open")
        serve.process.waitUntilExit()
        #expect(Date().timeIntervalSince(started) < 7)
        #expect(serve.process.terminationStatus == 0)
        while !client.ended, Date().timeIntervalSince(started) < 10 { _ = client.next(timeout: 1) }
        #expect(client.ended, "the event stream stayed open after acerelay stopped")
    }

    /// A client that stops reading must not hold anyone up: another client keeps getting its snapshots on time.
    @Test func aClientThatNeverReadsDoesNotDelayAnother() throws {
        let simulator = try PanelHarness.simulator()
        defer { simulator.shutdown() }
        let serve = try Serve(enginePort: simulator.port, environment: ["SSE_UPDATE_INTERVAL_S": "0.2"])
        var stuck: [Connection] = []
        for _ in 0..<4 {
            let connection = try Connection(port: serve.apiPort)
            try connection.send("GET /api/v1/events/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            stuck.append(connection)
        }
        let reader = try SSEClient(port: serve.apiPort)
        defer { reader.close() }
        let started = Date()
        var count = 0
        while count < 15, reader.next(named: "snapshot", timeout: 3) != nil { count += 1 }
        #expect(count == 15)
        #expect(Date().timeIntervalSince(started) < 6, "15 snapshots at 0.2 s took \(Date().timeIntervalSince(started)) s")
        _ = stuck
    }

    @Test func thePanelSnapshotRouteAnswersTheSameShapeForPolling() throws {
        let simulator = try PanelHarness.simulator()
        defer { simulator.shutdown() }
        let serve = try Serve(enginePort: simulator.port)
        let connection = try Connection(port: serve.apiPort)
        try connection.send("GET /api/v1/panel/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        var bytes: [UInt8] = []
        while let chunk = connection.receive(timeout: 5), !chunk.isEmpty { bytes += chunk }
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200"))
        let body = try #require(text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(Set(json.keys) == ["timestamp", "kpis", "engines", "streams", "live_clients", "vpn"])
        #expect((json["vpn"] as? [String: Any])?["status"] as? String == "disabled")
    }
}
