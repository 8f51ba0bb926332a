import Dispatcharr
import Foundation
import Locking

/// A stand-in for Dispatcharr's API with the behaviours the real one was seen to have
/// (tokens, plain and paged channel lists, `next` links naming the host it thinks it
/// has, stream_stats replaced on PATCH), plus a `fault` hook that answers first.
final class FakeDispatcharr: Sendable {
    struct Channel: Sendable { var id: Int; var name: String; var groupID: Int?; var streams: [Int] }
    struct Stream: Sendable { var id: Int; var name: String; var url: String; var stats: JSONValue = .null }

    static let user = "admin"
    static let password = "right-password"
    static let apiKey = "fake-api-key"

    private struct State {
        var groups: [(id: Int, name: String)] = []
        var channels: [Channel] = []
        var streams: [Stream] = []
        var access: Set<String> = []
        var refresh: Set<String> = []
        var issued = 0
        var fault: (@Sendable (StandInServer.Request) -> StandInServer.Answer?)?
    }

    private let state = Locked(State())
    private let serverBox = Locked<StandInServer?>(nil)

    init() throws {
        let server = try StandInServer { [unowned self] request in handle(request) }
        serverBox.withLock { $0 = server }
    }

    var server: StandInServer { serverBox.withLock { $0! } }

    var url: String { server.url }

    func stop() { server.stop() }

    func add(group id: Int, _ name: String) { state.withLock { $0.groups.append((id, name)) } }
    func add(_ channel: Channel) { state.withLock { $0.channels.append(channel) } }
    func add(_ stream: Stream) { state.withLock { $0.streams.append(stream) } }
    func channel(_ id: Int) -> Channel? { state.withLock { $0.channels.first { $0.id == id } } }
    func stream(_ id: Int) -> Stream? { state.withLock { $0.streams.first { $0.id == id } } }

    /// Answers before the fake's own logic when it returns an answer.
    func setFault(_ fault: (@Sendable (StandInServer.Request) -> StandInServer.Answer?)?) {
        state.withLock { $0.fault = fault }
    }

    /// Forgets every access token (as if they expired); with `refreshToo`, refresh tokens as well.
    func expireTokens(refreshToo: Bool) {
        state.withLock { state in
            state.access = []
            if refreshToo { state.refresh = [] }
        }
    }

    /// Three AceStream channels in group 1 ("Sports") and one other-only channel in group 2.
    static func seeded() throws -> FakeDispatcharr {
        let fake = try FakeDispatcharr()
        fake.add(group: 1, "Sports")
        fake.add(group: 2, "News")
        for c in 0..<3 {
            var ids: [Int] = []
            for s in 0..<3 {
                let id = c * 10 + s + 1
                fake.add(Stream(id: id, name: "c\(c)s\(s)", url: "http://127.0.0.1:6878/ace/getstream?id=\(contentID(c, s))"))
                ids.append(id)
            }
            fake.add(Channel(id: c + 1, name: "Sports \(c)", groupID: 1, streams: ids))
        }
        fake.add(Stream(id: 100, name: "plain", url: "http://example.invalid/live.m3u8"))
        fake.add(Channel(id: 9, name: "News", groupID: 2, streams: [100]))
        return fake
    }

    static func contentID(_ channel: Int, _ stream: Int) -> String {
        String(repeating: String(format: "%x", channel), count: 20) + String(repeating: String(format: "%x", stream + 10), count: 20)
    }

