import CurlHTTP
import Dispatcharr
import Foundation
import Logging
import Testing

/// What the real Dispatcharr cannot be asked for, against a stand-in on 127.0.0.1:
/// down, hung, 500s, throttled logins, tokens refused in every way, and reorder off.
@Suite(.timeLimit(.minutes(2)))
struct StandInTests {
    let http = HTTPClient(name: "test-dispatch")
    let logger = Logger(label: "test.dispatcharr")

    func client(_ base: String, _ authentication: DispatcharrConfiguration.Authentication = .apiKey(FakeDispatcharr.apiKey),
                limits: DispatcharrClient.Limits = .init()) -> DispatcharrClient {
        DispatcharrClient(configuration: DispatcharrConfiguration(baseURL: base, authentication: authentication),
                          http: http, logger: logger, limits: limits)
    }

    func sync(_ base: String, reorder: Bool = true, groups: [String] = [],
              retry: DispatcharrSync.RetryPolicy = .init(initialDelay: .milliseconds(100), maxDelay: .seconds(1), maxAttempts: 4),
              limits: DispatcharrClient.Limits = .init()) -> DispatcharrSync {
        let configuration = DispatcharrConfiguration(baseURL: base, authentication: .apiKey(FakeDispatcharr.apiKey),
                                                     channelGroups: groups, reorder: reorder)
        return DispatcharrSync(client: DispatcharrClient(configuration: configuration, http: http, logger: logger, limits: limits),
                               configuration: configuration, logger: logger, retry: retry)
    }

    static let password = DispatcharrConfiguration.Authentication.jwt(token: nil, user: FakeDispatcharr.user,
                                                                      password: FakeDispatcharr.password)

    // MARK: Reading

