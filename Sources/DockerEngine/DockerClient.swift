import CurlHTTP
import Foundation
import Logging

/// A client of the Docker Engine API (v1.41 paths), over a unix socket or plain
/// HTTP on TCP, for Docker and for podman's compatible service.
///
/// Calls suspend the caller only: the exchanges run on an `HTTPClient`, a thread
/// the client owns, so a hung daemon costs a waiting task,
/// never a thread of the cooperative pool. Every call has a time limit and honours
/// task cancellation. Calls may run concurrently.
public final class DockerClient: Sendable {
    /// Where the daemon listens.
    public let host: DockerHost
    /// Time allowed for one call (added to the container's own grace time for a stop).
    public let requestTimeout: Duration
    /// Time allowed to connect; a daemon that does not accept within it is unreachable.
    public let connectTimeout: Duration
    private let apiPrefix: String
    private let http: HTTPClient
    private let logger: Logger

    /// A client of the daemon at `host`.
    /// - Parameters:
    ///   - requestTimeout: limit for each call; image imports and stops add their own allowance.
    ///   - connectTimeout: limit for opening the connection.
    ///   - apiVersion: the Engine API version in request paths; 1.41 is what podman 4 serves.
    ///   - logger: receives one debug line per call.
    public init(
        host: DockerHost,
        requestTimeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(3),
        apiVersion: String = "1.41",
        logger: Logger = Logger(label: "acerelay.docker")
    ) {
        self.host = host
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
        self.apiPrefix = "/v\(apiVersion)"
        self.logger = logger
        self.http = HTTPClient(name: "docker-api")
    }

    /// A client of the daemon named by `DOCKER_HOST` in `environment` (the default socket when unset).
    /// - Throws: `DockerError.invalidHost` when `DOCKER_HOST` is not `unix://` or `tcp://`.
    public convenience init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        requestTimeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(3),
        logger: Logger = Logger(label: "acerelay.docker")
    ) throws(DockerError) {
        self.init(
            host: try DockerHost.fromEnvironment(environment),
            requestTimeout: requestTimeout, connectTimeout: connectTimeout, logger: logger)
    }

    deinit {
        http.shutdown()
    }

    /// The largest answer kept; the daemon's lists are far below this.
    private static let responseLimit = 32 << 20

    /// Checks that the daemon answers (`GET /_ping`).
    public func ping() async throws(DockerError) {
        // /_ping lives outside the versioned paths.
        let response = try await send(EngineRequest(method: .get, path: "/_ping", timeout: requestTimeout), versioned: false)
        try expect(response, 200)
    }

    /// The daemon's version and platform (`GET /version`).
    public func version() async throws(DockerError) -> DockerVersion {
        let response = try await send(EngineRequest(method: .get, path: "/version", timeout: requestTimeout))
        try expect(response, 200)
        return try decode(DockerVersion.self, from: response, what: "version")
    }

    // MARK: Exchange

    /// Sends `request` and waits for the complete answer, whatever its status.
    /// - Throws: `daemonUnreachable` when no answer came, `cancelled` when the task was cancelled.
    func send(_ request: EngineRequest, versioned: Bool = true) async throws(DockerError) -> EngineResponse {
        let body: HTTPRequest.Body = switch request.body {
        case .empty: .empty
        case .json(let bytes): .json(bytes)
        case .file(let path, let contentType): .file(path: path, contentType: contentType)
        }
        var unixSocketPath: String?
        if case .unixSocket(let path) = host { unixSocketPath = path }
        let exchange = HTTPRequest(
            url: host.baseURL + (versioned ? apiPrefix : "") + request.target,
            method: HTTPRequest.Method(rawValue: request.method.rawValue)!,
            body: body, unixSocketPath: unixSocketPath,
            connectTimeout: connectTimeout, timeout: request.timeout, maxBodyBytes: Self.responseLimit)
        let started = ContinuousClock.now
        let result = await http.send(exchange)
        let elapsed = ContinuousClock.now - started
        switch result {
        case .success(let response):
            logger.debug("docker call", metadata: [
                "docker.call": "\(request.summary)", "docker.status": "\(response.status)",
                "docker.duration_ms": "\(elapsed.milliseconds)",
            ])
            return EngineResponse(status: response.status, body: response.body)
        case .failure(.cancelled):
            throw .cancelled
        case .failure(.unreadableFile(let path, let reason)):
            throw .unreadableFile(path: path, reason: reason)
        case .failure(let failure):
            logger.debug("docker call failed", metadata: [
                "docker.call": "\(request.summary)", "docker.failure": "\(failure)",
                "docker.duration_ms": "\(elapsed.milliseconds)",
            ])
            throw .daemonUnreachable(host: host, reason: Self.reason(failure))
        }
    }

    /// Turns any status but the expected ones into the matching `DockerError`.
    func expect(_ response: EngineResponse, _ accepted: Int...) throws(DockerError) {
        if accepted.contains(response.status) { return }
        throw Self.error(for: response)
    }

    func decode<T: Decodable>(_ type: T.Type, from response: EngineResponse, what: String) throws(DockerError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(response.body))
        } catch {
            throw .decoding(what: what, error: error)
        }
    }

    static func error(for response: EngineResponse) -> DockerError {
        let message = response.errorMessage
        switch response.status {
        case 404:
            return .notFound(message: message)
        case 409:
            return .conflict(message: message)
        case 500 where conflictCauses.contains(response.errorCause ?? ""):
            return .conflict(message: message)
        default:
            return .apiError(status: response.status, message: message)
        }
    }

    /// podman 4.3 answers 500 where Docker answers 409 (a taken name, removing a
    /// running container); its `cause` field names the condition exactly.
    private static let conflictCauses: Set<String> = ["that name is already in use", "container state improper"]

    /// Why no answer came, in words: the socket error when there is one
    /// ("no such file or directory", "connection refused"), else curl's text.
    private static func reason(_ failure: HTTPClientError) -> String {
        switch failure {
        case .couldNotConnect(let reason), .timedOut(let reason), .protocolNotAllowed(let reason):
            reason
        case .other(_, let message):
            message
        case .bodyTooLarge:
            "the answer is larger than \(responseLimit >> 20) MiB"
        case .headersTooLarge, .unreadableFile, .cancelled:
            failure.description
        }
    }
}

extension Duration {
    /// Whole milliseconds, for logs.
    fileprivate var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
