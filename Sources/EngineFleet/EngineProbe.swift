import CSupport
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
/// Each probe is one blocking libcurl request on a GCD queue, never on a
/// thread of Swift concurrency's cooperative pool (two threads here), so a
/// hung engine costs a waiting task and nothing more.
public struct EngineProbe: Sendable {
    public var timeout: TimeInterval

    public init(timeout: TimeInterval = 5) { self.timeout = timeout }

    private static let queue = DispatchQueue(label: "acerelay.engine-probe", qos: .utility, attributes: .concurrent)

    public func probe(baseURL: String) async -> ProbeResult {
        let url = baseURL + "/server/api?api_version=3&method=get_status"
        let timeout = timeout
        return await withCheckedContinuation { continuation in
            Self.queue.async {
                continuation.resume(returning: Self.interpret(BlockingHTTP.get(url, timeout: timeout)))
            }
        }
    }

    static func interpret(_ response: BlockingHTTP.Response) -> ProbeResult {
        guard response.status == 200 else {
            return ProbeResult(healthy: false, failure: response.error ?? "get_status answered HTTP \(response.status)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
              let result = object["result"] as? [String: Any] else {
            return ProbeResult(healthy: false, failure: "get_status answered something that is not the engine's JSON")
        }
        let version = result["version"] as? [String: Any]
        return ProbeResult(healthy: true, version: version?["version"] as? String, platform: version?["platform"] as? String)
    }
}

/// One blocking GET through libcurl, for callers already off the cooperative pool.
enum BlockingHTTP {
    struct Response: Sendable {
        var status: Int
        var body: [UInt8]
        /// curl's explanation when no answer came.
        var error: String?
    }

    static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK

    final class Sink {
        var body: [UInt8] = []
        let limit = 1 << 20
    }

    static func get(_ url: String, timeout: TimeInterval) -> Response {
        precondition(initialized, "curl_global_init failed")
        guard let easy = curl_easy_init() else { return Response(status: 0, body: [], error: "curl_easy_init failed") }
        defer { curl_easy_cleanup(easy) }
        let sink = Sink()
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        csupport_curl_easy_setopt_string(easy, CURLOPT_URL, url)
        csupport_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        csupport_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(timeout * 1000))
        csupport_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(min(timeout, 3) * 1000))
        csupport_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        csupport_curl_easy_setopt_data_cb(easy, CURLOPT_WRITEFUNCTION) { pointer, size, count, userdata in
            guard let pointer, let userdata else { return 0 }
            let sink = Unmanaged<Sink>.fromOpaque(userdata).takeUnretainedValue()
            let bytes = size * count
            guard sink.body.count + bytes <= sink.limit else { return 0 }
            sink.body.append(contentsOf: UnsafeRawBufferPointer(start: pointer, count: bytes))
            return bytes
        }
        let code = withExtendedLifetime(sink) {
            csupport_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
            return curl_easy_perform(easy)
        }
        var status = 0
        csupport_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        guard code == CURLE_OK else {
            let detail = String(validatingCString: errorBuffer) ?? ""
            return Response(status: status, body: sink.body, error: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
        }
        return Response(status: status, body: sink.body, error: nil)
    }
}

/// Engine commands the control plane sends itself (the relay sends its own).
public enum EngineCommand {
    /// `command_url?method=stop`; nil when the engine confirmed, else why not.
    public static func stop(commandURL: String, timeout: TimeInterval = 5) async -> String? {
        let url = commandURL + (commandURL.contains("?") ? "&" : "?") + "method=stop"
        return await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .utility).async {
                let response = BlockingHTTP.get(url, timeout: timeout)
                continuation.resume(returning: response.status == 200 ? nil : (response.error ?? "HTTP \(response.status)"))
            }
        }
    }
}
