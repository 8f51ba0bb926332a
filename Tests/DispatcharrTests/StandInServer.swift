@_exported import TestSupport

/// A small HTTP/1.1 server on 127.0.0.1 (port 0) for the faults the real Dispatcharr
/// cannot be asked for: it answers each request with what `handler` says, or never.
/// TestSupport's `LoopbackServer`, with the requests it read kept for the tests to look at.
final class StandInServer: Sendable {
    typealias Request = LoopbackServer.Request
    typealias Answer = LoopbackServer.Answer

    private let server: LoopbackServer

    init(handler: @escaping @Sendable (Request) -> Answer) throws {
        server = try LoopbackServer(handler: handler)
    }

    var port: Int { server.port }
    var url: String { server.baseURL }

    /// Every request read so far, in arrival order.
    var requests: [Request] { server.received }

    func requests(_ method: String, _ path: String) -> [Request] {
        requests.filter { $0.method == method && $0.path == path }
    }

    func stop() { server.stop() }

    /// A port on 127.0.0.1 that nothing listens on.
    static func closedPort() throws -> Int { try LoopbackServer.closedPort() }
}

extension LoopbackServer.Answer {
    /// A complete answer, `application/json` unless `headers` (whole lines) name another Content-Type.
    static func respond(status: Int, headers: [String] = [], body: String) -> Self {
        let typed = headers.contains { $0.lowercased().hasPrefix("content-type:") } ? headers : ["Content-Type: application/json"] + headers
        return .answer(status: status, headers: typed, body: Array(body.utf8))
    }

    /// Reads the request and never answers.
    static var hang: Self { .silent }
}

typealias StandInError = TestFailure
