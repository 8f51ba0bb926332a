import Foundation
import Testing
@testable import RelayCore

@Suite struct RelayHTTPTests {
    private func response(_ harness: RelayHarness, _ request: String) throws -> (TestPlayer.Head, String) {
        let player = try TestPlayer(port: harness.port, request: request)
        let head = try player.readHead()
        return (head, player.readShortBody())
    }

    @Test func aSecondRelayOnTheSamePortRefusesToStartAndNamesTheHolder() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        var configuration = RelayConfiguration()
        configuration.listenHost = "127.0.0.1"
        configuration.listenPort = harness.port
        configuration.workers = 2
        let second = RelayServer(configuration: configuration, selector: StaticEngineSelector(engines: []), logger: RelayHarness.logger)
        var refusal: RelayError?
        do {
            try second.start()
            second.shutdown(timeout: 1)
        } catch let error as RelayError {
            refusal = error
        }
        guard case .portInUse(let address, let holder) = refusal else {
            Issue.record("a second relay on port \(harness.port) started (the kernel would split players between them)")
            return
        }
        #expect(address == "127.0.0.1:\(harness.port)")
        #expect(holder?.hasPrefix("pid \(getpid()) ") == true, "the holder is this test process: \(holder ?? "nil")")
        let message = "\(refusal!)"
        #expect(!message.contains("\n"))
        #expect(message.contains("127.0.0.1:\(harness.port)"))
    }

    @Test func badContentIdsAre400WithAJSONBody() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        for query in ["id=123", "id=zz23456789abcdef0123456789abcdef01234567", "", "pid=5"] {
            let (head, body) = try response(harness, "GET /ace/getstream?\(query) HTTP/1.1\r\n\r\n")
            #expect(head.status == 400, "\(query)")
            #expect(head.headers["content-type"] == "application/json")
            #expect(body.contains("\"code\":\"bad_content_id\""))
        }
        #expect(harness.simulator.totalCounters.getstreamRequests == 0)
    }

    @Test func unknownPathsAre404AndOtherMethods405() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        #expect(try response(harness, "GET /nope HTTP/1.1\r\n\r\n").0.status == 404)
        let (head, _) = try response(harness, "POST /ace/getstream?id=\(RelayHarness.contentID(1)) HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        #expect(head.status == 405)
        #expect(head.headers["allow"] == "GET, HEAD")
        #expect(try response(harness, "BREW /ace/getstream HTTP/1.1\r\n\r\n").0.status == 405)
    }

    @Test func malformedAndOversizedHeadsAreRefused() throws {
        let harness = try RelayHarness()
        defer { harness.stop() }
        #expect(try response(harness, "HELLO\r\n\r\n").0.status == 400)
        let big = "GET /ace/getstream HTTP/1.1\r\nX-Big: " + String(repeating: "b", count: 10_000) + "\r\n\r\n"
        #expect(try response(harness, big).0.status == 431)
    }

    @Test func aHeadThatNeverCompletesTimesOut() throws {
        let harness = try RelayHarness { $0.requestTimeout = 1 }
        defer { harness.stop() }
        let started = Date()
        let player = try TestPlayer(port: harness.port, request: "GET /ace/getstream?id=")
        let head = try player.readHead(timeout: 5)
        #expect(head.status == 408)
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(harness.simulator.totalCounters.getstreamRequests == 0)
    }
}
