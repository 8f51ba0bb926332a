import CurlHTTP
import Foundation

/// What one engine answered to `get_status`.
public struct ProbeResult: Sendable, Equatable {
    public var healthy: Bool
    public var version: String?
    public var platform: String?
    /// Why the probe failed, for the log and events.
    public var failure: String?
}

/// Asks engines `GET /server/api?api_version=3&method=get_status`, with a short
/// time limit: a hung engine stops answering this before anything else.
///
/// Probes run on an `HTTPClient` (a thread of its own), never on a thread of
/// Swift concurrency's cooperative pool (two threads here), so a hung engine
/// costs a waiting task and nothing more.
public struct EngineProbe: Sendable {
    public var timeout: TimeInterval
    private let client: HTTPClient

    public init(timeout: TimeInterval = 5, client: HTTPClient = .shared) {
        self.timeout = timeout
        self.client = client
    }

    public func probe(baseURL: String) async -> ProbeResult {
        var request = HTTPRequest(url: baseURL + "/server/api?api_version=3&method=get_status",
                                  connectTimeout: .seconds(min(timeout, 3)), timeout: .seconds(timeout))
        // A fresh connection each time: the probe then also proves the engine
        // still accepts one, and no idle connection stays open between probes.
        request.reuseConnection = false
        return Self.interpret(await client.send(request))
    }

    package static func interpret(_ result: Result<HTTPResponse, HTTPClientError>) -> ProbeResult {
        let response: HTTPResponse
        switch result {
        case .failure(let error):
            return ProbeResult(healthy: false, failure: error.description)
        case .success(let answer):
            response = answer
        }
        guard response.status == 200 else {
            return ProbeResult(healthy: false, failure: "get_status answered HTTP \(response.status)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
              let result = object["result"] as? [String: Any] else {
            return ProbeResult(healthy: false, failure: "get_status answered something that is not the engine's JSON")
        }
        let version = result["version"] as? [String: Any]
        return ProbeResult(healthy: true, version: version?["version"] as? String, platform: version?["platform"] as? String)
    }
}
