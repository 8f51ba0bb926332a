import CurlHTTP
import Foundation

/// Gluetun's HTTP control server, read-only: the public IP and the forwarded port.
///
/// Every request goes through the control plane's `HTTPClient` with a short
/// connect and total timeout, so a Gluetun that hangs costs one check its
/// timeout and nothing else.
public struct GluetunControlServer: Sendable {
    /// Why a route gave no usable answer.
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// Connection refused, timed out, or any transport failure.
        case unreachable(String)
        /// An HTTP status other than 200 (401 for a wrong or missing key, 503 while the tunnel restarts).
        case status(Int)
        /// A 200 whose body is not the JSON the route documents.
        case malformed(String)

        public var description: String {
            switch self {
            case .unreachable(let reason): "control server unreachable: \(reason)"
            case .status(401): "control server answered 401: set GLUETUN_API_KEY to a key Gluetun accepts"
            case .status(let status): "control server answered HTTP \(status)"
            case .malformed(let what): "control server sent \(what)"
            }
        }
    }

    private let baseURL: String
    private let apiKey: String?
    private let timeout: Duration
    private let client: HTTPClient

    public init(settings: VPNSettings, client: HTTPClient = .shared) {
        baseURL = settings.controlURL
        apiKey = settings.apiKey
        timeout = settings.requestTimeout
        self.client = client
    }

    /// `GET /v1/publicip/ip`: the tunnel's public address; empty while the tunnel is down.
    public func publicIP() async -> Result<String, Failure> {
        await get("/v1/publicip/ip").flatMap(GluetunAnswer.publicIP)
    }

    /// The forwarded P2P port, nil for none: `GET /v1/portforward`, else (older
    /// releases answer it 404) `GET /v1/openvpn/portforwarded`.
    public func forwardedPort() async -> Result<Int?, Failure> {
        let current = await get("/v1/portforward")
        if case .failure(.status(let status)) = current, status == 404 || status == 405 {
            return await get("/v1/openvpn/portforwarded").flatMap(GluetunAnswer.port)
        }
        return current.flatMap(GluetunAnswer.port)
    }

    private func get(_ path: String) async -> Result<[UInt8], Failure> {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let apiKey, !apiKey.isEmpty { headers.append(("X-API-Key", apiKey)) }
        let request = HTTPRequest(url: baseURL + path, headers: headers, connectTimeout: min(timeout, .seconds(1)),
                                  timeout: timeout, maxBodyBytes: 64 << 10)
        switch await client.send(request) {
        case .success(let response) where response.status == 200: return .success(response.body)
        case .success(let response): return .failure(.status(response.status))
        case .failure(let error): return .failure(.unreachable(error.description))
        }
    }
}