    private func handle(_ request: StandInServer.Request) -> StandInServer.Answer {
        if let fault = state.withLock({ $0.fault }), let answer = fault(request) { return answer }
        let body = JSONValue.parse(request.body)
        return state.withLock { state -> StandInServer.Answer in
            switch (request.method, request.path) {
            case ("POST", "/api/accounts/token/"):
                guard body?["username"]?.stringValue == Self.user, body?["password"]?.stringValue == Self.password else {
                    return Self.json(401, ["detail": .string("No active account found with the given credentials")])
                }
                state.issued += 1
                let access = "access-\(state.issued)", refresh = "refresh-\(state.issued)"
                state.access.insert(access)
                state.refresh.insert(refresh)
                return Self.json(200, ["access": .string(access), "refresh": .string(refresh)])
            case ("POST", "/api/accounts/token/refresh/"):
                guard let refresh = body?["refresh"]?.stringValue, state.refresh.contains(refresh) else {
                    return Self.json(401, ["detail": .string("Token is invalid"), "code": .string("token_not_valid")])
                }
                state.issued += 1
                let access = "access-\(state.issued)"
                state.access.insert(access)
                return Self.json(200, ["access": .string(access)])
            default:
                break
            }
            let bearer = request.header("Authorization").map { String($0.dropFirst("Bearer ".count)) }
            guard request.header("X-API-Key") == Self.apiKey || bearer.map(state.access.contains) == true else {
                return Self.json(401, ["detail": .string("Given token not valid for any token type"), "code": .string("token_not_valid")])
            }
            let parts = request.path.split(separator: "/").map(String.init)
            guard parts.count >= 3, parts.count <= 4, parts[0] == "api", parts[1] == "channels" else { return Self.notFound }
            let route = parts.count == 4 ? "\(parts[2])/id" : parts[2]
            let id = parts.count == 4 ? parts[3] : ""
            switch (request.method, route) {
            case ("GET", "groups"):
                return Self.list(state.groups.map { .object(["id": .int($0.id), "name": .string($0.name)]) })
            case ("GET", "channels"):
                let all = state.channels.map(Self.encode)
                guard let size = Self.queryValue(request.query, "page_size").flatMap(Int.init) else { return Self.list(all) }
                let page = Self.queryValue(request.query, "page").flatMap(Int.init) ?? 1
                let slice = Array(all.dropFirst((page - 1) * size).prefix(size))
                guard !slice.isEmpty || page == 1 else { return Self.json(404, ["detail": .string("Invalid page.")]) }
                let next: JSONValue = page * size < all.count
                    ? .string("http://dispatcharr.internal:9191/api/channels/channels/?page=\(page + 1)&page_size=\(size)") : .null
                return Self.json(200, ["count": .int(all.count), "next": next, "previous": .null, "results": .array(slice)])
            case ("GET", "channels/id"):
                guard let channel = state.channels.first(where: { String($0.id) == id }) else { return Self.notFound }
                return Self.json(200, Self.encode(channel))
            case ("PATCH", "channels/id"):
                guard let index = state.channels.firstIndex(where: { String($0.id) == id }) else { return Self.notFound }
                let ids = body?["streams"]?.arrayValue?.compactMap(\.intValue) ?? []
                guard Set(ids).count == ids.count else { return .respond(status: 500, headers: ["Content-Type: text/html"], body: "<h1>Server Error (500)</h1>") }
                state.channels[index].streams = ids
                return Self.json(200, Self.encode(state.channels[index]))
            case ("GET", "streams"):
                let ids = Set((Self.queryValue(request.query, "ids") ?? "").split(separator: ",").compactMap { Int($0) })
                let found = state.streams.filter { ids.contains($0.id) }
                guard !found.isEmpty else { return Self.notFound }
                return Self.list(found.map(Self.encode))
            case ("GET", "streams/id"):
                guard let stream = state.streams.first(where: { String($0.id) == id }) else { return Self.notFound }
                return Self.json(200, Self.encode(stream))
            case ("PATCH", "streams/id"):
                guard let index = state.streams.firstIndex(where: { String($0.id) == id }) else { return Self.notFound }
                if let stats = body?["stream_stats"] { state.streams[index].stats = stats }
                return Self.json(200, Self.encode(state.streams[index]))
            default:
                return Self.notFound
            }
        }
    }

    private static let notFound = StandInServer.Answer.respond(status: 404, body: #"{"detail":"Not found."}"#)

    private static func json(_ status: Int, _ value: JSONValue) -> StandInServer.Answer {
        .respond(status: status, body: value.description)
    }

    private static func json(_ status: Int, _ members: [String: JSONValue]) -> StandInServer.Answer {
        json(status, .object(members))
    }

    private static func list(_ items: [JSONValue]) -> StandInServer.Answer { json(200, .array(items)) }

    private static func encode(_ channel: Channel) -> JSONValue {
        .object(["id": .int(channel.id), "name": .string(channel.name), "channel_number": .double(Double(channel.id)),
                 "channel_group_id": channel.groupID.map { .int($0) } ?? .null, "tvg_id": .null,
                 "streams": .array(channel.streams.map { .int($0) })])
    }

    private static func encode(_ stream: Stream) -> JSONValue {
        .object(["id": .int(stream.id), "name": .string(stream.name), "url": .string(stream.url), "stream_stats": stream.stats])
    }

    private static func queryValue(_ query: String, _ name: String) -> String? {
        URLComponents(string: "http://x/?" + query)?.queryItems?.first { $0.name == name }?.value
    }
}
