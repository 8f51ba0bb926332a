import CurlHTTP
import Foundation

/// Engine commands the control plane sends itself (the relay sends its own).
public enum EngineCommand {
    /// `command_url?method=stop`; nil when the engine confirmed, else why not.
    public static func stop(commandURL: String, timeout: TimeInterval = 5, client: HTTPClient = .shared) async -> String? {
        let url = commandURL + (commandURL.contains("?") ? "&" : "?") + "method=stop"
        let request = HTTPRequest(url: url, connectTimeout: .seconds(min(timeout, 3)), timeout: .seconds(timeout))
        switch await client.send(request) {
        case .success(let response):
            return response.status == 200 ? nil : "HTTP \(response.status)"
        case .failure(let error):
            return error.description
        }
    }
}
