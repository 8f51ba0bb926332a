import CSupport
import CurlHTTP
import Foundation
import Testing

/// The one HTTP layer against loopback servers: answers, limits, time limits,
/// refused protocols, concurrency, and the one outcome type for all of them.
@Suite(.timeLimit(.minutes(1)))
struct HTTPClientTests {
    let client = HTTPClient(name: "test-http")

    @Test func answerCarriesStatusHeadersAndBody() async throws {
        let server = try LoopbackServer(.answer(status: 201, headers: ["X-Thing: yes"], body: Array("hello".utf8)))
        defer { server.stop() }
        let response = try await client.send(HTTPRequest(url: server.url + "/a")).get()
        #expect(response.status == 201)
        #expect(response.header("x-thing") == "yes")
        #expect(response.body == Array("hello".utf8))
    }

    @Test func methodHeadersAndJSONBodyAreSent() async throws {
        let server = try LoopbackServer(.echo)
        defer { server.stop() }
        let request = HTTPRequest(url: server.url + "/things/1", method: .put, headers: [("X-Api-Key", "k1")],
                                  body: .json(Array(#"{"a":1}"#.utf8)), userAgent: "acerelay-test")
        let echoed = String(decoding: try await client.send(request).get().body, as: UTF8.self)
        #expect(echoed.hasPrefix("PUT /things/1 HTTP/1.1\r\n"))
        #expect(echoed.contains("X-Api-Key: k1\r\n"))
        #expect(echoed.contains("Content-Type: application/json\r\n"))
        #expect(echoed.contains("User-Agent: acerelay-test\r\n"))
        #expect(echoed.hasSuffix("\r\n\r\n{\"a\":1}"))
    }

    @Test func anErrorStatusIsAnAnswerUnlessAskedToFail() async throws {
        let server = try LoopbackServer(.answer(status: 404, body: Array("gone".utf8)))
        defer { server.stop() }
        let answered = try await client.send(HTTPRequest(url: server.url)).get()
        #expect(answered.status == 404)
        #expect(answered.body == Array("gone".utf8))
        let failed = await client.send(HTTPRequest(url: server.url, failOnHTTPError: true))
        guard case .failure(.other(let code, _)) = failed else {
            Issue.record("expected a failure for 404 with failOnHTTPError, got \(failed)")
            return
        }
        #expect(code == Int(CURLE_HTTP_RETURNED_ERROR.rawValue))
    }

    @Test func aBodyOverTheCapFailsBeforeTheServerSendsItAll() async throws {
        let server = try LoopbackServer(.endlessBody(announcedLength: nil))
        defer { server.stop() }
        let result = await client.send(HTTPRequest(url: server.url, maxBodyBytes: 1 << 20))
        #expect(result.failure == .bodyTooLarge(limit: 1 << 20))
        // The client stopped reading at the cap: what the server got rid of is the
        // cap plus what the two sockets' buffers hold, far from an endless body.
        server.stop()
        #expect(server.bodyBytesSent.load(ordering: .relaxed) < 32 << 20)
    }

    @Test func anAnnouncedBodyOverTheCapFailsAtTheHead() async throws {
        let server = try LoopbackServer(.endlessBody(announcedLength: 1 << 30))
        defer { server.stop() }
        let result = await client.send(HTTPRequest(url: server.url, maxBodyBytes: 1 << 20))
        #expect(result.failure == .bodyTooLarge(limit: 1 << 20))
    }

    @Test func aHandleThatHitTheCapHoldsNoBody() throws {
        let server = try LoopbackServer(.endlessBody(announcedLength: nil))
        defer { server.stop() }
        let handle = try CurlEasyHandle(HTTPRequest(url: server.url, maxBodyBytes: 256 << 10))
        let code = curl_easy_perform(handle.pointer)
        #expect(handle.result(for: code).failure == .bodyTooLarge(limit: 256 << 10))
        #expect(handle.body.isEmpty)
    }

    @Test func headersOverTheCapFail() async throws {
        let fields = (0..<100).map { "X-Filler-\($0): " + String(repeating: "x", count: 1000) }
        let server = try LoopbackServer(.answer(status: 200, headers: fields))
        defer { server.stop() }
        let result = await client.send(HTTPRequest(url: server.url, maxHeaderBytes: 16 << 10))
        #expect(result.failure == .headersTooLarge(limit: 16 << 10))
    }

    @Test func aServerThatNeverAnswersTimesOutWithinTheLimit() async throws {
        let server = try LoopbackServer(.silent)
        defer { server.stop() }
        let started = ContinuousClock.now
        let result = await client.send(HTTPRequest(url: server.url, timeout: .seconds(1)))
        let elapsed = ContinuousClock.now - started
        guard case .failure(.timedOut) = result else {
            Issue.record("expected timedOut, got \(result)")
            return
        }
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(3))
    }

    @Test func aTrickleOfOneBytePerSecondFailsWithinTheTimeout() async throws {
        let server = try LoopbackServer(.trickle)
        defer { server.stop() }
        let started = ContinuousClock.now
        let result = await client.send(HTTPRequest(url: server.url, timeout: .seconds(2)))
        guard case .failure(.timedOut) = result else {
            Issue.record("expected timedOut, got \(result)")
            return
        }
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(server.bodyBytesSent.load(ordering: .relaxed) >= 1)
    }

    @Test func theLowSpeedLimitEndsATrickleLongBeforeTheTotalTimeout() async throws {
        let server = try LoopbackServer(.trickle)
        defer { server.stop() }
        let started = ContinuousClock.now
        let result = await client.send(HTTPRequest(
            url: server.url, timeout: .seconds(30), lowSpeedLimit: .init(bytesPerSecond: 100, seconds: 2)))
        guard case .failure(.timedOut) = result else {
            Issue.record("expected timedOut, got \(result)")
            return
        }
        #expect(ContinuousClock.now - started < .seconds(6))
    }

    @Test func aClosedPortCannotBeConnected() async throws {
        let port = try LoopbackServer.closedPort()
        let result = await client.send(HTTPRequest(url: "http://127.0.0.1:\(port)/"))
        #expect(result.failure == .couldNotConnect(reason: "connection refused"))
    }

    @Test(arguments: ["gopher://127.0.0.1:1/", "dict://127.0.0.1:1/", "file:///etc/hostname", "ftp://127.0.0.1:1/"])
    func schemesOtherThanHTTPAreRefused(url: String) async throws {
        guard case .failure(.protocolNotAllowed) = await client.send(HTTPRequest(url: url)) else {
            Issue.record("expected protocolNotAllowed for \(url)")
            return
        }
    }

    @Test func aRedirectToGopherIsRefusedWhenFollowingAndReturnedOtherwise() async throws {
        let target = try LoopbackServer(.silent)
        defer { target.stop() }
        let server = try LoopbackServer(.answer(status: 302, headers: ["Location: gopher://127.0.0.1:\(target.port)/"]))
        defer { server.stop() }
        guard case .failure(.protocolNotAllowed) = await client.send(HTTPRequest(url: server.url, maxRedirects: 5)) else {
            Issue.record("expected protocolNotAllowed for a redirect to gopher")
            return
        }
        let unfollowed = try await client.send(HTTPRequest(url: server.url)).get()
        #expect(unfollowed.status == 302)
        #expect(unfollowed.header("Location")?.hasPrefix("gopher://") == true)
        #expect(target.requests.load(ordering: .relaxed) == 0)
    }

    @Test func manyConcurrentRequestsAreAllAnsweredWhileOneHangs() async throws {
        let server = try LoopbackServer(.answer(status: 200, body: Array("ok".utf8)))
        defer { server.stop() }
        let silent = try LoopbackServer(.silent)
        defer { silent.stop() }
        let hung = Task { [client] in await client.send(HTTPRequest(url: silent.url, timeout: .seconds(20))) }
        let outcomes = await withTaskGroup(of: String.self) { group in
            for index in 0..<200 {
                group.addTask { [client] in
                    switch await client.send(HTTPRequest(url: server.url + "/\(index)")) {
                    case .success(let response): "\(response.status)"
                    case .failure(let error): error.description
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(outcomes.count == 200)
        #expect(outcomes.filter { $0 != "200" } == [])
        hung.cancel()
        #expect(await hung.value.failure == .cancelled)
    }

    @Test func cancellingTheTaskEndsAHungRequestPromptly() async throws {
        let server = try LoopbackServer(.silent)
        defer { server.stop() }
        let call = Task { [client] in await client.send(HTTPRequest(url: server.url, timeout: .seconds(30))) }
        while server.requests.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        let started = ContinuousClock.now
        call.cancel()
        #expect(await call.value.failure == .cancelled)
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    @Test func aMissingBodyFileFailsAtOnce() async throws {
        let result = await client.send(HTTPRequest(url: "http://127.0.0.1:1/", method: .post,
                                                   body: .file(path: "/nonexistent/acerelay.tar", contentType: "application/x-tar")))
        #expect(result.failure == .unreadableFile(path: "/nonexistent/acerelay.tar", reason: "No such file or directory"))
    }

    @Test func aShutDownClientRefusesNewRequests() async throws {
        let other = HTTPClient(name: "test-closed")
        other.shutdown()
        #expect(await other.send(HTTPRequest(url: "http://127.0.0.1:1/")).failure == .cancelled)
    }
}

extension Result {
    /// The error, or nil for a success.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
