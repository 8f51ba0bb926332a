import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Locking

/// A stand-in for Gluetun's HTTP control server on 127.0.0.1 (port 0), with the
/// routes and answers Gluetun documents and faults on command: the tunnel down
/// (empty public IP), an error status on every route, slow answers, the
/// forwarded port changing, an API key required, releases without `/v1/portforward`.
final class GluetunStandIn: Sendable {
    /// What the stand-in answers; change it with `set`.
    struct Behaviour: Sendable {
        /// `public_ip`; "" while the tunnel is down.
        var publicIP = "203.0.113.7"
        /// The forwarded port, 0 for none.
        var forwardedPort = 0
        /// Answers every route with this status and `{}` instead (503 while Gluetun restarts the tunnel).
        var failWith: Int?
        /// Waits this long before answering.
        var delay: Duration = .zero
        /// Older releases have only `/v1/openvpn/portforwarded`: `/v1/portforward` is a 404.
        var hasPortForwardRoute = true
        /// Requires `X-API-Key` with this value (401 otherwise).
        var apiKey: String?
    }

    private let behaviour = Locked(Behaviour())
    private let hits = Locked<[String: Int]>([:])
    private let server: Task<Void, any Error>
    let port: Int

    private init(server: Task<Void, any Error>, port: Int) {
        self.server = server
        self.port = port
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Starts one and waits until it listens.
    static func start(_ configure: (inout Behaviour) -> Void = { _ in }) async throws -> GluetunStandIn {
        let holder = Locked<GluetunStandIn?>(nil)
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let router = Router()
        for path in ["/v1/publicip/ip", "/v1/portforward", "/v1/openvpn/portforwarded", "/v1/openvpn/status", "/v1/vpn/status"] {
            router.get(RouterPath(path)) { request, _ in
                guard let standIn = holder.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
                return try await standIn.answer(path: path, apiKey: request.headers[HTTPField.Name("X-API-Key")!])
            }
        }
        var logger = Logger(label: "gluetun-stand-in")
        logger.logLevel = .critical
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                      onServerRunning: { channel in listening.yield(channel.localAddress?.port ?? 0) },
                                      logger: logger)
        let task = Task { try await application.runService() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw PodmanServiceError("the Gluetun stand-in did not listen") }
        let standIn = GluetunStandIn(server: task, port: port)
        holder.withLock { $0 = standIn }
        standIn.set(configure)
        return standIn
    }

    func set(_ change: (inout Behaviour) -> Void) { behaviour.withLock { change(&$0) } }

    /// Requests each route got so far.
    func hits(_ path: String) -> Int { hits.withLock { $0[path] ?? 0 } }

    func stop() { server.cancel() }

    private func answer(path: String, apiKey: String?) async throws -> Response {
        hits.withLock { $0[path, default: 0] += 1 }
        let now = behaviour.withLock { $0 }
        if now.delay > .zero { try await Task.sleep(for: now.delay) }
        if let key = now.apiKey, key != apiKey { return Self.json(401, #"{"error":"unauthorized"}"#) }
        if let status = now.failWith { return Self.json(status, "{}") }
        switch path {
        case "/v1/publicip/ip":
            return Self.json(200, #"{"public_ip":"\#(now.publicIP)","region":"Test","country":"Nowhere","city":"Loopback","organization":"stand-in"}"#)
        case "/v1/portforward":
            return now.hasPortForwardRoute ? Self.json(200, #"{"port":\#(now.forwardedPort)}"#) : Self.json(404, #"{"error":"not found"}"#)
        case "/v1/openvpn/portforwarded":
            return Self.json(200, #"{"port":\#(now.forwardedPort)}"#)
        default:
            return Self.json(200, #"{"status":"\#(now.publicIP.isEmpty ? "stopped" : "running")"}"#)
        }
    }

    private static func json(_ status: Int, _ body: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