    @Test func plainAndPagedListsGiveTheSameChannelsAndNextLinksStayOnTheConfiguredServer() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let dispatcharr = client(fake.url)
        let plain = try await dispatcharr.channels(pageSize: nil)
        let paged = try await dispatcharr.channels(pageSize: 1)
        #expect(plain.map(\.id) == [1, 2, 3, 9])
        #expect(paged == plain)
        #expect(plain[0].streamIDs == [1, 2, 3])
        // One plain request, then four pages; `next` named dispatcharr.internal, yet every page came here.
        #expect(fake.server.requests("GET", "/api/channels/channels/").count == 5)
        #expect(fake.server.requests.allSatisfy { $0.header("X-API-Key") == FakeDispatcharr.apiKey })
    }

    @Test func syncManagesAceStreamChannelsOfTheConfiguredGroups() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let all = try await sync(fake.url).syncOnce()
        #expect(all.map(\.id) == [1, 2, 3])
        #expect(all[1].sources.map(\.contentID) == (0..<3).map { FakeDispatcharr.contentID(1, $0) })
        let news = try await sync(fake.url, groups: ["News"]).syncOnce()
        #expect(news.isEmpty)
    }

    @Test func apiKeyModeNeverLogsIn() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let dispatcharr = client(fake.url)
        _ = try await dispatcharr.channels()
        fake.expireTokens(refreshToo: true)
        _ = try await dispatcharr.groups()
        #expect(fake.server.requests.allSatisfy { !$0.path.hasPrefix("/api/accounts/") })
        #expect(fake.server.requests.allSatisfy { $0.header("Authorization") == nil })
    }

    // MARK: Tokens

    @Test func anExpiredAccessTokenIsRefreshedOnce() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let dispatcharr = client(fake.url, Self.password)
        _ = try await dispatcharr.channels()
        fake.expireTokens(refreshToo: false)
        _ = try await dispatcharr.channels()
        #expect(fake.server.requests("POST", "/api/accounts/token/").count == 1)
        #expect(fake.server.requests("POST", "/api/accounts/token/refresh/").count == 1)
        #expect(fake.server.requests("GET", "/api/channels/channels/").count == 3)
        #expect(dispatcharr.counts.count(.unauthorized) == 1)
    }

    @Test func aRefusedRefreshTokenLeadsToOneLogin() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let dispatcharr = client(fake.url, Self.password)
        _ = try await dispatcharr.channels()
        fake.expireTokens(refreshToo: true)
        _ = try await dispatcharr.channels()
        #expect(fake.server.requests("POST", "/api/accounts/token/").count == 2)
        #expect(fake.server.requests("POST", "/api/accounts/token/refresh/").count == 1)
        #expect(fake.server.requests("GET", "/api/channels/channels/").count == 3)
    }

    @Test func aServerThatRefusesEveryTokenGetsOneRefreshAndOneLoginPerRequest() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let dispatcharr = client(fake.url, Self.password)
        _ = try await dispatcharr.channels()
        fake.setFault { request in
            request.path == "/api/channels/channels/"
                ? .respond(status: 401, body: #"{"detail":"Given token not valid for any token type","code":"token_not_valid"}"#) : nil
        }
        await #expect(throws: DispatcharrError.unauthorized(detail: "Given token not valid for any token type")) {
            try await dispatcharr.channels()
        }
        // The failing request: 3 GETs (old token, refreshed token, token from the new login).
        #expect(fake.server.requests("GET", "/api/channels/channels/").count == 1 + 3)
        #expect(fake.server.requests("POST", "/api/accounts/token/refresh/").count == 1)
        #expect(fake.server.requests("POST", "/api/accounts/token/").count == 2)
    }

    @Test func aReadyTokenIsUsedAndWithoutAPasswordARefusalIsFinal() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let dispatcharr = client(fake.url, .jwt(token: "not-issued-by-the-fake", user: nil, password: nil))
        await #expect {
            try await dispatcharr.groups()
        } throws: { error in
            guard let error = error as? DispatcharrError, case .unauthorized = error else { return false }
            return true
        }
        #expect(fake.server.requests.count == 1)
        #expect(fake.server.requests.first?.header("Authorization") == "Bearer not-issued-by-the-fake")
    }

    @Test func concurrentRequestsShareOneLogin() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let dispatcharr = client(fake.url, Self.password)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { _ = try await dispatcharr.groups() } }
            try await group.waitForAll()
        }
        #expect(fake.server.requests("POST", "/api/accounts/token/").count == 1)
        #expect(fake.server.requests("GET", "/api/channels/groups/").count == 4)
    }

    @Test func aWrongPasswordCostsOneLoginAttemptNotOnePerRequest() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let dispatcharr = client(fake.url, .jwt(token: nil, user: FakeDispatcharr.user, password: "wrong"))
        for _ in 0..<5 {
            do {
                _ = try await dispatcharr.channels()
                Issue.record("a wrong password was accepted")
            } catch {
                guard case .unauthorized(let detail) = error else { Issue.record("got \(error)"); continue }
                #expect(detail.contains("No active account found"))
            }
        }
        #expect(fake.server.requests("POST", "/api/accounts/token/").count == 1)
        #expect(fake.server.requests("GET", "/api/channels/channels/").isEmpty)
    }

    @Test func aThrottledLoginIsNotRetriedBeforeRetryAfter() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        fake.setFault { request in
            request.path == "/api/accounts/token/"
                ? .respond(status: 429, headers: ["Retry-After: 2"], body: #"{"detail":"Request was throttled. Expected available in 2 seconds."}"#)
                : nil
        }
        let dispatcharr = client(fake.url, Self.password)
        let started = ContinuousClock.now
        await #expect(throws: DispatcharrError.throttled(retryAfter: .seconds(2))) { try await dispatcharr.channels() }
        // Within Retry-After: refused here, nothing sent.
        do {
            _ = try await dispatcharr.channels()
            Issue.record("no throttle")
        } catch {
            guard case .throttled(let wait) = error else { Issue.record("got \(error)"); return }
            #expect(wait > .zero && wait <= .seconds(2))
        }
        #expect(fake.server.requests("POST", "/api/accounts/token/").count == 1)
        #expect(dispatcharr.counts.count(.throttled) == 2)
        fake.setFault(nil)
        // Waiting for the very interval under test: Retry-After itself.
        try await Task.sleep(until: started + .seconds(2) + .milliseconds(100))
        _ = try await dispatcharr.channels()
        #expect(fake.server.requests("POST", "/api/accounts/token/").count == 2)
        let logins = fake.server.requests("POST", "/api/accounts/token/")
        #expect(logins[1].at - logins[0].at >= .seconds(2))
    }

    // MARK: Faults

    @Test func aDownDispatcharrIsUnreachableAndShownInStatus() async throws {
        let port = try StandInServer.closedPort()
        let sync = sync("http://127.0.0.1:\(port)")
        await #expect {
            try await sync.syncOnce()
        } throws: { error in
            guard let error = error as? DispatcharrError, case .unreachable = error else { return false }
            return true
        }
        let status = sync.status
        #expect(status.configured && !status.reachable)
        #expect(status.lastError?.contains("unreachable") == true)
        #expect(sync.client.counts.count(.unreachable) == 1)
    }

    @Test func aHungDispatcharrTimesOutWithinTheLimit() async throws {
        let server = try StandInServer { _ in .hang }
        defer { server.stop() }
        let dispatcharr = client(server.url, limits: .init(timeout: .seconds(1)))
        let started = ContinuousClock.now
        await #expect {
            try await dispatcharr.channels()
        } throws: { error in
            guard let error = error as? DispatcharrError, case .timedOut = error else { return false }
            return true
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .seconds(1) && elapsed < .seconds(3))
    }

    @Test func serverErrorsAreRetriedWithGrowingDelaysThenReported() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        fake.setFault { request in
            request.method == "PATCH" ? .respond(status: 500, headers: ["Content-Type: text/html"], body: "<h1>Server Error (500)</h1>") : nil
        }
        let sync = sync(fake.url)
        try await sync.syncOnce()
        let pushed = ContinuousClock.now
        let outcome = sync.pushOrder(channelID: 1, rankedContentIDs: [FakeDispatcharr.contentID(0, 2)], failedContentIDs: [])
        // The caller is not held up by Dispatcharr.
        #expect(ContinuousClock.now - pushed < .milliseconds(100))
        #expect(outcome == .queued)
        #expect(sync.status.pendingWrites == 1)
        await sync.waitForWrites()
        let patches = fake.server.requests("PATCH", "/api/channels/channels/1/")
        #expect(patches.count == 4)
        let gaps = zip(patches.dropFirst(), patches).map { $0.at - $1.at }
        #expect(gaps.count == 3)
        if gaps.count == 3 {
            #expect(gaps[0] >= .milliseconds(100) && gaps[1] >= .milliseconds(200) && gaps[2] >= .milliseconds(400))
        }
        let status = sync.status
        #expect(status.pendingWrites == 0 && status.writesFailed == 1 && status.writesDone == 0)
        #expect(status.lastError?.contains("HTTP 500") == true)
        #expect(status.lastError?.contains("giving up") == true)
        #expect(sync.client.counts.count(.httpError) == 4)
        #expect(fake.channel(1)?.streams == [1, 2, 3])
    }

    @Test func aWriteThatSucceedsAfterErrorsIsAppliedOnce() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let failures = Counter()
        fake.setFault { request in
            guard request.method == "PATCH", failures.next() <= 2 else { return nil }
            return .respond(status: 503, body: #"{"detail":"busy"}"#)
        }
        let sync = sync(fake.url)
        try await sync.syncOnce()
        #expect(sync.pushOrder(channelID: 2, rankedContentIDs: [FakeDispatcharr.contentID(1, 1)], failedContentIDs: [FakeDispatcharr.contentID(1, 0)]) == .queued)
        await sync.waitForWrites()
        #expect(fake.channel(2)?.streams == [12, 13, 11])
        #expect(fake.server.requests("PATCH", "/api/channels/channels/2/").count == 3)
        #expect(sync.status.writesDone == 1)
        #expect(sync.pushOrder(channelID: 2, rankedContentIDs: [FakeDispatcharr.contentID(1, 1)], failedContentIDs: [FakeDispatcharr.contentID(1, 0)]) == .unchanged)
    }

    @Test func stopDropsQueuedRetries() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        fake.setFault { $0.method == "PATCH" ? .respond(status: 500, body: "{}") : nil }
        let sync = sync(fake.url, retry: .init(initialDelay: .seconds(30), maxDelay: .seconds(30), maxAttempts: 5))
        try await sync.syncOnce()
        #expect(sync.pushOrder(channelID: 1, rankedContentIDs: [FakeDispatcharr.contentID(0, 1)], failedContentIDs: []) == .queued)
        // The first attempt fails and waits 30 s for its retry; stop() ends that wait.
        while fake.server.requests("PATCH", "/api/channels/channels/1/").isEmpty || sync.status.lastError == nil {
            try await Task.sleep(for: .milliseconds(10))
        }
        sync.stop()
        await sync.waitForWrites()
        #expect(sync.status.pendingWrites == 0)
        #expect(fake.server.requests("PATCH", "/api/channels/channels/1/").count == 1)
        fake.setFault(nil)
        #expect(sync.pushOrder(channelID: 1, rankedContentIDs: [FakeDispatcharr.contentID(0, 1)], failedContentIDs: []) == .queued)
        await sync.waitForWrites()
        #expect(fake.channel(1)?.streams == [2, 1, 3])
    }

    @Test func reorderOffWritesNothingButRecordsWhatItWould() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let sync = sync(fake.url, reorder: false)
        try await sync.syncOnce()
        let ranked = [FakeDispatcharr.contentID(0, 2), FakeDispatcharr.contentID(0, 0)]
        #expect(sync.pushOrder(channelID: 1, rankedContentIDs: ranked, failedContentIDs: [FakeDispatcharr.contentID(0, 1)]) == .recorded)
        #expect(sync.pushFacts(contentID: FakeDispatcharr.contentID(0, 2), facts: .init(width: 1280, height: 720, videoCodec: "h264")) == .recorded)
        await sync.waitForWrites()
        #expect(fake.server.requests.allSatisfy { $0.method == "GET" })
        #expect(sync.plannedWrites == [
            .channelStreams(channelID: 1, streamIDs: [3, 1, 2]),
            .streamStats(streamID: 3, fields: ["resolution": .string("1280x720"), "video_codec": .string("h264")]),
        ])
        #expect(sync.status.reorder == false && sync.status.pendingWrites == 0)
    }

    @Test func duplicateStreamIDsAreRefusedWithoutSending() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        let dispatcharr = client(fake.url)
        await #expect {
            try await dispatcharr.setChannelStreams(channelID: 1, streamIDs: [1, 2, 1])
        } throws: { error in
            guard let error = error as? DispatcharrError, case .invalidRequest = error else { return false }
            return true
        }
        #expect(fake.server.requests.isEmpty)
    }

    @Test func factsAreMergedIntoWhatAnotherToolWrote() async throws {
        let fake = try FakeDispatcharr.seeded()
        defer { fake.stop() }
        fake.add(Stream(id: 50, name: "x", url: "acestream://\(FakeDispatcharr.contentID(5, 0))",
                        stats: .object(["ace_peers": .int(7), "video_codec": .string("mpeg2video")])))
        fake.add(FakeDispatcharr.Channel(id: 5, name: "Five", groupID: 1, streams: [50]))
        let sync = sync(fake.url)
        try await sync.syncOnce()
        let facts = DispatcharrStreamFacts(width: 1280, height: 720, fps: 25, videoCodec: "h264", audioCodec: "aac",
                                           audioChannels: 2, bitrateKbps: 3500)
        #expect(sync.pushFacts(contentID: FakeDispatcharr.contentID(5, 0).uppercased(), facts: facts) == .queued)
        await sync.waitForWrites()
        let stats = fake.stream(50)?.stats
        #expect(stats?["ace_peers"] == .int(7))
        #expect(stats?["video_codec"] == .string("h264"))
        #expect(stats?["resolution"] == .string("1280x720"))
        #expect(sync.pushFacts(contentID: FakeDispatcharr.contentID(5, 0), facts: facts) == .unchanged)
        #expect(fake.server.requests("PATCH", "/api/channels/streams/50/").count == 1)
    }
}

typealias Stream = FakeDispatcharr.Stream

/// A thread-safe count for fault closures.
final class Counter: Sendable {
    private let value = Locked(0)
    /// The count after adding one.
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}

import Locking
