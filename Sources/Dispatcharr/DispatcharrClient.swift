import CurlHTTP
import Foundation
import Logging

/// Dispatcharr's REST API as acerelay uses it: channels, groups, streams, the stream
/// order of a channel, and `stream_stats`; with the login, refresh and throttle rules
/// of the real server.
///
/// Authentication: with an API key every request carries `X-API-Key` and nothing
/// else happens. With JWTs a request that gets 401 refreshes the access token once
/// (`/api/accounts/token/refresh/`; refresh tokens are not rotated) and, only when the
/// refresh token is refused too, logs in once; a third 401 is `unauthorized`. So no
/// request ever makes more than one refresh and one login. Dispatcharr allows 3 logins
/// a minute per address and answers 429 with `Retry-After` past that; the client then
/// sends nothing to the login endpoint until that time has passed (requests fail with
/// `throttled` meanwhile), and after a refused password it waits `loginRetryAfterRefusal`
/// before trying again, so a wrong password costs one login attempt per interval.
/// Concurrent requests that need a login share one.
public actor DispatcharrClient {
    /// Time and size limits for the requests; the defaults suit a LAN server.
    public struct Limits: Sendable {
        /// Time for one exchange, connection included.
        public var timeout: Duration
        /// Time to connect.
        public var connectTimeout: Duration
        /// Largest answer for a single object (a channel, a stream, a token).
        public var objectBodyBytes: Int
        /// Largest answer for one list or page (up to 10000 streams).
        public var listBodyBytes: Int
        /// Most pages followed through `next` links in one listing.
        public var maxPages: Int
        /// Channels per page when listing paged.
        public var channelPageSize: Int
        /// How long a refused login blocks the next one.
        public var loginRetryAfterRefusal: Duration

        /// Limits as given; defaults: 10 s per request, 3 s to connect, 1 MiB per object,
        /// 16 MiB per list page, 200 pages, 500 channels a page, 60 s after a refused login.
        public init(timeout: Duration = .seconds(10), connectTimeout: Duration = .seconds(3),
                    objectBodyBytes: Int = 1 << 20, listBodyBytes: Int = 16 << 20, maxPages: Int = 200,
                    channelPageSize: Int = 500, loginRetryAfterRefusal: Duration = .seconds(60)) {
            self.timeout = timeout
            self.connectTimeout = connectTimeout
            self.objectBodyBytes = objectBodyBytes
            self.listBodyBytes = listBodyBytes
            self.maxPages = maxPages
            self.channelPageSize = channelPageSize
            self.loginRetryAfterRefusal = loginRetryAfterRefusal
        }
    }

    /// The exchanges with Dispatcharr by outcome, for `acerelay_dispatcharr_requests_total`.
    public nonisolated let counts: DispatcharrRequestCounts
    /// The server's root URL, without a trailing slash.
    public nonisolated let baseURL: String

    private let authentication: DispatcharrConfiguration.Authentication
    private let http: HTTPClient
    private let limits: Limits
    private let logger: Logger
    private let clock = ContinuousClock()

    /// The JWTs held now (JWT mode only).
    private var accessToken: String?
    private var refreshToken: String?
    /// No login is sent before this instant: Dispatcharr's Retry-After, or the pause after a refused password.
    private var loginBlockedUntil: ContinuousClock.Instant?
    /// What the last refused login said, while `loginBlockedUntil` holds because of it.
    private var loginRefusal: String?
    /// The login in flight, which concurrent requests wait for instead of sending their own.
    private var loginInFlight: Task<Result<Void, DispatcharrError>, Never>?

    /// A client for `configuration`'s server and credentials, sending through `http`.
    public init(configuration: DispatcharrConfiguration, http: HTTPClient, logger: Logger,
                limits: Limits = Limits(), counts: DispatcharrRequestCounts = DispatcharrRequestCounts()) {
        self.baseURL = configuration.baseURL
        self.authentication = configuration.authentication
        self.http = http
        self.limits = limits
        self.logger = logger
        self.counts = counts
        if case .jwt(let token, _, _) = configuration.authentication {
            accessToken = token
        }
    }

    // MARK: - Reading

    /// Every channel group (`GET /api/channels/groups/`, a plain list).
    public func groups() async throws(DispatcharrError) -> [DispatcharrGroup] {
        try await list(path: "/api/channels/groups/", query: []).compactMap(DispatcharrGroup.init(json:))
    }

    /// Every channel (`GET /api/channels/channels/`), read in pages of
    /// `Limits.channelPageSize` following `next` links.
    public func channels() async throws(DispatcharrError) -> [DispatcharrChannel] {
        try await channels(pageSize: limits.channelPageSize)
    }

    /// Every channel, asked for with `page_size` or, when `pageSize` is nil, without it,
    /// which Dispatcharr answers with one plain list. Either answer shape is accepted
    /// whichever was asked for; at most `Limits.maxPages` pages are followed.
    public func channels(pageSize: Int?) async throws(DispatcharrError) -> [DispatcharrChannel] {
        let query = pageSize.map { [URLQueryItem(name: "page_size", value: String(max(1, $0)))] } ?? []
        return try await list(path: "/api/channels/channels/", query: query).compactMap(DispatcharrChannel.init(json:))
    }

    /// One channel (`GET /api/channels/channels/{id}/`).
    public func channel(id: Int) async throws(DispatcharrError) -> DispatcharrChannel {
        let answer = try await object(.get, path: "/api/channels/channels/\(id)/")
        guard let channel = DispatcharrChannel(json: answer) else { throw .badResponse(reason: "channel \(id) has no id or name") }
        return channel
    }

    /// The streams with these ids, in no particular order; ids Dispatcharr does not
    /// know are missing from the answer.
    ///
    /// Asks `GET /api/channels/streams/?ids=a,b,c` in chunks of 100 ids; a server that
    /// ignores `ids` answers its paged list of every stream, which is then filtered.
    public func streams(ids: [Int]) async throws(DispatcharrError) -> [DispatcharrStream] {
        let wanted = Set(ids)
        var found: [Int: DispatcharrStream] = [:]
        let unique = Array(wanted).sorted()
        var start = 0
        while start < unique.count {
            let chunk = unique[start..<min(start + 100, unique.count)]
            start += 100
            let query = [URLQueryItem(name: "ids", value: chunk.map(String.init).joined(separator: ",")),
                         URLQueryItem(name: "page_size", value: "10000")]
            let items: [JSONValue]
            do throws(DispatcharrError) {
                items = try await list(path: "/api/channels/streams/", query: query)
            } catch .http(404, _) {
                // Dispatcharr answers 404 when none of the ids exists any more.
                continue
            }
            for stream in items.compactMap(DispatcharrStream.init(json:)) where wanted.contains(stream.id) {
                found[stream.id] = stream
            }
        }
        return Array(found.values)
    }

    /// One stream (`GET /api/channels/streams/{id}/`).
    public func stream(id: Int) async throws(DispatcharrError) -> DispatcharrStream {
        let answer = try await object(.get, path: "/api/channels/streams/\(id)/")
        guard let stream = DispatcharrStream(json: answer) else { throw .badResponse(reason: "stream \(id) has no id") }
        return stream
    }

    // MARK: - Writing

    /// Sets the channel's streams to exactly `streamIDs`, in this order
    /// (`PATCH /api/channels/channels/{id}/ {"streams":[...]}`), and returns the channel
    /// as Dispatcharr now holds it. Ids left out are unlinked from the channel.
    ///
    /// Duplicate ids are refused here (`invalidRequest`): Dispatcharr answers them with a 500.
    @discardableResult
    public func setChannelStreams(channelID: Int, streamIDs: [Int]) async throws(DispatcharrError) -> DispatcharrChannel {
        guard Set(streamIDs).count == streamIDs.count else {
            throw .invalidRequest(reason: "stream ids for channel \(channelID) repeat an id: \(streamIDs)")
        }
        let body = JSONValue.object(["streams": .array(streamIDs.map { .int($0) })])
        let answer = try await object(.patch, path: "/api/channels/channels/\(channelID)/", body: body)
        guard let channel = DispatcharrChannel(json: answer) else {
            throw .badResponse(reason: "PATCH of channel \(channelID) answered no channel")
        }
        return channel
    }

    /// Sets `fields` in the stream's `stream_stats` and keeps every other member.
    ///
    /// Dispatcharr replaces the whole object on PATCH, so this reads the current value
    /// (`GET /api/channels/streams/{id}/`), merges (`StreamStatsMerge`), and PATCHes
    /// `{"stream_stats":{...}}`. Returns what Dispatcharr stored. Another writer between
    /// the read and the write loses its change; Dispatcharr offers nothing to prevent it.
    @discardableResult
    public func mergeStreamStats(streamID: Int, fields: [String: JSONValue]) async throws(DispatcharrError) -> JSONValue {
        let current = try await stream(id: streamID).streamStats
        let merged = StreamStatsMerge.merged(current, with: fields)
        let answer = try await object(.patch, path: "/api/channels/streams/\(streamID)/",
                                      body: .object(["stream_stats": merged]))
        return answer["stream_stats"] ?? .null
    }

    // MARK: - Exchanges

    /// Every item of a listing: a plain JSON list, or `{count,next,previous,results}`
    /// pages whose `next` links are followed.
    private func list(path: String, query: [URLQueryItem]) async throws(DispatcharrError) -> [JSONValue] {
        var url = makeURL(path: path, query: query)
        var items: [JSONValue] = []
        for _ in 0..<limits.maxPages {
            let answer = try await json(.get, url: url, body: nil, maxBody: limits.listBodyBytes)
            if let list = answer.arrayValue { return items + list }
            guard let results = answer["results"]?.arrayValue else {
                throw .badResponse(reason: "\(path) answered neither a list nor a page")
            }
            items += results
            guard let next = answer["next"]?.stringValue else { return items }
            url = sameServer(next)
        }
        throw .badResponse(reason: "\(path) has more than \(limits.maxPages) pages")
    }

    private func object(_ method: HTTPRequest.Method, path: String, body: JSONValue? = nil) async throws(DispatcharrError) -> JSONValue {
        try await json(method, url: makeURL(path: path, query: []), body: body, maxBody: limits.objectBodyBytes)
    }

    private func json(_ method: HTTPRequest.Method, url: String, body: JSONValue?, maxBody: Int) async throws(DispatcharrError) -> JSONValue {
        let response = try await authorized(method, url: url, body: body, maxBody: maxBody)
        guard let value = JSONValue.parse(response.body) else {
            counts.record(.badResponse)
            throw .badResponse(reason: "\(method.rawValue) \(Self.path(of: url)) answered \(response.status) with a body that is not JSON")
        }
        return value
    }

    /// One request with credentials, renewing them as the type's comment describes;
    /// returns a 2xx answer or throws.
    private func authorized(_ method: HTTPRequest.Method, url: String, body: JSONValue?, maxBody: Int) async throws(DispatcharrError) -> HTTPResponse {
        if case .apiKey(let key) = authentication {
            return try checked(await exchange(method, url: url, body: body, maxBody: maxBody, headers: [("X-API-Key", key)]))
        }
        var refreshed = false
        var loggedIn = false
        while true {
            if accessToken == nil {
                guard !loggedIn else { throw .unauthorized(detail: "no access token after logging in") }
                loggedIn = true
                try await login()
            }
            let sentWith = accessToken ?? ""
            let response = try await exchange(method, url: url, body: body, maxBody: maxBody,
                                              headers: [("Authorization", "Bearer \(sentWith)")])
            guard response.status == 401 else { return try checked(response) }
            counts.record(.unauthorized)
            let detail = Self.detail(response)
            if accessToken != sentWith, !refreshed {
                // Another request renewed the token meanwhile; that counts as this one's refresh.
                refreshed = true
                continue
            }
            if !refreshed, !loggedIn, let refresh = refreshToken {
                refreshed = true
                if try await renewAccess(with: refresh) { continue }
            }
            guard !loggedIn, hasPassword else { throw .unauthorized(detail: detail) }
            loggedIn = true
            accessToken = nil
            try await login()
        }
    }

    private var hasPassword: Bool {
        if case .jwt(_, .some, .some) = authentication { return true }
        return false
    }

    /// Trades the refresh token for a new access token; false when Dispatcharr refuses
    /// the refresh token (expired, invalid), which is then dropped.
    private func renewAccess(with refresh: String) async throws(DispatcharrError) -> Bool {
        let response = try await exchange(.post, url: makeURL(path: "/api/accounts/token/refresh/", query: []),
                                          body: .object(["refresh": .string(refresh)]),
                                          maxBody: limits.objectBodyBytes, headers: [])
        if response.status == 401 {
            counts.record(.unauthorized)
            logger.info("dispatcharr refresh token refused, logging in", metadata: ["dispatcharr.detail": "\(Self.detail(response))"])
            if refreshToken == refresh { refreshToken = nil }
            return false
        }
        let answer = try checked(response)
        guard let access = JSONValue.parse(answer.body)?["access"]?.stringValue else {
            counts.record(.badResponse)
            throw .badResponse(reason: "token refresh answered no access token")
        }
        accessToken = access
        return true
    }

    /// Logs in once, or waits for the login another request started.
    private func login() async throws(DispatcharrError) {
        if let inFlight = loginInFlight {
            try await inFlight.value.get()
            return
        }
        let task = Task { await self.sendLogin() }
        loginInFlight = task
        let result = await task.value
        loginInFlight = nil
        try result.get()
    }

    private func sendLogin() async -> Result<Void, DispatcharrError> {
        guard case .jwt(_, .some(let user), .some(let password)) = authentication else {
            return .failure(.unauthorized(detail: "the access token was refused and no DISPATCHARR_USER/DISPATCHARR_PASS is set to log in again"))
        }
        let now = clock.now
        if let blocked = loginBlockedUntil, now < blocked {
            counts.record(loginRefusal == nil ? .throttled : .unauthorized)
            if let refusal = loginRefusal {
                return .failure(.unauthorized(detail: "\(refusal) (next login attempt in \(DispatcharrError.seconds(blocked - now)) s)"))
            }
            return .failure(.throttled(retryAfter: blocked - now))
        }
        let response: HTTPResponse
        do throws(DispatcharrError) {
            response = try await exchange(.post, url: makeURL(path: "/api/accounts/token/", query: []),
                                          body: .object(["username": .string(user), "password": .string(password)]),
                                          maxBody: limits.objectBodyBytes, headers: [])
        } catch {
            return .failure(error)
        }
        switch response.status {
        case 429:
            counts.record(.throttled)
            let wait = Self.retryAfter(response) ?? .seconds(60)
            loginBlockedUntil = clock.now + wait
            loginRefusal = nil
            logger.warning("dispatcharr throttles logins", metadata: ["dispatcharr.retry_after_s": "\(DispatcharrError.seconds(wait))"])
            return .failure(.throttled(retryAfter: wait))
        case 400, 401, 403:
            counts.record(.unauthorized)
            let detail = Self.detail(response)
            loginBlockedUntil = clock.now + limits.loginRetryAfterRefusal
            loginRefusal = "login refused: \(detail)"
            logger.error("dispatcharr refused the login", metadata: ["dispatcharr.user": "\(user)", "dispatcharr.detail": "\(detail)"])
            return .failure(.unauthorized(detail: detail))
        default:
            break
        }
        do throws(DispatcharrError) {
            let answer = try checked(response)
            guard let tokens = JSONValue.parse(answer.body), let access = tokens["access"]?.stringValue else {
                counts.record(.badResponse)
                return .failure(.badResponse(reason: "login answered no access token"))
            }
            accessToken = access
            refreshToken = tokens["refresh"]?.stringValue
            loginBlockedUntil = nil
            loginRefusal = nil
            logger.debug("dispatcharr login succeeded")
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    /// Sends one request; counts and returns any answer (a 2xx one counted as ok later
    /// by `checked`), throws on no answer.
    private func exchange(_ method: HTTPRequest.Method, url: String, body: JSONValue?, maxBody: Int,
                          headers: [(name: String, value: String)]) async throws(DispatcharrError) -> HTTPResponse {
        var request = HTTPRequest(url: url, method: method, headers: [("Accept", "application/json")] + headers,
                                  connectTimeout: limits.connectTimeout, timeout: limits.timeout,
                                  maxBodyBytes: maxBody, userAgent: "acerelay")
        if let body { request.body = .json(body.encoded()) }
        switch await http.send(request) {
        case .success(let response):
            return response
        case .failure(let failure):
            let error: DispatcharrError = switch failure {
            case .couldNotConnect(let reason): .unreachable(reason: reason)
            case .timedOut(let reason): .timedOut(reason: reason)
            case .bodyTooLarge(let limit): .badResponse(reason: "\(method.rawValue) \(Self.path(of: url)) answered more than \(limit) bytes")
            case .headersTooLarge(let limit): .badResponse(reason: "headers larger than \(limit) bytes")
            case .cancelled: .unreachable(reason: "request cancelled")
            default: .unreachable(reason: failure.description)
            }
            counts.record(error.result)
            throw error
        }
    }

    /// The answer when it is a 2xx, counted; the matching error otherwise, counted.
    private func checked(_ response: HTTPResponse) throws(DispatcharrError) -> HTTPResponse {
        switch response.status {
        case 200..<300:
            counts.record(.ok)
            return response
        case 401:
            counts.record(.unauthorized)
            throw .unauthorized(detail: Self.detail(response))
        case 429:
            counts.record(.throttled)
            throw .throttled(retryAfter: Self.retryAfter(response) ?? .seconds(60))
        default:
            counts.record(.httpError)
            throw .http(status: response.status, detail: Self.detail(response))
        }
    }

    // MARK: - URLs and answers

    private func makeURL(path: String, query: [URLQueryItem]) -> String {
        guard !query.isEmpty else { return baseURL + path }
        var components = URLComponents()
        components.queryItems = query
        return baseURL + path + "?" + (components.percentEncodedQuery ?? "")
    }

    /// `next` pointed at the configured server: Dispatcharr builds it from the Host it
    /// was reached as, which behind a proxy need not be the address acerelay uses.
    private func sameServer(_ next: String) -> String {
        guard let components = URLComponents(string: next), components.host != nil else {
            return next.hasPrefix("/") ? baseURL + next : baseURL + "/" + next
        }
        let base = URLComponents(string: baseURL)
        let basePath = base?.percentEncodedPath ?? ""
        var path = components.percentEncodedPath
        if !basePath.isEmpty, !path.hasPrefix(basePath + "/") { path = basePath + path }
        let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
        var root = baseURL
        if !basePath.isEmpty { root.removeLast(basePath.count) }
        return root + path + query
    }

    private static func path(of url: String) -> String {
        URLComponents(string: url)?.path ?? url
    }

    /// Dispatcharr's `detail` member, or the start of the body on one line.
    static func detail(_ response: HTTPResponse) -> String {
        if let detail = JSONValue.parse(response.body)?["detail"]?.stringValue { return detail }
        let text = String(decoding: response.body.prefix(200), as: UTF8.self)
            .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
        return text.isEmpty ? "empty body" : text
    }

    /// `Retry-After` in seconds (the form Dispatcharr sends); nil when absent or a date.
    static func retryAfter(_ response: HTTPResponse) -> Duration? {
        guard let value = response.header("Retry-After")?.trimmingCharacters(in: .whitespaces),
              let seconds = Int(value), seconds >= 0 else { return nil }
        return .seconds(min(seconds, 3600))
    }
}
